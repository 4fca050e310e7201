"""Attention and encoder layers on spatial PE arrays: FuseMax, FLAT and the unfused baseline.

One machinery evaluates every design; designs differ in their units (PE operations, array and
buffer sizes) and in their ``spatial`` policy (attention cascade, binding, schedule). Nothing
here knows which design it runs.

**Workload.** Attention is an einsum cascade of :mod:`dataflow.attention` (1-pass, 3-pass or
3-pass with division deferral) over batch ``b`` and heads ``h``. Each einsum's iteration space
(its ranks) and per-point operations come from the cascade text.

**Mapping** (:func:`map_attention`). M -> (M1, M0) and P -> (P2, P1, P0) with M0 x P0 filling
the 2D array (M0 = rows, P0 = columns = 1D PEs). An *epoch* is one (b, h, P0-tile) of queries
and, for cascades split along M, one M1 chunk of keys. P1 is the largest divisor of P/P0 whose
per-query on-chip state fits the global buffer beside double-buffered K/V tiles; K and V are
re-streamed from DRAM once per P2 chunk. Intermediates spanning a whole key fiber that pass
between the arrays (3-pass QK and A) need R x M elements per block of R = P1 x P0 queries: on
chip when they fit, otherwise the fraction that does not fit spills to DRAM (written once,
read once by the consuming array); ``intermediates: dram`` always spills. Among the P1 choices
the mapper keeps the fastest (then the least DRAM traffic).

**Binding.** ``array2d_runs: tile`` puts every einsum over a whole (m, p) tile on the 2D array
and the rest (per-(m1, p) and per-p einsums) on the 1D array (FuseMax); ``mac`` puts only
multiply-accumulate einsums on the 2D array (FLAT).

**Evaluation** (:func:`evaluate_attention`). An einsum's work on its array is
``points x cycles_per_point / PEs`` (cycles per point from the PE's issue mode, see
:mod:`archsim.units.pe_array`). The schedule turns work into time:

``pipelined``
    software-pipelined epochs: each array works on a different epoch, so compute time is the
    busiest array's total work;
``tile``
    tile-at-a-time: epochs run one after another; an epoch's time is the list schedule of its
    einsums on the two arrays, where a reduction across the 2D array's rows delivers its result
    ``rows`` cycles after it is issued (the partial results traverse a column);
``phased``
    each maximal run of consecutive einsums on one array is a phase taking the longer of its
    compute and its DRAM traffic; phases run back to back.

For ``pipelined`` and ``tile`` DRAM traffic overlaps compute: time = max(compute, DRAM bytes /
bandwidth). Energy = operations x energy per operation + DRAM bytes x DRAM energy + global
buffer bytes x buffer energy.

**Encoders** (:func:`simulate_model`): attention plus the linear layers (QKV, output projection
and FFN GEMMs of :func:`dataflow.model_graph`) as output-stationary GEMM tiles on the 2D array,
times the number of layers. Element-wise einsums (bias, residual, norm, activation) are left
out, as in FuseMax's end-to-end comparison; the result lists them under ``notes``.
"""
from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from archsim.core.identity import cascade_hash, identity, model_version, model_workload_hash
from archsim.core.physics import roofline_time
from archsim.errors import MappingError, UserError, WorkloadError
from dataflow.errors import CascadeError
from archsim.core.physics import whole_cycles
from archsim.families.base import Decision, Problem
from archsim.result import MemoryStats, Result, UnitStats
from archsim.spec import Design, load_design

#: Attention cascades the spatial model evaluates.
SPATIAL_ATTENTION_KINDS = ("1pass", "3pass", "deferred")
_KEY_RANKS = ("m", "m0")
_EMBED_RANKS = ("e", "f")


# --------------------------------------------------------------------------- workload
@dataclass(frozen=True)
class AttentionShape:
    """One attention layer: ``batch`` x ``heads`` attentions of ``m`` keys and ``p`` queries
    with key / value embedding sizes ``e`` / ``f`` and ``bits``-bit elements."""

    batch: int
    heads: int
    m: int
    p: int
    e: int
    f: int
    bits: int = 16

    def __post_init__(self):
        for k in ("batch", "heads", "m", "p", "e", "f", "bits"):
            v = getattr(self, k)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise WorkloadError(f"attention {k} must be a positive integer, found {v!r}")

    @property
    def element_bytes(self) -> float:
        """Bytes per element."""
        return self.bits / 8

    @property
    def points(self) -> int:
        """B x H x M x P: the (key, query) pairs."""
        return self.batch * self.heads * self.m * self.p


@dataclass(frozen=True)
class _EinsumInfo:
    name: str
    ranks: tuple[str, ...]          # iteration space
    reduced: tuple[str, ...]
    per_point_ops: tuple[tuple[str, float], ...]
    inputs: tuple[str, ...]
    output: str
    is_mac: bool
    text: str


@dataclass(frozen=True)
class _CascadeInfo:
    kind: str
    einsums: tuple[_EinsumInfo, ...]
    tensor_ranks: dict
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    state: tuple[str, ...]          # running state along m1 (recurrences)


