"""Logic-PIM: GEMM modules on the HBM logic die, fed through extra TSVs (Duplex).

Duplex (../shared/reference/duplex.md) puts processing units on the logic die of every HBM3
stack. Through 4x the TSVs, each pseudo-channel reads a *bank bundle* at once: 8 banks, 2 in
each of the 4 bank groups, every bank group delivering 512 bits per ``tCCD_L``. One GEMM module
per pseudo-channel (32 per stack) with 512 FP16 MACs at 650 MHz (one cycle per ``tCCD_S``)
multiplies the streamed weights against activations held in its buffers, so compute matches
the internal bandwidth at 8 FLOP per byte.

The model is a roofline whose two roofs come from the parts:

- **internal bandwidth** from the HBM timing model of the memory the unit sits in
  (:class:`~archsim.units.hbm.HbmModel`): :func:`~archsim.units.hbm.bank_set_model` re-describes each pseudo-channel
  as seen through the bundle path (:func:`~archsim.units.hbm.bank_set_model`: one "bank" = a bundle, a row = the bundle's rows side by
  side, one column access of every bank in the bundle per ``tCCD_L``, a bundle activate counting
  as its ``bundle_banks`` activates in ``tFAW``), and the streaming closed form gives the
  achieved rate, refresh included. For HBM3 at 16 B per tCK per pseudo-channel externally, the
  bundle path peaks at 64 B per tCK: the reference's 4x.
- **compute**: ``modules_per_channel x macs_per_module`` MACs per module cycle.

A GEMM ``tokens x K`` by a ``K x N`` weight matrix in the memory streams the weights once per
chunk of tokens whose activations fit one shared buffer (the other holds results), and takes the
longer of that streaming time and its MACs at the modules' peak. Decode attention is the same
with the KV cache as the streamed matrix. Energy: reads at the unit's ``read_pj_per_access``
(the bundle path's energy per access of the memory's burst size) plus the memory's activate
energy per row opened, plus ``mac_pj`` per MAC.
"""
from __future__ import annotations

import math
from functools import cached_property
from typing import Literal

from pydantic import NonNegativeFloat, PositiveFloat, PositiveInt

from archsim.core.physics import roofline_time, whole_cycles
from archsim.errors import MappingError
from archsim.units.base import Phase, PlanContext, StrictModel, TaskPlan, UnitModel, UnitSpec
from archsim.units.dram_spec import DramSpec
from archsim.units.pim import operand_traffic


class LogicPimEnergy(StrictModel):
    """Energy of the Logic-PIM path."""

    mac_pj: NonNegativeFloat
    read_pj_per_access: NonNegativeFloat     # per burst-sized (access_bytes) read over the TSVs


class LogicPimSpec(UnitSpec):
    """Design-file entry of a Logic-PIM unit (``kind: logic_pim``)."""

    kind: Literal["logic_pim"]
    memory: str
    bundle_banks: PositiveInt = 8
    modules_per_channel: PositiveInt = 1
    macs_per_module: PositiveInt
    module_clock_hz: PositiveFloat
    module_buffer_bytes: PositiveInt
    shared_buffer_bytes: PositiveInt
    shared_buffers: PositiveInt = 2
    element_bytes: PositiveInt = 2
    softmax_elements_per_cycle: PositiveInt
    energy: LogicPimEnergy


