"""Dataflow RDU (SambaNova SN40L): fused streaming sections, unfused kernels, memory tiers,
multi-socket tensor parallelism.

A workload (an einsum cascade, usually a model graph) runs as a sequence of **sections**
(kernels). A section is a contiguous run of einsums in program order, placed spatially on the
chip: every einsum is a *stage* on its own group of PCUs, and data streams between stages
through double-buffered PMU stage buffers ([sn40l] sn40l.md "Execution model"). Only a
section's inputs and outputs touch HBM or DDR; everything inside stays on chip. Unfused
execution is one einsum per section. Sections run one after another, each on the whole chip.

Section model (all times in cycles of the design clock)
  * **Tiles.** A section streams its activations in tiles of ``tile_rows`` token rows (the
    query-token rank ``p``/``s``, or ``m`` for the K/V projections of a prefill, times the
    batch rank ``b``). A stage handles 1/T of its work per tile.
  * **Waves.** A stage that reads an in-section tensor across the tile rank of its producer
    (attention reading all keys K, V while streaming query tiles) must wait for every tile of
    it: it starts a new wave, and that tensor stays whole in PMUs. Waves run one after another.
  * **PCUs** are allotted to the section's stages in proportion to their work (cycles on one
    PCU, :meth:`archsim.units.pcu.Pcu.einsum_cycles`), at least one each; a section with
    more stages than PCUs does not fit.
  * **PMUs** hold, per stage: its output tile, double-buffered (a whole tensor when a later
    wave reads it); its weights — resident when the wave has more than one tile (every tile
    reuses them), else a double-buffered stream — and stream buffers for section inputs and
    outputs. A section whose buffers need more PMUs than the chip has re-streams its weights
    from HBM for every tile; if even that does not fit, the section does not fit. PMUs left
    over are paired with the stages' PCUs.
  * **Stage time per tile** ``t_i = max(compute / PCUs, PMU traffic / (PMUs x PMU bandwidth),
    own HBM and DDR traffic / bandwidth)``; all-reduce stages (tensor parallelism) take the
    link time of their tile. The slowest stage of a wave also has to cover the shared HBM,
    DDR and on-chip network traffic of the whole wave.
  * **Wave time** = fill + (T - 1) x slowest + drain, with fill + drain = the sum of the
    stages' per-tile times (a tile passes every stage once), plus each all-reduce's latency.
  * **Launch**: every section pays the orchestration overhead (hardware or software); a
    section that differs from the kernel configured before it also loads its program
    (``program_bytes_per_unit`` per PCU and PMU used) from HBM. A model whose repeated layer
    is one section loads it once.

Memory tiers: inputs that persist (weights, KV cache, tables) live in HBM; when they do not fit
in HBM the symbols that need the least bandwidth (fewest bytes touched per byte held) spill to
DDR first ([sn40l] "Memory planning"). ``tiers=`` overrides a tensor's tier (``sram``, ``hbm``
or ``ddr``). Activations passed between sections live in HBM.

Partitioning of each segment (the layers' body once, and what comes before and after it):
``unfused``; ``greedy`` (grow a section while fusing the next einsum does not cost more than
running it alone); ``ilp`` (exact over contiguous partitions: a set-partitioning ILP in PuLP
over every feasible section, solved by HiGHS or CBC); ``dp`` (the same optimum by dynamic
programming, used to check the ILP).

Multi-socket: ``sockets`` > 1 builds the model graph's tensor-parallel shard (Megatron-style,
``tp = sockets``); its all-reduce einsums are stages that move
``2 (N-1)/N`` of their bytes over the peer links (ring) or ``N-1`` copies (one shot), whichever
is faster, plus per-message latency (``interconnect`` of the design).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Mapping, Sequence

from archsim.core import physics
from archsim.core.identity import cascade_hash, identity, model_version
from archsim.core.physics import whole_cycles
from archsim.errors import MappingError, UserError
from archsim.families.base import Decision, Problem
from archsim.result import MemoryStats, Result, UnitStats
from archsim.spec import Design, load_design

FUSIONS = ("fused", "unfused")
PARTITIONERS = ("ilp", "greedy", "dp", "unfused")
TIERS = ("sram", "hbm", "ddr")

# token ranks of model graphs (dataflow.transformer): query tokens first, then context
_TOKEN_RANK = [re.compile(p) for p in (r"^p$", r"^s$", r"^p\d+$", r"^m$", r"^c\d+$")]
_BATCH_RANK = re.compile(r"^b\d*$")


# --------------------------------------------------------------------------- per-einsum facts
@dataclass(frozen=True)
class OpInfo:
    """What the section model needs to know about one einsum (sizes in bytes, work in cycles
    on one PCU of the design clock)."""

    name: str
    role: str
    mode: str                      # systolic | simd | link
    pcu_cycles: float              # on one PCU (0 for link stages)
    flops: float
    output: str
    reads: Mapping[str, float]     # tensor -> bytes touched
    write_bytes: float
    token_rank: str | None
    rows: int                      # token rows (batch x tokens) of the output
    link_bytes: float              # all-reduce operand bytes (link stages)
    link_degree: int
    tiled_reads: frozenset = frozenset()   # inputs read tile by tile (indexed by the tile rank)


def _token_rank(variables: Sequence[str]) -> str | None:
    for pattern in _TOKEN_RANK:
        for v in variables:
            if pattern.match(v):
                return v
    return None


def op_infos(cascade, design: Design) -> dict[str, OpInfo]:
    """Einsum name -> :class:`OpInfo` on ``design``'s PCUs."""
    pcu = design.unit_models[design.rdu.pcu]
    scale = design.clock_hz / pcu.clock_hz
    out: dict[str, OpInfo] = {}
    for e in cascade.einsums:
        role = cascade.tag(e.name, "role", "other")
        tb = cascade.einsum_tensor_bytes(e.name)
        reads = {t: float(r) for t, (r, w) in tb.items() if r and t != e.output_tensor}
        write = float(sum(w for t, (r, w) in tb.items() if w))
        outvars = [i.plain for i in e.output.indices]
        tok = _token_rank([v for v in outvars if v])
        rows = 1
        for v in outvars:
            if v and (v == tok or _BATCH_RANK.match(v)):
                rows *= cascade.ranks[v]
        tiled = frozenset(a.tensor for a in e.inputs if any(
            v == tok or _BATCH_RANK.match(v) for v in a.variables()) and tok is not None)
        ops = cascade.ops(e.name)
        flops = 2.0 * ops.get("mac", 0) + sum(v for k, v in ops.items() if k != "mac")
        if role == "allreduce":
            degree = int(cascade.tag(e.name, "degree", 1))
            out[e.name] = OpInfo(e.name, role, "link", 0.0, 0.0, e.output_tensor, reads,
                                 write, tok, rows, float(sum(reads.values())), degree, tiled)
            continue
        reason = pcu.unsupported_reason(cascade, e.name)
        if reason:
            raise MappingError(f"einsum {e.name!r} cannot run on the PCUs: {reason}")
        cyc, mode = pcu.einsum_cycles(cascade, e.name)
        out[e.name] = OpInfo(e.name, role, mode, cyc * scale, flops, e.output_tensor, reads,
                             write, tok, rows, 0.0, 1, tiled)
    return out


