"""Bank-level PIM: multipliers next to every DRAM bank run GEMVs on the rows they hold.

The PIM sits in a ``kind: dram`` memory with a ``dram:`` block (organization, timing, energy
per command). Timing and energy of a GEMV come from :class:`archsim.units.hbm.HbmModel`:
the vector is written to the channel's global buffer (GWRITE), banks are opened by group
activates (GACT), MAC commands stream the open rows through the multipliers, results are read
out (READRES) and the rows closed; a PIM op never straddles a refresh. ``row_buffers: 1`` is
the blocked (Newton / HBM-PIM style) device: while it computes, no regular traffic reaches
the DRAM. ``row_buffers: 2`` is NeuPIMs' dual row buffer: regular reads and writes proceed
concurrently (../shared/reference/neupims.md).

In the evaluator a PIM unit runs contractions ``Z = A x B`` whose larger operand (the matrix)
lives in its memory: each batch element's matrix is one GEMV per vector of the other operand,
batch elements spread over the channels.
"""
from __future__ import annotations

import math
from functools import cached_property
from typing import Literal

from archsim.core.physics import whole_cycles
from archsim.errors import MappingError
from archsim.units.base import Phase, PlanContext, TaskPlan, Traffic, UnitModel, UnitSpec
from archsim.units.dram_spec import PimGeometry


def operand_traffic(ctx: PlanContext, matrix: str, mem: str) -> Traffic:
    """Traffic of an in-memory GEMM/GEMV: every operand but ``matrix`` (which stays in ``mem``)
    moves from its home into ``mem``, and results move from ``mem`` to their homes."""
    traffic = Traffic()
    for tensor, (r, w) in ctx.cascade.einsum_tensor_bytes(ctx.einsum).items():
        if tensor == matrix:
            continue
        home = ctx.placement[tensor]
        if r:
            traffic.move(home, mem, r)
        if w:
            traffic.move(mem, home, w)
    return traffic


class BankPimSpec(UnitSpec):
    """Design-file entry of a bank-level PIM (``kind: bank_pim``)."""

    kind: Literal["bank_pim"]
    memory: str
    multipliers_per_bank: int
    element_bytes: int = 2
    gact_banks: int = 4
    row_buffers: int = 1
    global_buffer_bytes: int = 1024
    gact_faw_weight: int | None = None
    # energy per access-size (burst) read by the banks' multipliers; None: NeuPIMs' rule (an
    # all-bank MAC command costs 4 reads, see archsim.units.hbm)
    read_pj_per_access: float | None = None

    def geometry(self) -> PimGeometry:
        """The PIM parameters the DRAM model needs."""
        return PimGeometry(multipliers_per_bank=self.multipliers_per_bank,
                           element_bytes=self.element_bytes, gact_banks=self.gact_banks,
                           row_buffers=self.row_buffers,
                           global_buffer_bytes=self.global_buffer_bytes,
                           gact_faw_weight=self.gact_faw_weight)


