"""Greedy baseline mapper: each einsum on the unit that runs it fastest, in program order.

Placement: cascade inputs and outputs live in the outermost memory behind the units'
scratchpad (e.g. HBM); an intermediate tensor stays in the scratchpad when it fits in
``resident_fraction`` of it for its whole lifetime (first come, first served), else it goes to
the outermost memory; the tensors a repeated body carries from one instance to the next share
a level (the outermost when they disagree). The rest of the scratchpad is left for the units' tile buffers.
Binding: for each einsum, in program order, every unit that supports it is asked for a plan and
the one with the shortest stand-alone time (compute and traffic at full bandwidth) wins; ties go
to the unit listed first in the design. The chosen tiling is recorded in the mapping.
Fusion (units that fuse: GPUs): :func:`fusion_groups`.
"""
from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import numpy as np

from archsim.core.physics import peak_flops_per_s
from archsim.errors import MappingError
from archsim.families.graph import plan_einsum
from archsim.mapping import Mapping
from mappers.offsets import best_fit
from mappers.schedule import Buffer, MemorySchedule

if TYPE_CHECKING:  # pragma: no cover
    from dataflow import Cascade

    from archsim.spec import Design


def default_placement(cascade: "Cascade", design: "Design", order: list[str],
                      resident_fraction: float = 0.5) -> dict[str, str]:
    """Tensor -> memory level, by the rule in the module docstring."""
    spms = Counter(m.scratchpad for m in design.unit_models.values() if m.scratchpad)
    if not spms:
        main = next(iter(design.memories))
        return {t: main for t in cascade.tensors}
    spm = spms.most_common(1)[0][0]
    main = design.outermost_memory(spm)
    placement = {t: main for t in cascade.tensors}
    if spm == main:
        return placement
    budget = resident_fraction * design.memories[spm].capacity_bytes
    probe = Mapping(binding={}, order=order, placement=placement)
    live = probe.live_intervals(cascade)
    occupancy = np.zeros(len(order), dtype=np.int64)
    io = set(cascade.inputs()) | set(cascade.outputs())
    for t in cascade.tensors:
        if t in io or t not in live:
            continue
        a, b = live[t]
        size = cascade.tensor_bytes(t)
        if occupancy[a:b + 1].max(initial=0) + size <= budget:
            occupancy[a:b + 1] += size
            placement[t] = spm
    # a repeated body's carried tensors share a level (the outer one if they disagree)
    for rep in cascade.repeats:
        for out, inp in rep.carry:
            if placement[out] != placement[inp]:
                placement[out] = placement[inp] = main
    return placement


def greedy_mapping(cascade: "Cascade", design: "Design", *,
                   resident_fraction: float = 0.5, fusion: bool = True) -> Mapping:
    """Map ``cascade`` on ``design`` greedily (see module docstring); ``fusion``: fuse on
    units that fuse (:func:`fusion_groups`)."""

    order = cascade.topological_order()
    placement = default_placement(cascade, design, order, resident_fraction)
    probe = Mapping(binding={e: "" for e in order}, order=order, placement=placement)
    resident = probe.resident_bytes(cascade, design)
    bw = design.bandwidth_bytes_per_cycle
    binding: dict[str, str] = {}
    tiling: dict[str, dict] = {}
    estimate = 0.0
    for step, e in enumerate(order):
        best = None
        reasons = []
        for uname, model in design.unit_models.items():
            why = model.unsupported_reason(cascade, e)
            if why:
                reasons.append(f"{uname}: {why}")
                continue
            spm = model.scratchpad
            staging = (design.memories[spm].capacity_bytes - resident[spm][step]) if spm else 0
            try:
                plan = plan_einsum(design, cascade, e, uname, placement, staging)
            except MappingError as exc:
                reasons.append(f"{uname}: {exc}")
                continue
            t = plan.alone_cycles(bw)
            if best is None or t < best[0]:
                best = (t, uname, plan)
        if best is None:
            raise MappingError(f"no unit of {design.name} can run einsum {e!r}: "
                               + "; ".join(reasons))
        t, uname, plan = best
        binding[e] = uname
        if "tiling" in plan.details:
            tiling[e] = dict(plan.details["tiling"])
        estimate += t * cascade.multiplicity(e)
    mapping = Mapping(binding=binding, order=order, placement=placement, tiling=tiling,
                      mapper="greedy")
    if fusion:
        mapping.fusion = fusion_groups(cascade, design, binding)
    est = serial_estimate_cycles(cascade, design, mapping) if mapping.fusion else estimate
    mapping.info = {"estimate": {"cycles": round(est, 3)}, "estimate_is": SERIAL_ESTIMATE}
    return mapping