# --------------------------------------------------------------------------- memory tiers
def place_tensors(cascade, design: Design, tiers: Mapping[str, str] | None = None,
                  reserve_bytes: float = 0.0) -> dict[str, str]:
    """Tier (``sram``/``hbm``/``ddr``) of every persistent input tensor of ``cascade`` (one
    socket's shard) under the SN40L policy, with ``tiers`` as explicit choices.

    Everything goes to HBM; if it does not fit (HBM capacity minus ``reserve_bytes``), the
    tensors that need the least bandwidth -- fewest bytes touched per run per byte held --
    move to DDR first. Raises :class:`MappingError` when HBM + DDR cannot hold them.
    """
    rdu = design.rdu
    tiers = dict(tiers or {})
    for t, tier in tiers.items():
        if t not in cascade.tensors:
            raise MappingError(f"tier for unknown tensor {t!r}; persistent tensors of "
                               f"{cascade.name}: {', '.join(cascade.inputs())}")
        if tier not in TIERS:
            raise MappingError(f"tier of {t!r} must be one of {', '.join(TIERS)}, found "
                               f"{tier!r}")
        if tier == "ddr" and rdu.ddr is None:
            raise MappingError(f"tier of {t!r}: design {design.name!r} has no DDR tier")
    held, touched = persistent_bytes(cascade)
    place = {t: tiers.get(t, "hbm") for t in held}
    sram_cap = design.memories[rdu.sram].capacity_bytes
    sram_used = sum(held[t] for t in held if place[t] == "sram")
    if sram_used > sram_cap:
        raise MappingError(f"tensors placed in SRAM need {sram_used / 1e6:.1f} MB, more than "
                           f"its {sram_cap / 1e6:.1f} MB")
    cap = design.memories[rdu.hbm].capacity_bytes - reserve_bytes
    used = sum(held[t] for t in held if place[t] == "hbm")
    if used > cap:
        movable = sorted((t for t in held if place[t] == "hbm" and t not in tiers),
                         key=lambda t: (touched[t] / max(held[t], 1.0), t))
        for t in movable:
            if used <= cap or rdu.ddr is None:
                break
            place[t] = "ddr"
            used -= held[t]
    if used > cap:
        raise MappingError(f"{used / 1e9:.2f} GB must stay in HBM but only {cap / 1e9:.2f} GB "
                           f"is available" + ("" if rdu.ddr else " and the design has no DDR"))
    if rdu.ddr is not None:
        ddr = sum(held[t] for t in held if place[t] == "ddr")
        ddr_cap = design.memories[rdu.ddr].capacity_bytes
        if ddr > ddr_cap:
            raise MappingError(f"tensors spilled to DDR need {ddr / 1e9:.1f} GB, more than its "
                               f"{ddr_cap / 1e9:.1f} GB")
    return place


def persistent_bytes(cascade) -> tuple[dict[str, float], dict[str, float]]:
    """(bytes held, bytes touched per run) of every persistent input tensor (one socket)."""
    held = {t: held_bytes(cascade, t) for t in cascade.inputs()}
    touched = {t: 0.0 for t in held}
    for e in cascade.einsums:
        for t, (r, _) in cascade.einsum_tensor_bytes(e.name).items():
            if t in touched:
                touched[t] += r * cascade.multiplicity(e.name)
    return held, touched


def held_bytes(cascade, tensor: str) -> float:
    """Bytes one socket holds for ``tensor``: its size times the instances of the repeat
    (layers) whose einsums read it."""
    readers = cascade.consumers(tensor) or cascade.producers(tensor)
    mult = max((cascade.multiplicity(e) for e in readers), default=1)
    return float(cascade.tensor_bytes(tensor) * mult)


