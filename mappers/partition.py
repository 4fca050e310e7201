"""Partitioners of the RDU family: cut each segment of a cascade into fused sections.

Methods: ``unfused`` (one einsum per section); ``greedy`` (grow a section while fusing the
next einsum does not cost more than running it alone); ``ilp`` (exact over contiguous
partitions: a set-partitioning ILP over every feasible section, through the solver facade
:func:`archsim.core.solve.solve`); ``dp`` (the same optimum by dynamic programming, which
checks the ILP). Every method asks the family's section cost model
(:class:`archsim.families.rdu.SectionModel`) for costs and returns
:class:`~archsim.families.rdu.Partition` objects: the mapping the family evaluates, with the
partitioner's own figure (``objective_cycles``) beside it.
"""
from __future__ import annotations

import math
from typing import Sequence

from archsim.core.solve import new_var, solve
from archsim.errors import MappingError, UserError
from archsim.families.base import Problem
from archsim.families.rdu import PARTITIONERS, Infeasible, Partition, SectionModel

#: What this mapper decides (see :data:`archsim.families.rdu.DECISIONS`).
DECIDES = ("fusion", "partition")


def map_sections(problem: Problem, *, limits=None) -> dict[str, Partition]:
    """Segment name -> :class:`Partition` of every segment of an RDU ``problem``, cut by the
    method the problem asks for (``problem.options["partitioner"]``)."""
    view = problem.view
    return {seg: partition(view.model, names, view.method, limits=limits)
            for seg, names, _ in view.segments}


def _spans(n: int, max_ops: int | None):
    for i in range(n):
        for j in range(i + 1, n + 1 if max_ops is None else min(n, i + max_ops) + 1):
            yield i, j


def partition(model: SectionModel, names: Sequence[str], method: str = "ilp", *,
              limits=None, max_ops: int | None = None) -> Partition:
    """Cut ``names`` (a segment in program order) into sections with ``method``: ``unfused``,
    ``greedy``, ``ilp`` or ``dp`` (see module docstring). Raises MappingError when some
    einsum does not fit even alone."""
    names = list(names)
    n = len(names)
    if n == 0:
        return Partition([], method, "optimal")
    for nm in names:
        try:
            model.plan((nm,))
        except Infeasible as exc:
            raise MappingError(f"einsum {nm!r} does not fit on the chip alone: {exc}") from None
    if method == "unfused":
        secs = [(nm,) for nm in names]
        return Partition(secs, method, "fixed", sum(model.cost(s) for s in secs))
    if method == "greedy":
        secs, i = [], 0
        while i < n:
            j = i + 1
            while j < n:
                cur = model.cost(names[i:j])
                grown = model.cost(names[i:j + 1])
                if grown > cur + model.cost(names[j:j + 1]):
                    break
                j += 1
            secs.append(tuple(names[i:j]))
            i = j
        return Partition(secs, method, "heuristic", sum(model.cost(s) for s in secs))
    if method == "dp":
        best = [0.0] + [math.inf] * n
        cut = [0] * (n + 1)
        for j in range(1, n + 1):
            for i in range(max(0, j - max_ops) if max_ops else 0, j):
                c = best[i] + model.cost(names[i:j])
                if c < best[j]:
                    best[j], cut[j] = c, i
        secs, j = [], n
        while j > 0:
            secs.append(tuple(names[cut[j]:j]))
            j = cut[j]
        secs.reverse()
        return Partition(secs, method, "optimal", best[n], best[n])
    if method == "ilp":
        return _partition_ilp(model, names, limits, max_ops)
    raise UserError(f"unknown partitioner {method!r}; expected one of {', '.join(PARTITIONERS)}")


def _partition_ilp(model: SectionModel, names: list[str], limits,
                   max_ops: int | None) -> Partition:
    import pulp

    n = len(names)
    spans = [(i, j, model.cost(names[i:j])) for i, j in _spans(n, max_ops)]
    spans = [s for s in spans if math.isfinite(s[2])]
    scale = max(s[2] for s in spans) or 1.0
    prob = pulp.LpProblem("rdu_sections", pulp.LpMinimize)
    x = {(i, j): new_var(prob, f"x_{i}_{j}") for i, j, _ in spans}
    prob += pulp.lpSum(c / scale * x[i, j] for i, j, c in spans)
    for k in range(n):
        prob += pulp.lpSum(x[i, j] for i, j, _ in spans if i <= k < j) == 1, f"cover_{k}"
    res = solve(prob, limits)
    status = res["status"]
    chosen = sorted((i, j) for (i, j), v in x.items() if (v.value() or 0) > 0.5)
    covered = sorted(k for i, j in chosen for k in range(i, j))
    if covered != list(range(n)):
        # no incumbent: fall back to the greedy partition, said so in the status
        part = partition(model, names, "greedy")
        part.method, part.status = "ilp", f"{status}: no solution, greedy used"
        part.limit = res["limit"]
        return part
    secs = [tuple(names[i:j]) for i, j in chosen]
    obj = sum(model.cost(s) for s in secs)
    proven = status == "optimal"
    bound = obj if proven else (res["bound"] * scale if res["bound"] is not None else None)
    return Partition(secs, "ilp", status, obj, bound, res["limit"])