@functools.lru_cache(maxsize=None)
def cascade_structure(kind: str) -> _CascadeInfo:
    """The einsums of attention cascade ``kind`` with their ranks and per-point operations
    (taken from a small instance of :func:`dataflow.attention_cascade`; they do not depend on
    the sizes)."""
    from dataflow import attention_cascade
    from dataflow.metrics import einsum_ops

    if kind not in SPATIAL_ATTENTION_KINDS:
        raise WorkloadError(f"spatial arrays run the attention cascades "
                            f"{', '.join(SPATIAL_ATTENTION_KINDS)}; found {kind!r}")
    cas = attention_cascade(kind, m=8, p=2, e=2, f=2, m0=4, outer={"b": 1, "h": 1})
    infos = []
    for e in cas.einsums:
        if not e.input_tensors:
            continue                 # initial values of the running state: registers, free
        pts = cas.points(e.name)
        ops = einsum_ops(cas, e.name)
        infos.append(_EinsumInfo(
            name=e.name, ranks=tuple(e.rank_vars()), reduced=tuple(e.reduced_ranks()),
            per_point_ops=tuple((k, n / pts) for k, n in ops.items()),
            inputs=tuple(e.input_tensors), output=e.output_tensor, is_mac=e.is_mac(),
            text=e.text))
    state = tuple(t for t, d in cas.tensors.items() if d.extents)
    return _CascadeInfo(kind=kind, einsums=tuple(infos),
                        tensor_ranks={t: tuple(d.ranks) for t, d in cas.tensors.items()},
                        inputs=tuple(cas.inputs()), outputs=tuple(cas.outputs()), state=state)


def attention_of(cascade) -> tuple[str, AttentionShape]:
    """The kind and shape of ``cascade`` when it is one of the attention cascades the spatial
    model evaluates (:data:`SPATIAL_ATTENTION_KINDS`, as :func:`dataflow.attention_cascade`
    writes them, under any name, with any outer ranks: ``h`` counts as heads, the others as
    batch). Raises WorkloadError for any other cascade, naming what the model takes."""
    from dataflow.attention import attention_cascade

    ranks = dict(cascade.ranks)
    reserved = ("m", "m1", "m0", "p", "e", "f")
    outer = {r: n for r, n in ranks.items() if r not in reserved}
    bits = {t.bits for t in cascade.tensors.values()}
    texts = [e.text for e in cascade.einsums]
    tensors = {t: (x.ranks, x.bits) for t, x in cascade.tensors.items()}
    if all(r in ranks for r in ("m", "p", "e", "f")) and len(bits) == 1:
        (width,) = bits
        for kind in SPATIAL_ATTENTION_KINDS:
            try:
                ref = attention_cascade(kind, m=ranks["m"], p=ranks["p"], e=ranks["e"],
                                        f=ranks["f"], m0=ranks.get("m0"), outer=outer,
                                        bits=width)
            except CascadeError:         # e.g. no m0 for a split kind
                continue
            if [e.text for e in ref.einsums] == texts and \
                    {t: (x.ranks, x.bits) for t, x in ref.tensors.items()} == tensors:
                batch = math.prod(n for r, n in outer.items() if r != "h")
                return kind, AttentionShape(batch, outer.get("h", 1), ranks["m"], ranks["p"],
                                            ranks["e"], ranks["f"], width)
    raise WorkloadError(
        f"cascade {cascade.name!r} is not an attention cascade the spatial model evaluates: "
        f"spatial designs run the {', '.join(SPATIAL_ATTENTION_KINDS)} attention cascades "
        f"(built-in: attention, attention_deferred, attention_1pass) and encoder models "
        f"(--model); other cascades run on graph-family designs (e.g. npu)")