# --------------------------------------------------------------------------- design figures
@dataclass(frozen=True)
class _Chip:
    """Figures of one socket in cycles of the design clock."""

    clock_hz: float
    pcus: int
    pmus: int
    pmu_capacity_bytes: float
    pmu_bytes_per_cycle: float
    network_bytes_per_cycle: float
    tile_rows: int
    tier_bytes_per_cycle: Mapping[str, float]
    sockets: int
    link_bytes_per_cycle: float
    link_latency_cycles: float
    link_allreduce: str
    orchestration_cycles: float
    program_bytes_per_unit: float
    hbm_peak_bytes_per_cycle: float

    @staticmethod
    def of(design: Design, sockets: int, orchestration: str | None) -> "_Chip":
        rdu = design.rdu
        clk = design.clock_hz
        bw = design.bandwidth_bytes_per_cycle
        tiers = {"sram": bw[rdu.sram], "hbm": bw[rdu.hbm]}
        if rdu.ddr is not None:
            tiers["ddr"] = bw[rdu.ddr]
        orch = orchestration or rdu.launch.orchestration
        if orch not in ("hardware", "software"):
            raise UserError(f"orchestration must be hardware or software, found {orch!r}")
        link = design.interconnect
        if sockets > 1 and link is None:
            raise UserError(f"design {design.name!r} has no interconnect (peer links) for "
                            f"{sockets} sockets")
        if link is not None and link.devices_per_node and sockets > link.devices_per_node:
            raise UserError(f"--sockets {sockets}: design {design.name!r} joins at most "
                            f"{link.devices_per_node} sockets (interconnect.devices_per_node)")
        return _Chip(
            clock_hz=clk, pcus=design.units[rdu.pcu].count, pmus=rdu.pmus,
            pmu_capacity_bytes=design.memories[rdu.sram].capacity_bytes / rdu.pmus,
            pmu_bytes_per_cycle=rdu.pmu_bandwidth_bytes_per_cycle,
            network_bytes_per_cycle=rdu.network_bandwidth_bytes_per_cycle,
            tile_rows=rdu.tile_rows, tier_bytes_per_cycle=tiers, sockets=sockets,
            link_bytes_per_cycle=(link.bandwidth_bytes_per_s / clk) if link else 1.0,
            link_latency_cycles=(link.latency_s * clk) if link else 0.0,
            link_allreduce=link.allreduce if link else "ring",
            orchestration_cycles=(rdu.launch.hardware_s if orch == "hardware"
                                  else rdu.launch.software_s) * clk,
            program_bytes_per_unit=rdu.launch.program_bytes_per_unit,
            hbm_peak_bytes_per_cycle=design.memories[rdu.hbm].bandwidth_bytes_per_s / clk)

    def allreduce_cycles(self, nbytes: float, degree: int) -> tuple[float, float]:
        """(bandwidth cycles, latency cycles) of an all-reduce of ``nbytes`` over ``degree``
        sockets: :func:`archsim.core.physics.allreduce` with the interconnect's algorithm
        (sn40l: ``auto``, the faster of a ring and a one-shot exchange), as the link unit of
        the other families (:mod:`archsim.units.link`).
        Streamed in tiles, the bandwidth part divides over the tiles and the latency is
        paid once."""
        bw, lat, _, _ = physics.allreduce(nbytes, max(degree, 1), self.link_bytes_per_cycle,
                                          self.link_latency_cycles, self.link_allreduce)
        return bw, lat


# --------------------------------------------------------------------------- sections
@dataclass
class Stage:
    """One einsum of a section as placed: PCUs, PMUs, wave, per-tile time (cycles)."""

    name: str
    role: str
    mode: str
    wave: int
    pcus: int
    pmus: int
    tile_cycles: float
    compute_cycles: float
    hbm_bytes: float
    ddr_bytes: float
    bound: str


@dataclass
class SectionPlan:
    """A placed section and its cost (cycles of the design clock, bytes per tier)."""

    ops: tuple[str, ...]
    stages: list[Stage]
    waves: list[dict]
    exec_cycles: float
    orchestration_cycles: float
    program_cycles: float
    tier_bytes: dict[str, float]
    pcus_used: int
    pmus_used: int
    weights_restreamed: bool = False
    write_bytes: dict[str, float] = field(default_factory=dict)   # of tier_bytes: stores

    @property
    def cycles(self) -> float:
        """Execution + launch (orchestration and program load)."""
        return self.exec_cycles + self.orchestration_cycles + self.program_cycles

    def hbm_utilization(self, chip: _Chip) -> float:
        """HBM bytes / (execution time x peak HBM bandwidth): the bandwidth the running
        kernel draws (launch time excluded)."""
        if self.exec_cycles <= 0:
            return 0.0
        return self.tier_bytes.get("hbm", 0.0) / (self.exec_cycles * chip.hbm_peak_bytes_per_cycle)


class Infeasible(Exception):
    """A section that does not fit on the chip (the message says why)."""


def _largest_remainder(weights: Sequence[float], total: int, floor: int = 1) -> list[int]:
    """Integers >= ``floor`` proportional to ``weights`` summing to ``total``."""
    n = len(weights)
    if n == 0:
        return []
    spare = total - floor * n
    s = float(sum(weights))
    if spare <= 0 or s <= 0:
        base = [floor] * n
        if s <= 0 and spare > 0:
            for i in range(spare):
                base[i % n] += 1
        return base
    raw = [spare * w / s for w in weights]
    out = [floor + int(math.floor(r)) for r in raw]
    left = total - sum(out)
    order = sorted(range(n), key=lambda i: (-(raw[i] - math.floor(raw[i])), i))
    for i in order[:left]:
        out[i] += 1
    return out


