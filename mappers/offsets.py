"""Stage 2 of memory mapping: buffers from resident steps, and their offsets in the arena.

:func:`schedule_from_residency` turns per-tensor resident steps into buffers;
:func:`best_fit` places them largest first; :func:`assign_offsets` repairs what best-fit
leaves without room with a small non-overlap ILP (big-M disjunctions over co-resident pairs,
through the solver facade) and, failing that, splits the buffers at the failing step.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from archsim.core.solve import SolveLimits, solve
from archsim.core.solve import new_var as _var
from archsim.errors import MappingError
from mappers.schedule import Buffer, MemorySchedule

if TYPE_CHECKING:  # pragma: no cover
    from mappers.problem import MappingProblem


def schedule_from_residency(p: MappingProblem, order: Sequence[int],
                            resident: dict[str, Sequence[int]], mapper: str,
                            prefetch: bool = False) -> MemorySchedule:
    """Buffers from per-tensor resident steps (runs of consecutive steps), trimmed to the steps
    between a buffer's creation or first use and its last use. With ``prefetch`` a loaded
    buffer keeps the start of its run (the load is issued by that step's task)."""
    pos = {o: t for t, o in enumerate(order)}
    buffers, spilled = [], set()
    for a, steps in resident.items():
        info = p.tensors[a]
        uses = sorted({pos[c] for c in info.consumers} |
                      ({pos[info.producer]} if info.producer is not None else set()))
        make = pos[info.producer] if info.producer is not None else None
        runs = _runs(sorted(steps))
        for s, e in runs:
            inside = [u for u in uses if s <= u <= e]
            if not inside:
                continue
            start = s if (make is not None and s == make) or prefetch else inside[0]
            end = inside[-1]
            buffers.append(Buffer(a, start, end, None, not (make is not None and start == make)))
        if info.producer is not None and not info.is_output and \
                any(b.loaded for b in buffers if b.tensor == a):
            spilled.add(a)
    return MemorySchedule(p.names(order), buffers, spilled, mapper=mapper)


def _runs(steps: Sequence[int]) -> list[tuple[int, int]]:
    out = []
    for s in steps:
        if out and s == out[-1][1] + 1:
            out[-1] = (out[-1][0], s)
        else:
            out.append((s, s))
    return out


def best_fit(p: MappingProblem, buffers: Sequence[Buffer], budget: int) -> list[Buffer]:
    """Give offsets best-fit, largest buffers first (then earliest); returns the buffers that
    found no room (their offset stays None)."""
    placed: list[Buffer] = []
    failed = []
    for b in sorted(buffers, key=lambda b: (-p.tensors[b.tensor].size, b.start, b.tensor)):
        size = p.tensors[b.tensor].size
        busy = sorted(((c.offset, c.offset + p.tensors[c.tensor].size) for c in placed
                       if c.overlaps(b)))
        best, cur = None, 0
        for lo, hi in busy + [(budget, budget)]:
            gap = lo - cur
            if gap >= size and (best is None or gap < best[1]):
                best = (cur, gap)
            cur = max(cur, hi)
        if best is None:
            b.offset = None
            failed.append(b)
        else:
            b.offset = best[0]
            placed.append(b)
    return failed


def assign_offsets(p: MappingProblem, sched: MemorySchedule,
                   limits: SolveLimits | None = None, split: bool = True) -> None:
    """Stage 2: offsets for ``sched.buffers`` in ``p.budget_bytes``. Best-fit first; where it
    leaves a buffer without room, a non-overlap ILP re-places the buffers sharing its steps
    (up to 60 of them); if that fails too and ``split`` is set, the buffers resident at the
    failing step are split around it (reloaded afterwards), which always ends with a
    placement, and the extra reload bytes are recorded in ``sched.solver["repair_bytes"]``.
    Raises MappingError when ``split`` is off and no placement is found."""
    budget = p.budget_bytes
    before = p.evaluate(sched).non_compulsory_bytes
    for _ in range(4 * p.n + 4):
        failed = best_fit(p, sched.buffers, budget)
        if not failed:
            break
        if _repair_ilp(p, sched, failed, budget, limits):
            break
        if not split:
            raise MappingError(
                f"no offsets fit the buffers in {budget} bytes: best-fit left {len(failed)} "
                f"buffer(s) without room and the repair ILP found no placement")
        _split_at(p, sched, failed[0].start)
    else:  # pragma: no cover - each split cleans a step, so this is not reached
        raise MappingError(f"no offsets fit the buffers in {budget} bytes")
    after = p.evaluate(sched).non_compulsory_bytes
    if after != before:
        sched.solver["repair_bytes"] = sched.solver.get("repair_bytes", 0) + after - before


def _repair_ilp(p: MappingProblem, sched: MemorySchedule, failed, budget: int,
                limits: SolveLimits | None) -> bool:
    import pulp

    steps = set()
    for b in failed:
        steps.update(range(b.start, b.end + 1))
    free = [b for b in sched.buffers if any(b.start <= s <= b.end for s in steps)]
    if len(free) > 60:
        return False
    fixed = [b for b in sched.buffers if b not in free]
    prob = pulp.LpProblem("offsets", pulp.LpMinimize)
    off = {id(b): _var(prob, f"o_{k}", 0, budget - p.tensors[b.tensor].size, "Integer")
           for k, b in enumerate(free)}
    prob += pulp.lpSum([])
    pairs = [(b, c, False) for k, b in enumerate(free) for c in free[k + 1:] if b.overlaps(c)]
    pairs += [(b, c, True) for b in free for c in fixed if b.overlaps(c)]
    for k, (b, c, c_fixed) in enumerate(pairs):
        sb, sc = p.tensors[b.tensor].size, p.tensors[c.tensor].size
        oc = c.offset if c_fixed else off[id(c)]
        y = _var(prob, f"y_{k}")
        prob += off[id(b)] + sb <= oc + budget * y
        prob += oc + sc <= off[id(b)] + budget * (1 - y)
    res = solve(prob, limits)
    if res["status"] not in ("optimal", "node_limit", "time_limit"):
        for b in failed:
            b.offset = None
        return False
    for b in free:
        b.offset = int(round(off[id(b)].value()))
    return True


def _split_at(p: MappingProblem, sched: MemorySchedule, step: int) -> None:
    """Split every buffer resident at ``step`` so that only single-step buffers of the tensors
    the step's operator uses remain there; the parts after ``step`` are reloaded."""
    pos = {e: t for t, e in enumerate(sched.order)}
    op = p.ops[p.index[sched.order[step]]]
    out = []
    for b in sched.buffers:
        if not b.start <= step <= b.end or (b.start == b.end == step):
            out.append(b)
            continue
        info = p.tensors[b.tensor]
        uses = sorted({pos[p.ops[c].name] for c in info.consumers} |
                      ({pos[p.ops[info.producer].name]} if info.producer is not None else set()))
        left = [u for u in uses if b.start <= u < step]
        right = [u for u in uses if step < u <= b.end]
        if left or b.start < step and not b.loaded:
            out.append(Buffer(b.tensor, b.start, max(left + [b.start]), None, b.loaded))
        if b.tensor in op.uses:
            out.append(Buffer(b.tensor, step, step, None, b.start < step or b.loaded))
        if right:
            out.append(Buffer(b.tensor, right[0], right[-1], None, True))
    for b in out:
        b.offset = None
    sched.buffers = out
    sched.spilled = {b.tensor for b in out if b.loaded and p.tensors[b.tensor].producer
                     is not None and not p.tensors[b.tensor].is_output}