class BankPim(UnitModel):
    """Timing and energy of GEMVs on bank-level PIM."""

    kind = "bank_pim"
    spec_class = BankPimSpec

    @cached_property
    def hbm(self):
        """The :class:`~archsim.units.hbm.HbmModel` of the memory this PIM sits in."""
        from archsim.units.hbm import HbmModel

        mem = self.design.memories.get(self.spec.memory)
        if mem is None or mem.dram is None:
            raise MappingError(f"PIM unit {self.name!r}: memory {self.spec.memory!r} needs a "
                               f"dram block (organization, timing, energy)")
        self.spec.geometry()  # validates the geometry
        return HbmModel(mem.dram, self.spec.geometry())

    @property
    def blocked(self) -> bool:
        """True for a single-row-buffer PIM: it takes the DRAM exclusively while computing."""
        return self.spec.row_buffers == 1

    @property
    def channels(self) -> int:
        """Independent PIM channels (channels x pseudo-channels)."""
        return self.hbm.spec.organization.units

    @property
    def dram_cycle_scale(self) -> float:
        """Reference-clock cycles per DRAM tCK."""
        return self.hbm.spec.organization.tck_s * self.design.clock_hz

    def peak_ops_per_cycle(self) -> float:
        """Peak MACs per reference cycle: every bank's multipliers, one MAC command per tCCD_L."""
        org, t = self.hbm.spec.organization, self.hbm.spec.timing
        macs_per_tck = org.units * org.banks * self.spec.multipliers_per_bank / t.tccd_l
        return macs_per_tck / self.dram_cycle_scale

    def gemv_cycles(self, rows, cols, segment_elems, fidelity: str | None = None):
        """DRAM tCK cycles of one GEMV (``rows`` x ``cols`` matrix) on one channel."""
        return self.hbm.pim_gemv_cycles(rows, cols, segment_elems,
                                        fidelity=fidelity or self.design.fidelity)

    def gemv_energy_pj(self, rows, cols, segment_elems):
        """Energy (pJ) of one GEMV on one channel: the DRAM model's command energy, with the
        MAC commands charged ``read_pj_per_access`` per burst-sized read of every bank when
        the design gives it."""
        hbm = self.hbm
        if self.spec.read_pj_per_access is None:
            return hbm.pim_gemv_energy_pj(rows, cols, segment_elems)
        from archsim.units.hbm import MAC_RD_ENERGY_FACTOR

        c = hbm.pim_gemv_commands(rows, cols, segment_elems)
        e = hbm.spec.energy
        per_mac = (hbm.banks * self.spec.multipliers_per_bank * self.spec.element_bytes
                   / hbm.access_bytes * self.spec.read_pj_per_access)
        return (hbm.pim_gemv_energy_pj(rows, cols, segment_elems)
                - c["MAC"] * MAC_RD_ENERGY_FACTOR * e.rd_pj + c["MAC"] * per_mac)

    def own_unsupported_reason(self, cascade, einsum: str) -> str | None:
        """PIM runs two-operand contractions (GEMVs over a matrix in its memory)."""
        if cascade.contraction(einsum) is None:
            return "not a two-operand product reduced by '+' (PIM runs GEMVs)"
        return None

    def plan(self, ctx: PlanContext) -> TaskPlan:
        """Each batch element's matrix x its vectors, batch elements dealt to the channels."""
        cas = ctx.cascade
        con = cas.contraction(ctx.einsum)
        if con is None:
            raise MappingError(f"einsum {ctx.einsum!r} cannot run on PIM {self.name!r}: "
                               f"{self.unsupported_reason(cas, ctx.einsum)}")
        mem = self.spec.memory
        size_a, size_b = con.M * con.K, con.K * con.N
        # the matrix is the larger operand; it must live in the PIM's memory
        if size_b >= size_a:
            matrix, vector, rows, vectors = con.b, con.a, con.N, con.M
        else:
            matrix, vector, rows, vectors = con.a, con.b, con.M, con.N
        if ctx.placement[matrix] != mem:
            raise MappingError(f"einsum {ctx.einsum!r} on PIM {self.name!r}: its matrix operand "
                               f"{matrix!r} is in {ctx.placement[matrix]!r}, not in {mem!r}")
        el_bytes = cas.tensors[matrix].bits / 8
        if el_bytes != self.spec.element_bytes:
            raise MappingError(f"einsum {ctx.einsum!r} on PIM {self.name!r}: {matrix!r} has "
                               f"{el_bytes:g}-byte elements; the PIM multiplies "
                               f"{self.spec.element_bytes}-byte elements")
        per_channel = math.ceil(con.B / self.channels)
        tck = float(self.gemv_cycles(rows, con.K, con.K))
        cycles = per_channel * vectors * tck * self.dram_cycle_scale
        energy = float(self.gemv_energy_pj(rows, con.K, con.K)) * con.B * vectors
        # vectors in (global-buffer writes), results out (READRES); the matrix stays in the banks
        traffic = operand_traffic(ctx, matrix, mem)
        totals = traffic.totals()
        if self.blocked:
            # single row buffer: the DRAM serves no regular traffic while the PIM computes
            bw = ctx.bandwidth_bytes_per_cycle[mem]
            totals[mem] = max(totals.get(mem, 0.0), cycles * bw)
        macs = con.B * con.M * con.N * con.K
        reads, writes = traffic.as_ints()
        return TaskPlan(
            phases=[Phase("pim gemv", cycles, totals)],
            compute_cycles=whole_cycles(cycles),
            ops={"mac": macs},
            read_bytes=reads, write_bytes=writes,
            unit_energy_pj=energy,
            useful_cycles=macs / self.peak_ops_per_cycle(),
            details={"matrix": matrix, "vector": vector, "gemv": {"rows": rows, "cols": con.K,
                     "count": con.B * vectors}, "gemv_tck": tck, "blocked": self.blocked},
        )