class SectionModel:
    """Plans sections of one cascade on one design (see module docstring)."""

    def __init__(self, cascade, design: Design, *, sockets: int = 1,
                 orchestration: str | None = None, tiers: Mapping[str, str] | None = None,
                 reserve_bytes: float = 0.0):
        if design.rdu is None:
            raise UserError(f"design {design.name!r} has no rdu section (a dataflow RDU "
                            f"design such as sn40l)")
        self.cascade = cascade
        self.design = design
        self.chip = _Chip.of(design, sockets, orchestration)
        self.ops = op_infos(cascade, design)
        self.order = cascade.topological_order()
        self.index = {n: i for i, n in enumerate(self.order)}
        self.place = place_tensors(cascade, design, tiers, reserve_bytes)
        self.outputs = set(cascade.outputs())
        self.carried = {src for rep in cascade.repeats for src, _ in rep.carry}
        self._einsum = {e.name: e for e in cascade.einsums}
        self._bytes = {t: float(cascade.tensor_bytes(t)) for t in cascade.tensors}
        self._cache: dict[tuple[str, ...], SectionPlan | str] = {}

    # ------------------------------------------------------------------ helpers
    def tier(self, tensor: str) -> str:
        """Tier a section reads ``tensor`` from when it is not produced in the section."""
        return self.place.get(tensor, "hbm")

    def _barrier(self, producer: str, consumer: str, tensor: str) -> bool:
        """True when ``consumer`` reads ``tensor`` across its producer's tile rank."""
        p = self.ops[producer]
        c = self.ops[consumer]
        if p.token_rank is None or p.rows <= self.chip.tile_rows:
            return False
        out = self._einsum[producer].output.indices
        dims = [i for i, ix in enumerate(out) if ix.plain == p.token_rank]
        for acc in self._einsum[consumer].inputs:
            if acc.tensor != tensor:
                continue
            for d in dims:
                if d < len(acc.indices) and c.token_rank not in acc.indices[d].variables():
                    return True
        return False

    # ------------------------------------------------------------------ one section
    def plan(self, names: Sequence[str]) -> SectionPlan:
        """Place and cost the section of einsums ``names`` (program order). Raises
        :class:`Infeasible` when it does not fit."""
        key = tuple(names)
        hit = self._cache.get(key)
        if hit is None:
            try:
                hit = self._plan(key)
            except Infeasible as exc:
                hit = str(exc)
            self._cache[key] = hit
        if isinstance(hit, str):
            raise Infeasible(hit)
        return hit

    def _plan(self, names: tuple[str, ...]) -> SectionPlan:
        chip, cas = self.chip, self.cascade
        inside = set(names)
        produced = {self.ops[n].output: n for n in names}
        ops = [self.ops[n] for n in names]
        compute_ops = [o for o in ops if o.mode != "link"]
        if len(compute_ops) > chip.pcus:
            raise Infeasible(f"{len(compute_ops)} stages need more PCUs than the {chip.pcus} "
                             f"on a socket")
        # waves
        wave: dict[str, int] = {}
        resident_out: set[str] = set()
        for o in ops:
            w = 0
            for t in o.reads:
                p = produced.get(t)
                if p is None or p == o.name:
                    continue
                if self._barrier(p, o.name, t):
                    w = max(w, wave[p] + 1)
                    resident_out.add(t)
                else:
                    w = max(w, wave[p])
            wave[o.name] = w
        nwaves = max(wave.values()) + 1
        rows = [1] * nwaves
        for o in ops:
            rows[wave[o.name]] = max(rows[wave[o.name]], o.rows)
        tiles = [max(1, math.ceil(r / chip.tile_rows)) for r in rows]
        # section inputs (loaded once, multicast) and outputs
        loads: dict[str, tuple[str, float]] = {}     # tensor -> (first consumer, bytes)
        for o in ops:
            for t, b in o.reads.items():
                if t in produced:
                    continue
                if t not in loads:
                    loads[t] = (o.name, b)
                else:
                    loads[t] = (loads[t][0], max(loads[t][1], b))
        leaves = {}
        for o in ops:
            t = o.output
            outside = [c for c in cas.consumers(t) if c not in inside]
            if outside or t in self.outputs or t in self.carried:
                leaves[o.name] = (t, o.write_bytes)
        # inputs every tile reads whole (weights, tables not indexed by tokens)
        reused = {t for t, (first, _) in loads.items() if t not in self.ops[first].tiled_reads}
        # PCUs
        alloc = _largest_remainder([o.pcu_cycles for o in compute_ops], chip.pcus)
        pcus = {o.name: n for o, n in zip(compute_ops, alloc)}
        # PMU buffers
        def buffers(restream: bool) -> dict[str, float]:
            need = {}
            for o in ops:
                w = wave[o.name]
                T = tiles[w]
                b = 0.0
                if o.output in resident_out:
                    b += self._bytes[o.output]
                elif o.mode != "link" or o.name in leaves:
                    b += 2 * o.write_bytes / T
                for t, (first, nb) in loads.items():
                    if first != o.name:
                        continue
                    if t in reused and T > 1 and not restream:
                        b += self._bytes[t]                       # resident, reused per tile
                    elif t in reused:
                        b += 2 * min(nb, chip.pmu_capacity_bytes)  # streamed
                    else:
                        b += 2 * nb / T
                need[o.name] = b
            return need

        restream = False
        need = buffers(False)
        pmu_need = {n: max(1, math.ceil(b / chip.pmu_capacity_bytes - 1e-9))
                    for n, b in need.items()}
        if sum(pmu_need.values()) > chip.pmus:
            restream = True
            need = buffers(True)
            pmu_need = {n: max(1, math.ceil(b / chip.pmu_capacity_bytes - 1e-9))
                        for n, b in need.items()}
            if sum(pmu_need.values()) > chip.pmus:
                raise Infeasible(f"stage buffers need {sum(pmu_need.values())} PMUs, more "
                                 f"than the {chip.pmus} on a socket")
        spare = chip.pmus - sum(pmu_need.values())
        extra = _largest_remainder([pcus.get(o.name, 0) for o in ops], spare, floor=0)
        pmus = {o.name: pmu_need[o.name] + x for o, x in zip(ops, extra)}
        # traffic per stage (whole section)
        tier_bytes = {"sram": 0.0, "hbm": 0.0, "ddr": 0.0}
        stage_tier: dict[str, dict[str, float]] = {o.name: {} for o in ops}
        for t, (first, nb) in loads.items():
            tier = self.tier(t)
            T = tiles[wave[first]]
            mult = T if (restream and t in reused and T > 1) else 1
            stage_tier[first][tier] = stage_tier[first].get(tier, 0.0) + nb * mult
        for n, (_, nb) in leaves.items():
            stage_tier[n]["hbm"] = stage_tier[n].get("hbm", 0.0) + nb
        for st in stage_tier.values():
            for tier, b in st.items():
                tier_bytes[tier] += b
        # stage times
        stages: list[Stage] = []
        wave_info = []
        exec_cycles = 0.0
        for w in range(nwaves):
            T = tiles[w]
            members = [o for o in ops if wave[o.name] == w]
            traffic = {"hbm": 0.0, "ddr": 0.0, "sram": 0.0}
            net = 0.0
            latency = 0.0
            times = []
            for o in members:
                st = stage_tier[o.name]
                for tier, b in st.items():
                    traffic[tier] += b
                net += o.write_bytes
                if o.mode == "link":
                    bw_c, lat = chip.allreduce_cycles(o.link_bytes, o.link_degree)
                    latency += lat
                    t_i = comp = bw_c / T
                    bound = "link"
                else:
                    comp = o.pcu_cycles / pcus[o.name] / T
                    # every tile reads its slice of tiled inputs and the whole of the others
                    pmu_traffic = o.write_bytes / T + sum(
                        b / T if t in o.tiled_reads else b for t, b in o.reads.items())
                    pmu_t = pmu_traffic / (pmus[o.name] * chip.pmu_bytes_per_cycle)
                    t_i = max(comp, pmu_t)
                    bound = "compute" if t_i == comp else "pmu"
                times.append(t_i)
                stages.append(Stage(o.name, o.role, o.mode, w, pcus.get(o.name, 0),
                                    pmus[o.name], t_i, comp, st.get("hbm", 0.0),
                                    st.get("ddr", 0.0), bound))
            slowest = max(times) if times else 0.0
            pipeline = sum(times) + (T - 1) * slowest + latency
            # off-chip traffic (weights prefetch, inputs and outputs stream) overlaps the
            # pipeline; after the last byte arrives one tile still passes the last stage
            limits = {"pipeline": pipeline,
                      "network": net / chip.network_bytes_per_cycle + (times[-1] if times else 0)}
            for tier, b in traffic.items():
                if b:
                    limits[tier] = b / chip.tier_bytes_per_cycle[tier] + \
                        (times[-1] if times else 0.0)
            bound = max(limits, key=limits.get)
            wt = limits[bound]
            exec_cycles += wt
            wave_info.append({"wave": w, "tiles": T, "stages": len(members),
                              "cycles": wt, "bound": bound})
        pcus_used = sum(pcus.values())
        pmus_used = sum(pmus.values())
        program = chip.program_bytes_per_unit * (pcus_used + pmus_used) / \
            chip.tier_bytes_per_cycle["hbm"]
        return SectionPlan(names, stages, wave_info, exec_cycles, chip.orchestration_cycles,
                           program, tier_bytes, pcus_used, pmus_used, restream,
                           {"hbm": float(sum(nb for _, nb in leaves.values()))})

    def cost(self, names: Sequence[str]) -> float:
        """Cycles of a section (inf when it does not fit)."""
        try:
            return self.plan(names).cycles
        except Infeasible:
            return math.inf