# --------------------------------------------------------------------------- mapping
@dataclass
class SpatialMapping:
    """Tiling, binding and intermediate homes of one attention on a spatial design.

    ``m0``/``p0``: the 2D tile (M0 keys x P0 queries); ``p1``: P0-tiles per block of queries
    sharing one pass over K and V; ``p2``: blocks (K and V are streamed ``p2`` times);
    ``binding``: einsum -> unit; ``schedule``: how epochs overlap; ``spill_fraction``: share
    of the key-fiber intermediates that live in DRAM; ``notes``: why.
    """

    kind: str
    m0: int
    p0: int
    p1: int
    p2: int
    binding: dict[str, str]
    schedule: str
    spill_fraction: float = 0.0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form."""
        return asdict(self)


def _policy(design: Design):
    if design.spatial is None:
        raise UserError(f"design {design.name!r} has no `spatial` section: the spatial "
                        f"attention model needs one (see designs/fusemax.yaml)")
    return design.spatial


def _bind(info: _CascadeInfo, runs: str, a2: str, a1: str) -> dict[str, str]:
    out = {}
    for e in info.einsums:
        tile = any(r in e.ranks for r in _KEY_RANKS) and "p" in e.ranks
        on2d = tile if runs == "tile" else (e.is_mac and any(r in e.ranks for r in _KEY_RANKS))
        out[e.name] = a2 if on2d else a1
    return out


def _epoch_extent(rank: str, shape: AttentionShape, m0: int, p0: int, split: bool) -> int:
    """Extent of ``rank`` inside one epoch."""
    return {"b": 1, "h": 1, "p": p0, "m0": m0, "m1": 1, "m": m0 if split else shape.m,
            "e": shape.e, "f": shape.f}[rank]


def _full_extent(rank: str, shape: AttentionShape, m0: int) -> int:
    return {"b": shape.batch, "h": shape.heads, "p": shape.p, "m0": m0, "m1": shape.m // m0,
            "m": shape.m, "e": shape.e, "f": shape.f}[rank]


def _crossing(info: _CascadeInfo, binding: dict[str, str]) -> tuple[list[str], list[str]]:
    """(key-fiber intermediates read on another array than the one writing them, key-fiber
    intermediates kept on one array)."""
    writer = {e.output: e.name for e in info.einsums}
    cross, local = [], []
    for t, ranks in info.tensor_ranks.items():
        if t in info.inputs or t not in writer or not any(r in ranks for r in _KEY_RANKS):
            continue
        readers = [e.name for e in info.einsums if t in e.inputs and e.name != writer[t]]
        (cross if any(binding[r] != binding[writer[t]] for r in readers) else local).append(t)
    return cross, local


def _per_query_state_bytes(info: _CascadeInfo, shape: AttentionShape) -> float:
    """Bytes per query held on chip for a whole block: query-indexed tensors without a key
    rank, except per-chunk transients of a split cascade (their M1 slice lives one epoch)."""
    total = 0
    for t, ranks in info.tensor_ranks.items():
        if "p" not in ranks or any(r in ranks for r in _KEY_RANKS):
            continue
        if "m1" in ranks and t not in info.state:
            continue
        n = 1
        for r in ranks:
            n *= {"e": shape.e, "f": shape.f}.get(r, 1)
        total += n
    return total * shape.element_bytes


def map_attention(design: Design, shape: AttentionShape, *, p1: int | None = None,
                  kind: str | None = None) -> SpatialMapping:
    """Choose the tiling of ``shape`` on ``design`` (see module docstring); ``p1`` forces a
    block size; ``kind`` is the attention cascade (default: the design's
    ``spatial.attention``). Raises MappingError if no block fits the buffer."""
    pol = _policy(design)
    kind = kind or pol.attention
    a2 = design.unit_models[pol.array2d]
    a1 = design.unit_models[pol.array1d]
    info = cascade_structure(kind)
    split = kind == "1pass"
    m0 = min(a2.spec.rows, shape.m)
    p0 = min(a2.spec.cols, shape.p)
    notes = []
    if split and shape.m % m0:
        raise MappingError(f"the 1-pass cascade splits M = {shape.m} into chunks of M0 = {m0} "
                           f"(the 2D array's rows), which must divide it")
    if shape.p % p0:
        raise MappingError(f"P = {shape.p} queries must be a multiple of P0 = {p0} (the 2D "
                           f"array's columns)")
    if a1.pes < p0:
        notes.append(f"the 1D array has {a1.pes} PEs for P0 = {p0} queries per tile")
    binding = _bind(info, pol.array2d_runs, pol.array2d, pol.array1d)
    cap = design.memories[pol.buffer].capacity_bytes
    eb = shape.element_bytes
    kv_tiles = 2 * m0 * (shape.e + shape.f) * eb          # double-buffered K and V tiles
    cross, local = _crossing(info, binding)
    local_rows = 2 * shape.m * eb * len(local) if not split else 0  # one row being processed
    state_q = _per_query_state_bytes(info, shape)
    tiles = shape.p // p0
    candidates = [d for d in range(1, tiles + 1) if tiles % d == 0]
    best = None
    for c in candidates:
        rows = c * p0
        avail = cap - kv_tiles - local_rows - rows * state_q
        if avail < 0:
            continue
        need = rows * shape.m * eb * len(cross) if not split else 0
        if pol.intermediates == "dram":
            spill = 1.0 if need else 0.0
        else:
            spill = 0.0 if need <= avail else 1.0 - avail / need
        m = SpatialMapping(kind=kind, m0=m0, p0=p0, p1=c, p2=tiles // c,
                           binding=binding, schedule=pol.schedule, spill_fraction=spill,
                           notes=list(notes))
        if p1 is not None:
            if c == p1:
                best = (None, m)
            continue
        ev = evaluate_attention(design, shape, m)
        key = (ev.cycles, ev.dram_bytes, -c)
        if best is None or key < best[0]:
            best = (key, m)
    if best is None:
        if p1 is not None:
            raise MappingError(f"p1 = {p1} is not a divisor of P/P0 = {tiles} whose state fits "
                               f"the {cap}-byte buffer")
        raise MappingError(
            f"no block of queries fits the {cap}-byte buffer {pol.buffer!r}: one P0 tile needs "
            f"{int(p0 * state_q)} bytes of per-query state beside {int(kv_tiles)} bytes of K/V "
            f"tiles")
    m = best[1]
    if m.spill_fraction > 0:
        m.notes.append(f"{m.spill_fraction:.1%} of the key-fiber intermediates "
                       f"({', '.join(cross)}) spill to DRAM")
    return m


# --------------------------------------------------------------------------- evaluation
@dataclass
class EinsumCost:
    """One einsum of a spatial evaluation: unit, points, cycles per point, work on its array
    (unit cycles), operations and their energy."""

    name: str
    text: str
    unit: str
    points: int
    cycles_per_point: float
    work_cycles: float
    ops: dict[str, float]
    energy_pj: float
    epochs: int


@dataclass
class SpatialResult:
    """Cycles, utilization, traffic and energy of a spatial evaluation (units as named)."""

    design: str
    workload: str
    clock_hz: float
    cycles: float
    compute_cycles: float
    dram_cycles: float
    unit_work_cycles: dict[str, float]
    unit_energy_pj: dict[str, float]
    dram_bytes: float
    dram_bytes_by_tensor: dict[str, float]
    buffer_bytes: float
    energy_breakdown_pj: dict[str, float]
    einsums: list[EinsumCost]
    mapping: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    dram_write_bytes: float = 0.0        # of dram_bytes: outputs and spilled intermediates
    unit_kinds: dict[str, str] = field(default_factory=dict)
    levels: dict[str, str] = field(default_factory=dict)   # "dram"/"buffer" -> memory name
    dram_bytes_per_cycle: float = 0.0

    @property
    def seconds(self) -> float:
        """Latency in seconds."""
        return self.cycles / self.clock_hz

    @property
    def energy_pj(self) -> float:
        """Total energy in pJ."""
        return float(sum(self.energy_breakdown_pj.values()))

    def utilization(self, unit: str) -> float:
        """Busy fraction of ``unit`` over the run."""
        return min(self.unit_work_cycles.get(unit, 0.0) / self.cycles, 1.0) if self.cycles else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``units`` has each array's ``utilization``)."""
        return {
            "design": self.design, "workload": self.workload, "cycles": self.cycles,
            "seconds": self.seconds, "energy_pj": self.energy_pj,
            "compute_cycles": self.compute_cycles, "dram_cycles": self.dram_cycles,
            "units": {u: {"utilization": self.utilization(u), "busy_cycles": w,
                          "energy_pj": self.unit_energy_pj.get(u, 0.0)}
                      for u, w in self.unit_work_cycles.items()},
            "memory": {"dram": {"bytes": self.dram_bytes,
                                "by_tensor": dict(self.dram_bytes_by_tensor)},
                       "buffer": {"bytes": self.buffer_bytes}},
            "energy_breakdown_pj": dict(self.energy_breakdown_pj),
            "einsums": [asdict(e) for e in self.einsums],
            "mapping": self.mapping, "notes": list(self.notes),
        }

    def summary(self) -> str:
        """Short human-readable report."""
        lines = [f"{self.workload} on {self.design}: {self.seconds:.6g} s "
                 f"({self.cycles:.6g} cycles; compute {self.compute_cycles:.6g}, DRAM "
                 f"{self.dram_cycles:.6g}), energy {self.energy_pj / 1e12:.6g} J"]
        for u in self.unit_work_cycles:
            lines.append(f"  {u:<8} utilization {self.utilization(u):.3f}")
        lines.append(f"  DRAM {self.dram_bytes / 1e9:.4g} GB, global buffer "
                     f"{self.buffer_bytes / 1e9:.4g} GB")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _list_schedule(tasks, units) -> float:
    """Makespan of ``tasks`` [(name, unit, work, result_latency, deps)] issued in order, each
    on its unit as soon as the unit is free and its inputs have arrived."""
    free = dict.fromkeys(units, 0.0)
    done: dict[str, float] = {}
    end = 0.0
    for name, unit, work, lat, deps in tasks:
        start = max([free[unit]] + [done[d] for d in deps if d in done])
        free[unit] = start + work
        done[name] = start + work + lat
        end = max(end, done[name])
    return end