#: Roles of the einsums one attention is made of (QK and AV, the softmax between them).
ATTENTION_ROLES = ("attention", "softmax")


def _elementwise(cascade: "Cascade", e: str) -> bool:
    """True when ``e`` reduces over no rank: every rank it iterates is one of its output's."""
    es = cascade.einsum(e)
    out = set(es.output.variables())
    return all(set(a.variables()) <= out for a in es.inputs)


def fusion_groups(cascade: "Cascade", design: "Design", binding: dict[str, str]
                  ) -> list[list[str]]:
    """The fusion a GPU runs (units with ``fuses``): each attention's einsums (roles
    :data:`ATTENTION_ROLES`, connected) as one FlashAttention-style kernel, and each
    element-wise einsum fused with the producer of one of its operands when that operand has
    no other reader and no rank the einsum's output lacks (a GEMM epilogue; a norm's row
    statistic). Groups in program order."""
    import networkx as nx

    fuses = {u for u, m in design.unit_models.items() if getattr(m, "fuses", False)}
    links = nx.Graph()
    dag = cascade.dag()
    outputs = set(cascade.outputs())
    for u, v in dag.edges():
        if binding[u] != binding[v] or binding[u] not in fuses:
            continue
        roles = (cascade.tag(u, "role"), cascade.tag(v, "role"))
        if all(r in ATTENTION_ROLES for r in roles):
            links.add_edge(u, v)
            continue
        t = cascade.einsum(u).output_tensor
        if t in outputs or cascade.consumers(t) != [v] or not _elementwise(cascade, v) \
                or cascade.contraction(v) is not None:
            continue
        # an epilogue (same ranks) or a row statistic broadcast over the row (a norm's
        # sum of squares): either way a tile of v needs only the matching tile of t
        if set(cascade.tensors[t].ranks) <= set(cascade.tensors[cascade.einsum(v).output_tensor].ranks):
            links.add_edge(u, v)
    pos = {e.name: i for i, e in enumerate(cascade.einsums)}
    groups = [sorted(c, key=pos.get) for c in nx.connected_components(links)]
    return sorted(groups, key=lambda g: pos[g[0]])


#: What the binding mappers' own estimate is
SERIAL_ESTIMATE = ("the sum of every einsum's stand-alone time on its unit, times how "
                   "often it runs: no overlap between units, no bandwidth sharing")


def serial_estimate_cycles(cascade: "Cascade", design: "Design", mapping: Mapping) -> float:
    """Sum over einsums of the stand-alone cycles of each einsum's plan on its bound unit
    (operands at their homes, tile staging = scratchpad capacity minus resident tensors),
    times the einsum's multiplicity (a repeated body's einsums run once per instance)."""
    resident = mapping.resident_bytes(cascade, design)
    bw = design.bandwidth_bytes_per_cycle
    fused = mapping.fused_tensors(cascade)
    total = 0.0
    for step, e in enumerate(mapping.order):
        u = mapping.binding[e]
        spm = design.unit_models[u].scratchpad
        staging = (design.memories[spm].capacity_bytes - resident[spm][step]) if spm else 0
        plan = plan_einsum(design, cascade, e, u, mapping.placement, staging,
                           mapping.tiling.get(e), fused[e])
        total += plan.alone_cycles(bw) * cascade.multiplicity(e)
    return total