# --------------------------------------------------------------------------- partitioning
@dataclass
class Partition:
    """Sections of one segment (lists of einsum names) and how they were found."""

    sections: list[tuple[str, ...]]
    method: str
    status: str = "heuristic"
    objective_cycles: float = 0.0
    bound_cycles: float | None = None
    limit: str | None = None           # which solver limit stopped the ILP (None: finished)


# --------------------------------------------------------------------------- whole workload
@dataclass
class SectionRun:
    """A section as run in the workload: its plan and how often it runs."""

    segment: str
    plan: SectionPlan
    count: int
    program_loads: int

    @property
    def cycles(self) -> float:
        """Total cycles over all its runs (launch included)."""
        p = self.plan
        return self.count * (p.exec_cycles + p.orchestration_cycles) + \
            self.program_loads * p.program_cycles


@dataclass
class RduResult(Result):
    """Result of a workload on an RDU design (times in seconds, bytes per tier per socket).

    ``units``: the PCUs and PMUs of a socket, busy while a section executes (launch and
    program load excluded), utilization = the share of them a section places, over the run;
    ``memory``: the SRAM/HBM/DDR tiers (one socket); no energy model (``energy_pj`` is 0) and
    no per-task ``timeline``."""

    design: str
    design_hash: str
    workload: str
    config: dict
    runs: list[SectionRun]
    partitions: dict[str, Partition]
    chip: _Chip
    notes: list[str] = field(default_factory=list)
    identity: dict = field(default_factory=dict)

    @property
    def cycles(self) -> int:
        """Cycles of the design clock for the whole workload."""
        return whole_cycles(sum(r.cycles for r in self.runs))

    @property
    def seconds(self) -> float:
        """Wall time of the workload."""
        return sum(r.cycles for r in self.runs) / self.chip.clock_hz

    @property
    def clock_hz(self) -> float:
        """The design clock."""
        return self.chip.clock_hz

    @property
    def energy_breakdown_pj(self) -> dict[str, float]:
        """Empty: the RDU family has no energy model."""
        return {}

    @property
    def units(self) -> dict[str, UnitStats]:
        """PCUs and PMUs of one socket over the run."""
        total = sum(r.cycles for r in self.runs)
        busy = sum(r.count * r.plan.exec_cycles for r in self.runs)
        out = {}
        for kind, used, have in (("pcu", "pcus_used", self.chip.pcus),
                                 ("pmu", "pmus_used", self.chip.pmus)):
            work = sum(r.count * r.plan.exec_cycles * getattr(r.plan, used) for r in self.runs)
            out[kind] = UnitStats(kind, whole_cycles(busy), whole_cycles(busy), 0,
                                  work / (have * total) if have and total else 0.0,
                                  self.kernel_launches, 0.0)
        return out

    @property
    def memory(self) -> dict[str, MemoryStats]:
        """Bytes to and from each tier (one socket) and its bandwidth used over the run."""
        total = sum(r.cycles for r in self.runs)
        out = {}
        for tier, nbytes in self.memory_bytes.items():
            writes = sum(r.plan.write_bytes.get(tier, 0.0) * r.count for r in self.runs)
            bw = self.chip.tier_bytes_per_cycle.get(tier, 0.0)
            out[tier] = MemoryStats(tier, int(round(nbytes - writes)), int(round(writes)),
                                    nbytes / (bw * total) if bw and total else 0.0, 0.0)
        return out

    @property
    def timeline(self) -> list:
        """None recorded: sections are costed in closed form (see ``runs``)."""
        return []

    @property
    def kernel_launches(self) -> int:
        """Sections launched (every run of every section)."""
        return sum(r.count for r in self.runs)

    @property
    def memory_bytes(self) -> dict[str, float]:
        """Bytes moved to and from each tier by section inputs and outputs (one socket)."""
        out = {t: 0.0 for t in TIERS}
        for r in self.runs:
            for t, b in r.plan.tier_bytes.items():
                out[t] += b * r.count
        return out

    def layer_section(self) -> SectionRun | None:
        """The longest section of the repeated layers (None without a repeat)."""
        body = [r for r in self.runs if r.segment == "layers"]
        return max(body, key=lambda r: r.plan.exec_cycles) if body else None

    @property
    def hbm_utilization(self) -> float:
        """HBM bandwidth drawn by the longest section of the layers while it runs (0 without
        layers), as a fraction of peak."""
        r = self.layer_section()
        return r.plan.hbm_utilization(self.chip) if r else 0.0

    def to_dict(self) -> dict:
        """JSON-ready result: ``seconds``, ``cycles``, ``kernel_launches``, per-tier
        ``memory`` bytes, throughput, the sections and their stages."""
        cfg = self.config
        secs = self.seconds
        tokens = cfg["batch"] * (cfg["seq"] if cfg["phase"] == "prefill" else 1)
        layer = self.layer_section()
        return {
            "design": self.design, "design_hash": self.design_hash, "workload": self.workload,
            **cfg, "identity": dict(self.identity),
            "cycles": self.cycles, "seconds": secs,
            "tokens_per_s": (tokens / secs if secs else 0.0) if cfg["phase"] != "custom"
            else None,
            "tokens_per_s_per_user": (1.0 / secs if cfg["phase"] == "decode" and secs
                                      else None),
            "kernel_launches": self.kernel_launches,
            "memory": {k: int(round(v)) for k, v in self.memory_bytes.items()},
            "hbm_utilization": self.hbm_utilization,
            "layer_section": None if layer is None else {
                "ops": list(layer.plan.ops), "pcus": layer.plan.pcus_used,
                "pmus": layer.plan.pmus_used,
                "pcu_fraction": layer.plan.pcus_used / self.chip.pcus,
                "pmu_fraction": layer.plan.pmus_used / self.chip.pmus,
                "hbm_utilization": layer.plan.hbm_utilization(self.chip)},
            "partition": {seg: {"method": p.method, "status": p.status,
                                "sections": len(p.sections), "limit": p.limit,
                                "estimate_cycles": round(p.objective_cycles, 3)}
                          for seg, p in self.partitions.items()},
            "sections": [{
                "segment": r.segment, "ops": list(r.plan.ops), "count": r.count,
                "program_loads": r.program_loads,
                "cycles_each": r.plan.exec_cycles + r.plan.orchestration_cycles,
                "program_cycles": r.plan.program_cycles,
                "pcus": r.plan.pcus_used, "pmus": r.plan.pmus_used,
                "hbm_bytes": r.plan.tier_bytes["hbm"], "ddr_bytes": r.plan.tier_bytes["ddr"],
                "weights_restreamed": r.plan.weights_restreamed,
                "waves": r.plan.waves,
                "stages": [s.__dict__ for s in r.plan.stages]} for r in self.runs],
            "notes": self.notes,
        }

    def summary(self) -> str:
        """Human-readable summary."""
        d = self.to_dict()
        cfg = self.config
        lines = [f"{self.workload} on {self.design} x{cfg['sockets']} ({cfg['fusion']}, "
                 f"{cfg['orchestration']}-orchestrated launches)",
                 f"time {self.seconds * 1e3:.4f} ms ({self.cycles:,} cycles), "
                 f"{d['kernel_launches']:,} kernel launches"]
        if cfg["phase"] == "decode":
            lines.append(f"decode: {d['tokens_per_s_per_user']:,.1f} tokens/s per user, "
                         f"{d['tokens_per_s']:,.1f} tokens/s")
        elif cfg["phase"] == "prefill":
            lines.append(f"prefill: {d['tokens_per_s']:,.1f} tokens/s")
        mem = d["memory"]
        lines.append("memory traffic per socket: " + ", ".join(
            f"{k} {v / 1e9:.3f} GB" for k, v in mem.items()))
        if d["layer_section"]:
            ls = d["layer_section"]
            lines.append(f"longest layer section: {len(ls['ops'])} ops on {ls['pcus']} PCUs "
                         f"({ls['pcu_fraction']:.0%}), {ls['pmus']} PMUs "
                         f"({ls['pmu_fraction']:.0%}), HBM bandwidth {ls['hbm_utilization']:.0%}")
        lines.append(f"{'segment':<8} {'x':>3} {'ops':>4} {'waves':>5} {'PCUs':>5} {'PMUs':>5} "
                     f"{'us each':>10}  first..last")
        for r in self.runs:
            p = r.plan
            each = (p.exec_cycles + p.orchestration_cycles) / self.chip.clock_hz * 1e6
            lines.append(f"{r.segment:<8} {r.count:>3} {len(p.ops):>4} {len(p.waves):>5} "
                         f"{p.pcus_used:>5} {p.pmus_used:>5} {each:>10.3f}  "
                         f"{p.ops[0]}..{p.ops[-1]}")
        est = self.partition_estimate_cycles()
        lines.append(f"{cfg['partitioner']} partition estimate: {est:,.0f} cycles (its sections' "
                     f"costs x runs, each run loading its program); evaluated: "
                     f"{self.cycles:,} cycles")
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)

    def partition_estimate_cycles(self) -> float:
        """The partitioners' own figure: each segment's summed section costs (what they
        minimise) times the segment's runs. The evaluated figure differs by the program
        loads a repeated one-section layer skips."""
        count = {r.segment: r.count for r in self.runs}
        return float(sum(p.objective_cycles * count.get(seg, 1)
                         for seg, p in self.partitions.items()))