def evaluate_attention(design: Design, shape: AttentionShape,
                       mapping: SpatialMapping | None = None, *,
                       kind: str | None = None) -> SpatialResult:
    """Latency, utilization, traffic and energy of one attention layer ``shape`` on
    ``design`` under ``mapping`` (default: :func:`map_attention` of cascade ``kind``, the
    design's own by default)."""
    pol = _policy(design)
    if mapping is None:
        mapping = map_attention(design, shape, kind=kind)
    info = cascade_structure(mapping.kind)
    split = mapping.kind == "1pass"
    m0, p0 = mapping.m0, mapping.p0
    eb = shape.element_bytes
    units = {u: design.unit_models[u] for u in (pol.array2d, pol.array1d)}
    tiles = shape.batch * shape.heads * (shape.p // p0)
    m1 = shape.m // m0 if split else 1
    costs: list[EinsumCost] = []
    for e in info.einsums:
        unit = units[mapping.binding[e.name]]
        ops = dict(e.per_point_ops)
        points = 1
        for r in e.ranks:
            points *= _full_extent(r, shape, m0)
        epochs = tiles * (m1 if "m1" in e.ranks else 1)
        spatial = 1
        for r in e.ranks:
            if r not in _EMBED_RANKS:
                spatial *= _epoch_extent(r, shape, m0, p0, split)
        fill = min(1.0, spatial / unit.pes)
        cpp = unit.point_cycles(ops)
        work = points * cpp / (unit.pes * fill) * unit.cycle_scale
        costs.append(EinsumCost(
            name=e.name, text=e.text, unit=unit.name, points=points, cycles_per_point=cpp,
            work_cycles=work, ops={k: n * points for k, n in ops.items()},
            energy_pj=points * unit.point_energy_pj(ops), epochs=epochs))
    by_name = {c.name: c for c in costs}

    # DRAM traffic per tensor
    cross, _local = _crossing(info, mapping.binding)
    dram: dict[str, float] = {}
    rank_size = {"e": shape.e, "f": shape.f}
    bh = shape.batch * shape.heads
    for t in info.inputs:
        per = 1
        for r in info.tensor_ranks[t]:
            per *= rank_size.get(r, 1)
        key_tensor = any(r in info.tensor_ranks[t] for r in _KEY_RANKS)
        n = bh * per * (shape.m if key_tensor else shape.p)
        dram[t] = n * eb * (mapping.p2 if key_tensor else 1)
    for t in info.outputs:
        dram[t] = bh * shape.f * shape.p * eb
    # key-fiber intermediates crossing arrays: written once, read once per reading array
    phases = _phases(info, mapping.binding)
    fiber_bytes = bh * shape.m * shape.p * eb * mapping.spill_fraction
    for t in cross:
        reading = {i for i, ph in enumerate(phases) for n in ph if t in _inputs_of(info, n)}
        dram[t] = fiber_bytes * (1 + len(reading))

    bw = design.bandwidth_bytes_per_cycle[pol.dram]
    dram_total = float(sum(dram.values()))
    work_by_unit = {u: 0.0 for u in units}
    for c in costs:
        work_by_unit[c.unit] += c.work_cycles
    if mapping.schedule == "pipelined":
        compute = max(work_by_unit.values())
        cycles = roofline_time(compute, dram_total, bw)
    elif mapping.schedule == "tile":
        rows = units[pol.array2d].spec.rows
        per_epoch = [c for c in costs if c.epochs == tiles * m1] if split else costs
        tail = [c for c in costs if c not in per_epoch]
        deps = {e.name: [w.name for w in info.einsums if w.output in e.inputs and w.name != e.name]
                for e in info.einsums}
        red = {e.name: e.reduced for e in info.einsums}
        tasks = []
        for c in per_epoch:
            lat = rows if (c.unit == pol.array2d and any(r in _KEY_RANKS for r in red[c.name])) else 0
            tasks.append((c.name, c.unit, c.work_cycles / c.epochs, lat, deps[c.name]))
        epoch_time = _list_schedule(tasks, units)
        tail_time = _list_schedule([(c.name, c.unit, c.work_cycles / c.epochs, 0, ()) for c in tail],
                                   units) if tail else 0.0
        compute = tiles * (m1 * epoch_time + tail_time)
        cycles = roofline_time(compute, dram_total, bw)
    else:  # phased
        compute = 0.0
        cycles = 0.0
        for ph in phases:
            comp = sum(by_name[n].work_cycles for n in ph)
            reads = {t for n in ph for t in _inputs_of(info, n)}
            writes = {_output_of(info, n) for n in ph}
            mem = sum(dram[t] for t in (reads | writes) if t in dram and t not in cross)
            mem += sum(fiber_bytes * ((t in reads) + (t in writes)) for t in cross)
            compute += comp
            cycles += roofline_time(comp, mem, bw)

    # global buffer traffic: operands crossing arrays or coming from DRAM pass through it
    writer_unit = {e.output: mapping.binding[e.name] for e in info.einsums}
    buf = 0.0
    for e in info.einsums:
        c = by_name[e.name]
        for t in (*e.inputs, e.output):
            if t in writer_unit and t != e.output and writer_unit[t] == c.unit and t not in info.state:
                continue                 # stays in the array's registers
            if t == e.output and all(mapping.binding[r.name] == c.unit for r in info.einsums
                                     if t in r.inputs) and t not in info.outputs \
                    and t not in info.state:
                continue
            n = 1
            for r in info.tensor_ranks[t]:
                n *= _epoch_extent(r, shape, m0, p0, split) if r != "m1" else 1
            buf += n * c.epochs * eb
    mem_specs = design.memories
    e_dram = dram_total * mem_specs[pol.dram].energy.read_pj_per_byte
    e_buf = buf * mem_specs[pol.buffer].energy.read_pj_per_byte
    unit_energy = {u: sum(c.energy_pj for c in costs if c.unit == u) for u in units}
    energy = {**unit_energy, pol.buffer: e_buf, pol.dram: e_dram}
    notes = list(mapping.notes)
    return SpatialResult(
        design=design.name,
        workload=f"attention-{mapping.kind} b{shape.batch} h{shape.heads} m{shape.m} "
                 f"p{shape.p} e{shape.e} f{shape.f}",
        clock_hz=design.clock_hz, cycles=float(cycles), compute_cycles=float(compute),
        dram_cycles=dram_total / bw, unit_work_cycles=work_by_unit, unit_energy_pj=unit_energy,
        dram_bytes=dram_total, dram_bytes_by_tensor=dram, buffer_bytes=buf,
        energy_breakdown_pj=energy, einsums=costs, mapping=mapping.to_dict(), notes=notes,
        dram_write_bytes=float(sum(dram[t] for t in info.outputs) + fiber_bytes * len(cross)),
        unit_kinds={u: design.units[u].kind for u in units},
        levels={"dram": pol.dram, "buffer": pol.buffer}, dram_bytes_per_cycle=bw)


def _inputs_of(info: _CascadeInfo, name: str) -> tuple[str, ...]:
    return next(e.inputs for e in info.einsums if e.name == name)


def _output_of(info: _CascadeInfo, name: str) -> str:
    return next(e.output for e in info.einsums if e.name == name)


def _phases(info: _CascadeInfo, binding: dict[str, str]) -> list[list[str]]:
    """Maximal runs of consecutive einsums (program order) bound to one array."""
    out: list[list[str]] = []
    for e in info.einsums:
        if out and binding[out[-1][-1]] == binding[e.name]:
            out[-1].append(e.name)
        else:
            out.append([e.name])
    return out


# --------------------------------------------------------------------------- encoders
#: Model-graph roles evaluated as linear layers on the 2D array.
LINEAR_ROLES = ("qkv", "out_proj", "ffn")


@dataclass
class GemmCost:
    """One linear layer as a GEMM on the 2D array: sizes, cycles, DRAM bytes and energy."""

    name: str
    m: int
    n: int
    k: int
    cycles: float
    compute_cycles: float
    dram_bytes: float
    energy_pj: float
    # the parts of energy_pj and dram_bytes (kept out of the JSON form: see JSON_FIELDS)
    compute_energy_pj: float = 0.0
    dram_energy_pj: float = 0.0
    buffer_energy_pj: float = 0.0
    buffer_bytes: float = 0.0
    dram_write_bytes: float = 0.0

    JSON_FIELDS = ("name", "m", "n", "k", "cycles", "compute_cycles", "dram_bytes", "energy_pj")

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``linear`` entries of a model result)."""
        return {k: getattr(self, k) for k in self.JSON_FIELDS}


def evaluate_gemm(design: Design, name: str, m: int, n: int, k: int, bits: int = 16
                  ) -> GemmCost:
    """An (m x k) x (k x n) GEMM on the 2D array, output-stationary: rows x cols output tiles,
    each accumulating k products in place, tiles back to back (the next tile's operands stream
    in while the current one drains); operands and result cross DRAM once (the weight slice and
    the activation rows a tile needs fit the buffer for every model evaluated). Time is the
    longer of compute and DRAM traffic."""
    pol = _policy(design)
    a2 = design.unit_models[pol.array2d]
    tiles = math.ceil(m / a2.spec.rows) * math.ceil(n / a2.spec.cols)
    compute = tiles * k * a2.point_cycles({"mac": 1}) * a2.cycle_scale
    eb = bits / 8
    nbytes = (m * k + k * n + m * n) * eb
    bw = design.bandwidth_bytes_per_cycle[pol.dram]
    macs = m * n * k
    buf = (tiles * k * (a2.spec.rows + a2.spec.cols) + m * n) * eb
    e_compute = macs * a2.point_energy_pj({"mac": 1})
    e_dram = nbytes * design.memories[pol.dram].energy.read_pj_per_byte
    e_buf = buf * design.memories[pol.buffer].energy.read_pj_per_byte
    energy = e_compute + e_dram + e_buf
    return GemmCost(name=name, m=m, n=n, k=k, cycles=roofline_time(compute, nbytes, bw),
                    compute_cycles=compute, dram_bytes=nbytes, energy_pj=energy,
                    compute_energy_pj=e_compute, dram_energy_pj=e_dram, buffer_energy_pj=e_buf,
                    buffer_bytes=buf, dram_write_bytes=m * n * eb)


@dataclass
class ModelResult(Result):
    """An encoder on a spatial design: attention and linear layers per layer, x layers.

    ``units``: each array's busy cycles (the 2D array also runs the linear layers) and
    energy; ``memory``: DRAM (reads and writes) and the global buffer (the model prices every
    buffer access as a read, so all of it is ``read_bytes``); no per-task ``timeline``."""

    design: str
    model: str
    batch: int
    seq: int
    layers: int
    scope: str
    clock_hz: float
    attention: SpatialResult
    gemms: list[GemmCost]
    excluded: list[str]
    array2d: str = "array2d"
    identity: dict[str, Any] = field(default_factory=dict)

    @property
    def cycles(self) -> float:
        """Total cycles."""
        per_layer = self.attention.cycles + sum(g.cycles for g in self.gemms)
        return per_layer * self.layers

    @property
    def seconds(self) -> float:
        """Latency in seconds."""
        return self.cycles / self.clock_hz

    @property
    def energy_breakdown_pj(self) -> dict[str, float]:
        """Energy by component (attention's units and memories; ``linear`` for the GEMMs)."""
        out = {k: v * self.layers for k, v in self.attention.energy_breakdown_pj.items()}
        if self.gemms:
            out["linear"] = sum(g.energy_pj for g in self.gemms) * self.layers
        return out

    def _busy_cycles(self, unit: str) -> float:
        work = self.attention.unit_work_cycles.get(unit, 0.0)
        if unit == self.array2d:
            work += sum(g.compute_cycles for g in self.gemms)
        return work * self.layers

    @property
    def units(self) -> dict[str, UnitStats]:
        """Per-array figures over the whole run (busy = compute: the model has no stalls)."""
        out = {}
        for u in self.attention.unit_work_cycles:
            busy = whole_cycles(self._busy_cycles(u))
            tasks = sum(1 for e in self.attention.einsums if e.unit == u) + \
                (len(self.gemms) if u == self.array2d else 0)
            energy = self.attention.unit_energy_pj.get(u, 0.0) + \
                (sum(g.compute_energy_pj for g in self.gemms) if u == self.array2d else 0.0)
            out[u] = UnitStats(self.attention.unit_kinds.get(u, u), busy, busy, 0,
                               self.utilization(u), tasks * self.layers, energy * self.layers)
        return out

    @property
    def memory(self) -> dict[str, MemoryStats]:
        """DRAM and global-buffer traffic over the whole run."""
        a, n = self.attention, self.layers
        levels = a.levels or {"dram": "dram", "buffer": "buffer"}
        total = (a.dram_bytes + sum(g.dram_bytes for g in self.gemms)) * n
        writes = (a.dram_write_bytes + sum(g.dram_write_bytes for g in self.gemms)) * n
        bw = a.dram_bytes_per_cycle
        util = total / (bw * self.cycles) if bw and self.cycles else 0.0
        dram_pj = (a.energy_breakdown_pj.get(levels["dram"], 0.0)
                   + sum(g.dram_energy_pj for g in self.gemms)) * n
        buffer_pj = (a.energy_breakdown_pj.get(levels["buffer"], 0.0)
                     + sum(g.buffer_energy_pj for g in self.gemms)) * n
        buffer_bytes = (a.buffer_bytes + sum(g.buffer_bytes for g in self.gemms)) * n
        return {
            levels["dram"]: MemoryStats("dram", int(round(total - writes)), int(round(writes)),
                                        min(util, 1.0), dram_pj),
            levels["buffer"]: MemoryStats("sram", int(round(buffer_bytes)), 0, 0.0, buffer_pj),
        }

    @property
    def timeline(self) -> list:
        """None modelled: the spatial model is closed form per cascade."""
        return []

    def utilization(self, unit: str) -> float:
        """Busy fraction of ``unit`` (the 2D array also runs the linear layers)."""
        work = self.attention.unit_work_cycles.get(unit, 0.0)
        if unit == self.array2d:
            work += sum(g.compute_cycles for g in self.gemms)
        per_layer = self.cycles / self.layers
        return min(work / per_layer, 1.0) if per_layer else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: ``seconds``, ``energy_pj``, ``units`` with ``utilization``."""
        return {
            "design": self.design, "model": self.model, "batch": self.batch, "seq": self.seq,
            "layers": self.layers, "scope": self.scope, "cycles": self.cycles,
            "seconds": self.seconds, "energy_pj": self.energy_pj,
            "units": {u: {"utilization": self.utilization(u),
                          "busy_cycles": (self.attention.unit_work_cycles[u]
                                          + (sum(g.compute_cycles for g in self.gemms)
                                             if u == self.array2d else 0.0)) * self.layers}
                      for u in self.attention.unit_work_cycles},
            "energy_breakdown_pj": self.energy_breakdown_pj,
            "identity": dict(self.identity),
            "attention": self.attention.to_dict(),
            "linear": [g.to_dict() for g in self.gemms],
            "notes": list(self.attention.notes)
            + ([f"not modelled (FuseMax's end-to-end counts attention and linear layers "
                f"only): {', '.join(self.excluded)}"] if self.excluded else []),
        }

    def summary(self) -> str:
        """Short human-readable report."""
        if self.scope == "cascade":
            head = f"{self.model} ({self.attention.workload}) on {self.design}"
        else:
            head = (f"{self.model} (batch {self.batch}, {self.seq} tokens, {self.layers} layer"
                    f"{'s' if self.layers != 1 else ''}, scope {self.scope}) on {self.design}")
        lines = [f"{head}: {self.seconds:.6g} s ({self.cycles:,.0f} cycles), "
                 f"energy {self.energy_pj / 1e12:.6g} J"]
        for u in self.attention.unit_work_cycles:
            lines.append(f"  {u:<8} utilization {self.utilization(u):.3f}")
        lines.append(f"  attention {self.attention.seconds * self.layers:.6g} s, linear "
                     f"{sum(g.cycles for g in self.gemms) * self.layers / self.clock_hz:.6g} s")
        lines += [f"  note: {n}" for n in self.to_dict()["notes"]]
        return "\n".join(lines)


@functools.lru_cache(maxsize=256)
def linear_layers(model: str, batch: int, seq: int) -> tuple[tuple, tuple[str, ...]]:
    """The linear layers of one layer of ``model`` at ``batch`` x ``seq`` tokens, from
    :func:`dataflow.model_graph` (roles :data:`LINEAR_ROLES`): ((name, m, n, k, bits), ...),
    and the names of the other einsums (element-wise work, not modelled)."""
    import dataflow
    from dataflow.metrics import einsum_contraction

    cas = dataflow.model_graph(model, "prefill", batch, seq, scope="layers", layers=1)
    gemms, excluded = [], []
    for e in cas.einsums:
        role = cas.tags.get(e.name, {}).get("role")
        if role in LINEAR_ROLES:
            c = einsum_contraction(cas, e.name)
            if c is None:
                raise WorkloadError(f"{e.name}: a linear layer that is not a GEMM")
            gemms.append((e.name, c.B * c.M, c.N, c.K, cas.tensors[c.out].bits))
        elif role not in ("attention", "softmax"):
            excluded.append(e.name)
    return tuple(gemms), tuple(excluded)


def simulate_model(design: Design | str, model: str, *, seq: int, batch: int = 64,
                   scope: str = "model", layers: int | None = None) -> ModelResult:
    """An encoder ``model`` (built-in name or config.json) with ``batch`` sequences of ``seq``
    tokens on a spatial ``design``. ``scope``: ``attention`` (one attention layer, as FuseMax's
    attention figures), ``layers`` (one layer: attention and linear layers) or ``model`` (every
    layer). Returns a :class:`ModelResult`."""
    from dataflow.models import load_model

    if not isinstance(design, Design):
        design = load_design(design)
    pol = _policy(design)
    if scope not in ("attention", "layers", "model"):
        raise UserError(f"--scope must be attention, layers or model, found {scope!r}")
    cfg = load_model(model)
    if cfg.kv_heads != cfg.heads:
        raise WorkloadError(f"{cfg.name}: the spatial attention model runs multi-head "
                            f"attention (kv_heads = heads); {cfg.name} has {cfg.kv_heads} KV "
                            f"heads for {cfg.heads} query heads")
    shape = AttentionShape(batch, cfg.heads, seq, seq, cfg.head_dim, cfg.head_dim)
    attn = evaluate_attention(design, shape)
    gemms: list[GemmCost] = []
    excluded: tuple[str, ...] = ()
    n_layers = 1 if scope in ("attention", "layers") else (layers or cfg.layers)
    if scope != "attention":
        source = cfg.name if not str(model).endswith(".json") else str(model)
        linear, excluded = linear_layers(source, batch, seq)
        gemms = [evaluate_gemm(design, *g) for g in linear]
    workload = model_workload_hash(cfg, batch=batch, seq=seq, scope=scope, layers=n_layers)
    return ModelResult(design=design.name, model=cfg.name, batch=batch, seq=seq,
                       layers=n_layers, scope=scope, clock_hz=design.clock_hz, attention=attn,
                       gemms=gemms, excluded=list(excluded), array2d=pol.array2d,
                       identity=identity(design, family="spatial", workload_hash=workload))


def simulate_attention_cascade(design: Design | str, cascade) -> ModelResult:
    """One attention cascade (see :func:`attention_of`) on a spatial ``design``: its kind
    (3-pass, deferred or 1-pass) on the design's arrays, tiled by :func:`map_attention`,
    whatever cascade the design itself runs for models (``spatial.attention``). Returns a
    :class:`ModelResult` of scope ``cascade`` (one attention, no linear layers)."""
    if not isinstance(design, Design):
        design = load_design(design)
    pol = _policy(design)
    kind, shape = attention_of(cascade)
    attn = evaluate_attention(design, shape, kind=kind)
    notes_kind = [] if kind == pol.attention else [
        f"the {kind} cascade on {design.name}'s arrays; its models run the "
        f"{pol.attention} cascade (spatial.attention)"]
    attn.notes.extend(notes_kind)
    return ModelResult(design=design.name, model=cascade.name, batch=shape.batch * shape.heads,
                       seq=shape.p, layers=1, scope="cascade", clock_hz=design.clock_hz,
                       attention=attn, gemms=[], excluded=[], array2d=pol.array2d,
                       identity=identity(design, family="spatial",
                                         workload_hash=cascade_hash(cascade)))


#: What a spatial problem decides, and the defaults (the design's ``spatial`` policy).
DECISIONS = (
    Decision("binding", "the design's spatial policy: each einsum of the attention cascade on "
                        "the 2D or the 1D array (map_attention)"),
    Decision("tiling", "P1 (query tile) the largest whose per-query state fits the buffer, "
                       "or the policy's"),
)


class SpatialFamily:
    """The ``spatial`` family: every workload on a design with a ``spatial`` section
    (FuseMax, FLAT, unfused): encoder models, and the attention cascades its model evaluates
    (other cascades are refused by name)."""

    name = "spatial"

    @property
    def model_version(self) -> str:
        """``spatial-N`` (see :data:`archsim.core.identity.MODEL_VERSIONS`)."""
        return model_version(self.name)

    def claims(self, design: Design, workload=None) -> bool:
        """Designs with a ``spatial`` section and no ``rdu`` one, whatever the workload."""
        return design.rdu is None and design.spatial is not None

    def problem(self, design: Design, workload, *, seq: int | None = None, batch: int = 64,
                scope: str = "model", layers: int | None = None) -> Problem:
        """An encoder model (built-in name or config.json) with ``batch`` sequences of
        ``seq`` tokens (see :func:`simulate_model` for ``scope``), or an attention cascade
        (:func:`attention_of`; it takes no options: its ranks are its shape)."""
        if hasattr(workload, "einsums"):
            kind, shape = attention_of(workload)
            return Problem(self.name, design, workload, DECISIONS, {}, view=(kind, shape))
        if seq is None:
            raise UserError("an encoder model on a spatial design needs seq (tokens per "
                            "sequence)")
        return Problem(self.name, design, workload, DECISIONS,
                       {"seq": seq, "batch": batch, "scope": scope, "layers": layers})

    def evaluate(self, problem: Problem, mapping=None) -> ModelResult:
        """:func:`simulate_model` (or, for a cascade, :func:`simulate_attention_cascade`)
        under the design's policy (``mapping`` must be None: the spatial binding and tiling
        are the policy's)."""
        if mapping is not None:
            raise MappingError("spatial designs map by their spatial policy; give no mapping")
        if problem.view is not None:
            return simulate_attention_cascade(problem.design, problem.workload)
        return simulate_model(problem.design, problem.workload, **problem.options)


FAMILY = SpatialFamily()