# --------------------------------------------------------------------------- memory baselines
def _first_fit(p, live: dict, size: int, budget: int) -> int | None:
    """Lowest offset with ``size`` free bytes among the live buffers (tensor -> offset)."""
    busy = sorted((off, off + p.tensors[t].size) for t, off in live.items())
    cur = 0
    for lo, hi in busy:
        if lo - cur >= size:
            return cur
        cur = max(cur, hi)
    return cur if budget - cur >= size else None


def belady_schedule(p, order: list[int] | None = None):
    """TFLite-style baseline: a linear (first-fit) allocator over the scratchpad in
    ``order`` (default program order), with Belady replacement: when the next operator's
    tensors do not fit, evict the resident tensor whose next use is farthest away (spilling an
    intermediate that is still needed, once) until they do. Returns a MemorySchedule."""
    p.check_budget()
    order = list(range(p.n)) if order is None else list(order)
    if not p.is_valid_order(order):
        raise MappingError("belady: the order breaks a dependence")
    pos = {o: t for t, o in enumerate(order)}
    uses_at = {a: sorted(pos[c] for c in i.consumers) for a, i in p.tensors.items()}
    live: dict[str, int] = {}                       # tensor -> offset
    since: dict[str, tuple[int, bool]] = {}         # tensor -> (start step, loaded)
    buffers, spilled = [], set()

    def next_use(a: str, t: int) -> float:
        later = [s for s in uses_at[a] if s > t]
        return later[0] if later else float("inf")

    def close(a: str, t: int) -> None:
        s, loaded = since.pop(a)
        off = live.pop(a)
        if t - 1 >= s:
            buffers.append(Buffer(a, s, t - 1, off, loaded))

    def evict(v: str, t: int) -> None:
        info = p.tensors[v]
        if info.producer is not None and not info.is_output and \
                (next_use(v, t - 1) != float("inf")) and since[v][0] < t:
            spilled.add(v)
        close(v, t)

    for t, i in enumerate(order):
        op = p.ops[i]
        for a in list(live):                         # drop what is dead
            if next_use(a, t - 1) == float("inf"):
                close(a, t)
        for a in op.uses:
            if a in live:
                continue
            size = p.tensors[a].size
            off = _first_fit(p, live, size, p.budget_bytes)
            while off is None:
                victims = [v for v in live if v not in op.uses]
                if not victims:
                    break
                evict(max(victims, key=lambda v: (next_use(v, t), p.tensors[v].size, v)), t)
                off = _first_fit(p, live, size, p.budget_bytes)
            if off is None:
                # fragmented by this operator's own tensors: evict all, place them afresh
                for v in list(live):
                    evict(v, t)
                for b in op.uses:
                    live[b] = _first_fit(p, live, p.tensors[b].size, p.budget_bytes)
                    created = b == op.output and p.tensors[b].producer == i
                    since[b] = (t, not created)
                break
            live[a] = off
            created = a == op.output and p.tensors[a].producer == i
            since[a] = (t, not created)
    for a in list(live):
        close(a, p.n)
    sched = MemorySchedule(p.names(order), buffers, spilled, mapper="belady")
    return _trimmed(p, sched)


def _trimmed(p, sched):
    """Trim every buffer to its creation or first use and its last use inside it; drop
    buffers with no use; recompute which buffers are loads and which tensors are spilled."""
    pos = {e: t for t, e in enumerate(sched.order)}
    out = []
    for b in sched.buffers:
        info = p.tensors[b.tensor]
        make = pos[p.ops[info.producer].name] if info.producer is not None else None
        uses = sorted(u for u in ({pos[p.ops[c].name] for c in info.consumers} |
                                  ({make} if make is not None else set()))
                      if b.start <= u <= b.end)
        if not uses:
            continue
        start = b.start if make is not None and b.start == make else uses[0]
        out.append(type(b)(b.tensor, start, uses[-1], b.offset, start != make))
    sched.buffers = out
    sched.spilled = {b.tensor for b in out if b.loaded and p.tensors[b.tensor].producer
                     is not None and not p.tensors[b.tensor].is_output}
    return sched