def segments(cascade) -> list[tuple[str, list[str], int]]:
    """(name, einsums, count) of the cascade's segments: before, the repeated body, after."""
    order = cascade.topological_order()
    if not cascade.repeats:
        return [("graph", order, 1)]
    if len(cascade.repeats) > 1:
        raise UserError("the RDU model handles one repeat (the layers) per workload")
    rep = cascade.repeats[0]
    body = list(cascade.repeat_body(rep))
    lo, hi = order.index(body[0]), order.index(body[-1])
    segs = []
    if lo:
        segs.append(("pre", order[:lo], 1))
    segs.append(("layers", body, rep.count))
    if hi + 1 < len(order):
        segs.append(("post", order[hi + 1:], 1))
    return segs


#: What an RDU problem decides, and the defaults.
DECISIONS = (
    Decision("fusion", "fused: sections found by the partitioner (unfused: one einsum each)"),
    Decision("partition", "ilp: exact over contiguous sections (mappers.partition)"),
    Decision("tiers", "persistent inputs in HBM, the least bandwidth-hungry spilled to DDR "
                      "when HBM is full (ilp: mappers.ilp.place_tiers)"),
)


@dataclass
class RduProblem:
    """The family's view of a problem: the section cost model (what every partitioner asks
    for a section's cycles), the segments to cut, the partitioner method asked for, and the
    result's configuration."""

    model: SectionModel
    segments: list[tuple[str, list[str], int]]
    method: str
    config: dict
    tier_solver: dict | None = None


