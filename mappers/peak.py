"""The peak-memory ILP (the M_P budget) and the order model every memory ILP shares.

:func:`order_variables` puts each operator at one step within its window
(:meth:`~mappers.problem.MappingProblem.step_range`) with precedence;
:func:`peak_memory_schedule` minimises the resident peak of a spill-free schedule over those
orders and gives it offsets (:mod:`mappers.offsets`).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from archsim.core.solve import SolveLimits, solve
from archsim.core.solve import new_var as _var
from archsim.errors import MappingError
from mappers.offsets import assign_offsets, best_fit
from mappers.schedule import MemorySchedule

if TYPE_CHECKING:  # pragma: no cover
    from mappers.problem import MappingProblem


def step_windows(p: MappingProblem):
    """Step ranges of operators and tensors (where they may run / be resident)."""
    rng = [p.step_range(i) for i in range(p.n)]
    win = {}
    for a, info in p.tensors.items():
        users = list(info.consumers) + ([info.producer] if info.producer is not None else [])
        if not users:
            continue
        lo = min(rng[u][0] for u in users)
        hi = max(rng[u][1] for u in users)
        win[a] = (lo, hi)
    return rng, win


def order_variables(prob, p: MappingProblem, rng):
    """Assignment and precedence constraints; returns x[(i, t)]."""
    import pulp

    x = {(i, t): _var(prob, f"x_{i}_{t}") for i in range(p.n)
         for t in range(rng[i][0], rng[i][1] + 1)}
    for i in range(p.n):
        prob += pulp.lpSum(x[i, t] for t in range(rng[i][0], rng[i][1] + 1)) == 1
    for t in range(p.n):
        prob += pulp.lpSum(x[i, t] for i in range(p.n) if (i, t) in x) == 1
    for i in range(p.n):
        for q in p.preds[i]:
            # i by step t  =>  q by step t - 1
            for t in range(rng[i][0], rng[i][1] + 1):
                lhs = pulp.lpSum(x[i, s] for s in range(rng[i][0], t + 1))
                rhs = pulp.lpSum(x[q, s] for s in range(rng[q][0], min(t - 1, rng[q][1]) + 1))
                prob += lhs <= rhs
    return x


def at_step(x, i, t):
    """x[i, t] or 0."""
    return x.get((i, t), 0)


def peak_memory_schedule(p: MappingProblem, limits: SolveLimits | None = None
                         ) -> MemorySchedule:
    """The spill-free schedule with the least peak over the allowed orders, with offsets;
    ``solver["arena_bytes"]`` is its arena (M_P)."""
    import pulp

    prob = pulp.LpProblem("peak_memory", pulp.LpMinimize)
    rng, win = step_windows(p)
    x = order_variables(prob, p, rng)
    peak = _var(prob, "peak", 0, None, "Continuous")
    r = {}
    for a, (lo, hi) in win.items():
        info = p.tensors[a]
        users = list(info.consumers)
        for t in range(lo, hi + 1):
            r[a, t] = _var(prob, f"r_{len(r)}", cat="Continuous")
            firsts = [info.producer] if info.producer is not None else users
            for f in firsts:
                done = pulp.lpSum(at_step(x, f, s) for s in range(rng[f][0], t + 1))
                for c in users or [f]:
                    pending = pulp.lpSum(at_step(x, c, s) for s in range(t, rng[c][1] + 1))
                    prob += r[a, t] >= done + pending - 1
    for t in range(p.n):
        prob += peak >= pulp.lpSum(p.tensors[a].size * r[a, s] for (a, s) in r if s == t)
    prob += peak
    res = solve(prob, limits)
    if res["status"] in ("infeasible", "no_solution"):
        order = list(range(p.n))                 # program order is always spill-free
    else:
        order = [None] * p.n
        for (i, t), v in x.items():
            if (v.value() or 0) > 0.5:
                order[t] = i
    peak_bytes = p.peak_bytes(order)
    bufs = p.spill_free_buffers(order)
    sched = MemorySchedule(p.names(order), bufs, set(), mapper="peak", solver=res)
    saved = p.budget_bytes
    try:
        p.budget_bytes = peak_bytes
        try:
            assign_offsets(p, sched, split=False)
            arena = peak_bytes
        except MappingError:
            p.budget_bytes = max(p.capacity_bytes, peak_bytes) * 4
            best_fit(p, sched.buffers, p.budget_bytes)
            arena = max(b.offset + p.tensors[b.tensor].size for b in sched.buffers)
    finally:
        p.budget_bytes = saved
    sched.solver = dict(res, peak_bytes=peak_bytes, arena_bytes=arena)
    return sched