def xla_schedule(p):
    """XLA-style baseline (memory-space assignment): program order; every tensor's whole live
    range is a candidate buffer, ordered by memory-boundedness (bytes its operators move per
    cycle of their compute, most first) and placed best-fit if it fits over its whole range
    beside what is placed. A tensor that gets no fast memory lives off chip and is staged in
    for each operator that uses it (created and spilled by its producer, reloaded for each
    consumer). When an operator's staged tensors do not fit, the lowest-priority placed buffer
    spanning that step is demoted. Greedy, no backtracking beyond demotion."""
    p.check_budget()
    order = list(range(p.n))
    full = {b.tensor: b for b in p.spill_free_buffers(order)}

    def boundedness(a: str) -> float:
        info = p.tensors[a]
        ops = list(info.consumers) + ([info.producer] if info.producer is not None else [])
        moved = sum(p.working_set_bytes(i) for i in ops)
        cyc = sum(p.ops[i].compute_cycles for i in ops) or 1e-9
        return moved / cyc

    prio = sorted(full, key=lambda a: (-boundedness(a), -p.tensors[a].size, a))
    rank = {a: k for k, a in enumerate(prio)}
    chosen: list[Buffer] = []
    for a in prio:
        trial = [Buffer(c.tensor, c.start, c.end) for c in chosen] + \
            [Buffer(a, full[a].start, full[a].end)]
        if not best_fit(p, trial, p.budget_bytes):
            chosen.append(Buffer(a, full[a].start, full[a].end))
    while True:
        kept = {b.tensor for b in chosen}
        staged = [Buffer(a, t, t) for t in range(p.n) for a in p.ops[t].uses if a not in kept]
        buffers = [Buffer(b.tensor, b.start, b.end) for b in chosen] + staged
        fails = best_fit(p, buffers, p.budget_bytes)
        if not fails:
            break
        step = fails[0].start
        span = [b for b in chosen if b.start <= step <= b.end]
        if not span:
            raise MappingError(f"xla: the tensors of {p.ops[step].name!r} do not fit")
        chosen.remove(max(span, key=lambda b: rank[b.tensor]))
    for b in buffers:
        info = p.tensors[b.tensor]
        b.loaded = not (info.producer is not None and b.start == info.producer)
    spilled = {b.tensor for b in buffers if b.loaded and p.tensors[b.tensor].producer is not None
               and not p.tensors[b.tensor].is_output}
    return MemorySchedule(p.names(order), buffers, spilled, mapper="xla")


# --------------------------------------------------------------------------- op/B placement
PIM_KINDS = ("bank_pim", "logic_pim")


def opb_mapping(cascade: "Cascade", design: "Design") -> Mapping:
    """The op/B rule (as Duplex places operations): an einsum whose operations per byte fall
    below the machine balance of the design's compute units (peak FLOP/s / bandwidth of the
    outermost memory) runs on a PIM unit, the rest on the compute unit that runs it fastest.
    Without PIM units this is :func:`greedy_mapping`."""
    base = greedy_mapping(cascade, design)
    pims = [u for u, m in design.unit_models.items() if m.spec.kind in PIM_KINDS]
    if not pims:
        base.mapper = "opb"
        return base
    compute = [u for u in design.unit_models if u not in pims]
    main = design.outermost_memory(next(iter(design.memories)))
    bw = design.memories[main].bandwidth_bytes_per_s
    balance = max(peak_flops_per_s(design.unit_models[u]) for u in compute) / bw
    binding = dict(base.binding)
    for e in cascade.topological_order():
        opb = cascade.op_per_byte(e)
        if opb < balance:
            ok = [u for u in pims if not design.unit_models[u].unsupported_reason(cascade, e)]
            if ok:
                binding[e] = ok[0]
    m = Mapping(binding=binding, order=base.order, placement=base.placement,
                tiling={e: t for e, t in base.tiling.items() if binding[e] == base.binding[e]},
                mapper="opb", info={"machine_balance_op_per_byte": round(balance, 3)})
    m.info["estimate"] = {"cycles": round(serial_estimate_cycles(cascade, design, m), 3)}
    m.info["estimate_is"] = SERIAL_ESTIMATE
    return m