class RduFamily:
    """The ``rdu`` family: designs with an ``rdu`` section (SN40L)."""

    name = "rdu"

    @property
    def model_version(self) -> str:
        """``rdu-N`` (see :data:`archsim.core.identity.MODEL_VERSIONS`)."""
        return model_version(self.name)

    def claims(self, design: Design, workload=None) -> bool:
        """Designs with an ``rdu`` section, whatever the workload."""
        return design.rdu is not None

    def problem(self, design, workload, *, fusion: str = "fused",
                partitioner: str | None = None, sockets: int = 1,
                orchestration: str | None = None, tiers: Mapping[str, str] | None = None,
                config: dict | None = None, reserve_bytes: float = 0.0,
                tier_solver: dict | None = None, **model_options) -> Problem:
        """The sections problem of ``workload`` (a cascade: one socket's shard; or a model
        name, whose tensor-parallel shard over ``sockets`` is built with ``model_options``:
        phase, batch, seq, kv, dtype (default bf16), layers, scope). ``tiers``: tensor ->
        tier choices already made (``"ilp"`` is a mapper: :func:`archsim.api.simulate` runs
        it first)."""
        design = load_design(design) if not isinstance(design, Design) else design
        if isinstance(workload, str) or not hasattr(workload, "einsums"):
            if sockets < 1:
                raise UserError(f"--sockets must be a positive integer, found {sockets}")
            opts = {"phase": None, "batch": 1, "seq": 1024, "kv": None, "dtype": "bf16",
                    "layers": None, "scope": "model"}
            unknown = sorted(set(model_options) - set(opts))
            if unknown:
                raise UserError(f"RDU model workloads take {', '.join(opts)}; not "
                                f"{', '.join(unknown)}")
            opts.update(model_options)
            model = workload
            workload = shard_graph(model, opts["phase"], opts["batch"], opts["seq"], opts["kv"],
                              sockets, opts["dtype"], opts["layers"], opts["scope"])
            config = {"model": model if isinstance(model, str) else
                      getattr(model, "name", str(model)),
                      "phase": opts["phase"] or ("decode" if "decode" in workload.name
                                                 else "prefill"),
                      "batch": opts["batch"], "seq": opts["seq"], "dtype": opts["dtype"]}
        elif model_options:
            raise UserError(f"{', '.join(sorted(model_options))} apply to a model name, not "
                            f"to a cascade")
        cascade = workload
        if fusion not in FUSIONS:
            raise UserError(f"--fusion must be one of {', '.join(FUSIONS)}, found {fusion!r}")
        method = "unfused" if fusion == "unfused" else (partitioner or "ilp")
        if method not in PARTITIONERS:
            raise UserError(f"unknown partitioner {method!r}; expected one of "
                            f"{', '.join(PARTITIONERS)}")
        if fusion == "unfused" and partitioner not in (None, "unfused"):
            raise UserError("--partition applies to --fusion fused")
        if tiers == "ilp":
            raise UserError("tiers='ilp' is the tier-placement mapper: run it first "
                            "(archsim.api.simulate does)")
        model = SectionModel(cascade, design, sockets=sockets, orchestration=orchestration,
                             tiers=tiers, reserve_bytes=reserve_bytes)
        cfg = dict(config or {})
        cfg.setdefault("phase", "custom")
        cfg.setdefault("batch", 1)
        cfg.setdefault("seq", 1)
        cfg.update({"sockets": sockets, "fusion": fusion, "partitioner": method,
                    "orchestration": orchestration or design.rdu.launch.orchestration})
        view = RduProblem(model, segments(cascade), method, cfg, tier_solver)
        return Problem(self.name, design, cascade, DECISIONS,
                       {"fusion": fusion, "partitioner": method, "sockets": sockets}, view)

    def evaluate(self, problem: Problem, mapping: Mapping[str, Partition]) -> RduResult:
        """Run the sections of ``mapping`` (segment name -> :class:`Partition`) and return
        an :class:`RduResult`."""
        view: RduProblem = problem.view
        model, cascade, design = view.model, problem.workload, problem.design
        missing = [seg for seg, _, _ in view.segments if seg not in mapping]
        if missing:
            raise MappingError(f"the mapping has no sections for segment(s) "
                               f"{', '.join(missing)}")
        runs: list[SectionRun] = []
        parts: dict[str, Partition] = {}
        prev_program = None
        for seg, names, count in view.segments:
            part = mapping[seg]
            parts[seg] = part
            plans = [model.plan(s) for s in part.sections]
            for p in plans:
                if count > 1 and len(plans) == 1:
                    loads = int(prev_program != p.ops)      # the same kernel again and again
                else:
                    loads = count if count > 1 else int(prev_program != p.ops)
                runs.append(SectionRun(seg, p, count, loads))
                prev_program = p.ops
        notes = []
        if view.tier_solver is not None:
            notes.append(f"tiers placed by ILP ({view.tier_solver['status']}, "
                         f"{view.tier_solver['nodes']} nodes)")
        ddr = sorted(t for t, tier in model.place.items() if tier == "ddr")
        if ddr:
            notes.append(f"{len(ddr)} tensors spilled to DDR: {', '.join(ddr[:6])}"
                         + (" ..." if len(ddr) > 6 else ""))
        return RduResult(design.name, design.hash, cascade.name, dict(view.config), runs,
                         parts, model.chip, notes,
                         identity(design, family="rdu", workload_hash=cascade_hash(cascade)))