class LogicPim(UnitModel):
    """Timing and energy of GEMMs on Logic-PIM (see module docstring)."""

    kind = "logic_pim"
    spec_class = LogicPimSpec

    @property
    def memory(self) -> str:
        """Memory level the unit streams from."""
        return self.spec.memory

    @cached_property
    def dram(self) -> DramSpec:
        """The DRAM block of the unit's memory."""
        mem = self.design.memories.get(self.spec.memory)
        if mem is None or mem.dram is None:
            raise MappingError(f"Logic-PIM unit {self.name!r}: memory {self.spec.memory!r} needs "
                               f"a dram block (organization, timing, energy)")
        return mem.dram

    @cached_property
    def bundle_hbm(self):
        """:class:`~archsim.units.hbm.HbmModel` of the bundle path (analytical closed forms)."""
        from archsim.units.hbm import bank_set_model

        return bank_set_model(self.dram, self.spec.bundle_banks, parallel=True)

    @property
    def channels(self) -> int:
        """Pseudo-channels of the memory (one bundle path each)."""
        return self.dram.organization.units

    @cached_property
    def peak_bandwidth_bytes_per_s(self) -> float:
        """Peak bandwidth of the bundle path over all pseudo-channels."""
        return self.bundle_hbm.peak_bytes_per_s

    @cached_property
    def bandwidth_bytes_per_s(self) -> float:
        """Achieved bandwidth of long bundle streams (refresh and row switches included)."""
        return self.peak_bandwidth_bytes_per_s * self.bundle_hbm.streaming_efficiency()

    @property
    def tsv_ratio(self) -> float:
        """Bundle-path peak over the memory's external peak (4 in Duplex)."""
        return self.peak_bandwidth_bytes_per_s / self.dram.organization.peak_bytes_per_s

    @property
    def peak_macs_per_s(self) -> float:
        """MACs per second of all GEMM modules."""
        s = self.spec
        return self.channels * s.modules_per_channel * s.macs_per_module * s.module_clock_hz

    @property
    def peak_flops_per_s(self) -> float:
        """Peak FLOP/s (2 per MAC)."""
        return 2 * self.peak_macs_per_s

    @property
    def ops_per_byte(self) -> float:
        """Peak FLOP/s over the bundle path's peak bandwidth (the design's op/B, 8 in Duplex)."""
        return self.peak_flops_per_s / self.peak_bandwidth_bytes_per_s

    @property
    def read_pj_per_byte(self) -> float:
        """Energy per byte streamed: the read energy per access plus the activate energy of
        the rows opened (one per ``row_bytes``)."""
        o, e = self.dram.organization, self.dram.energy
        return (self.spec.energy.read_pj_per_access / o.access_bytes
                + (e.act_pj + e.pre_pj) / o.row_bytes)

    def peak_ops_per_cycle(self) -> float:
        """Peak MACs per reference cycle."""
        return self.peak_macs_per_s / self.design.clock_hz

    # -- closed forms used by the serving model and by plan() ---------------------------------
    def gemm(self, tokens: float, K: int, N: int, count: float = 1.0) -> tuple[float, float, float]:
        """(seconds, bytes streamed, energy pJ) of ``count`` GEMMs of ``tokens`` x ``K`` by a
        ``K`` x ``N`` matrix held in the memory (weights, or one request's K or V).

        The matrix streams once per chunk of tokens whose activations fit one shared buffer."""
        if tokens <= 0 or count <= 0:
            return 0.0, 0.0, 0.0
        el = self.spec.element_bytes
        chunk = max(self.spec.shared_buffer_bytes // max(K * el, 1), 1)
        passes = math.ceil(tokens / chunk)
        nbytes = float(K) * N * el * passes * count
        macs = float(tokens) * K * N * count
        seconds = roofline_time(macs / self.peak_macs_per_s, nbytes, self.bandwidth_bytes_per_s)
        return seconds, nbytes, nbytes * self.read_pj_per_byte + macs * self.spec.energy.mac_pj

    def softmax_seconds(self, scores: float) -> float:
        """Seconds of the softmax units over ``scores`` scores (``softmax_elements_per_cycle``
        per GEMM module, every module's share in parallel)."""
        s = self.spec
        rate = s.softmax_elements_per_cycle * s.module_clock_hz * self.channels * s.modules_per_channel
        return scores / rate

    def own_unsupported_reason(self, cascade, einsum: str) -> str | None:
        """Logic-PIM runs two-operand contractions whose larger operand is in its memory."""
        if cascade.contraction(einsum) is None:
            return "not a two-operand product reduced by '+' (Logic-PIM runs GEMMs)"
        return None

    def plan(self, ctx: PlanContext) -> TaskPlan:
        """The matrix streams over the bundle path; the smaller operand and the result pass
        through the shared buffers."""
        cas = ctx.cascade
        con = cas.contraction(ctx.einsum)
        if con is None:
            raise MappingError(f"einsum {ctx.einsum!r} cannot run on Logic-PIM {self.name!r}: "
                               f"{self.unsupported_reason(cas, ctx.einsum)}")
        mem = self.spec.memory
        if con.K * con.N >= con.M * con.K:
            matrix, tokens, N = con.b, con.M, con.N
        else:
            matrix, tokens, N = con.a, con.N, con.M
        if ctx.placement[matrix] != mem:
            raise MappingError(f"einsum {ctx.einsum!r} on Logic-PIM {self.name!r}: its matrix "
                               f"operand {matrix!r} is in {ctx.placement[matrix]!r}, not in {mem!r}")
        seconds, nbytes, pj = self.gemm(tokens, con.K, N, count=con.B)
        cycles = seconds * self.design.clock_hz
        traffic = operand_traffic(ctx, matrix, mem)
        reads, writes = traffic.as_ints()
        macs = con.B * con.M * con.N * con.K
        return TaskPlan(
            phases=[Phase("logic-pim gemm", cycles, traffic.totals())],
            compute_cycles=whole_cycles(cycles),
            ops={"mac": macs},
            read_bytes=reads, write_bytes=writes,
            unit_energy_pj=pj,
            useful_cycles=macs / self.peak_ops_per_cycle(),
            details={"matrix": matrix, "streamed_bytes": nbytes},
        )