FAMILY = RduFamily()


def clear_graph_cache() -> None:
    """Forget the cached model graphs of :func:`shard_graph` (benchmarks time a cold run)."""
    _shard_graph_cached.cache_clear()


@lru_cache(maxsize=64)
def _shard_graph_cached(model, phase, batch, seq, kv, tp, dtype, layers, scope):
    import dataflow

    return dataflow.model_graph(model, phase, batch, seq, kv, tp=tp, dtype=dtype,
                                layers=layers, scope=scope)


def shard_graph(model, phase, batch, seq, kv, tp, dtype, layers, scope):
    """The model graph of one socket's tensor-parallel shard (``tp`` sockets); built-in
    models with one context length are cached (:func:`clear_graph_cache`)."""
    if isinstance(model, str) and not isinstance(kv, list):
        return _shard_graph_cached(model, phase, batch, seq, kv, tp, dtype, layers, scope)
    import dataflow

    return dataflow.model_graph(model, phase, batch, seq, kv, tp=tp, dtype=dtype,
                                layers=layers, scope=scope)


def describe_stages(result: RduResult, segment: str = "layers") -> list[dict[str, Any]]:
    """Rows (one per stage) of the sections of ``segment``: section index, stage, wave,
    PCUs, PMUs, per-tile cycles, what bounds the stage (``bound``: compute, pmu or link) and
    what bounds its wave (``wave_bound``: pipeline, hbm, ddr, sram or network) -- for tables
    and plots."""
    rows = []
    k = 0
    for r in result.runs:
        if r.segment != segment:
            continue
        for s in r.plan.stages:
            rows.append({"section": k, **s.__dict__,
                         "wave_bound": r.plan.waves[s.wave]["bound"]})
        k += 1
    return rows
