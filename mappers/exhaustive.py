"""Exhaustive memory mapper for tiny problems (at most :data:`MAX_OPERATORS` operators).

It searches every order the ILP may choose (:meth:`MappingProblem.step_range`) and every
residency decision, by dynamic programming over states ``(operators done, tensors resident,
tensors spilled)`` -- all orders at once, each state keeping its cheapest history. After each
step the resident set keeps some of what was resident (within the budget) plus the next
operator's inputs and output; what is not resident but needed is loaded; an intermediate
evicted while still needed is spilled (once). Dead tensors are dropped. The cost is the
non-compulsory traffic of :meth:`MappingProblem.evaluate`, so the optimum is the one the
memory ILP must reach (tests prove the ILP optimal on random tiny graphs this way). Offsets
are not part of the search (stage 2 gives them afterwards).
"""
from __future__ import annotations

import itertools

from archsim.errors import MappingError
from mappers.offsets import assign_offsets, schedule_from_residency
from mappers.problem import MappingProblem
from mappers.schedule import MemorySchedule

MAX_OPERATORS = 8


def exhaustive_schedule(p: MappingProblem) -> MemorySchedule:
    """The traffic-optimal schedule of ``p`` (see module docstring)."""
    if p.n > MAX_OPERATORS:
        raise MappingError(f"the exhaustive mapper takes at most {MAX_OPERATORS} operators; "
                           f"this graph has {p.n} (use --mapper ilp)")
    p.check_budget()
    size = {a: i.size for a, i in p.tensors.items()}
    rng = [p.step_range(i) for i in range(p.n)]
    remaining_uses = {a: set(i.consumers) for a, i in p.tensors.items()}

    def needed_later(a: str, done: frozenset) -> bool:
        return bool(remaining_uses[a] - done)

    start = (frozenset(), frozenset(), frozenset())
    layer = {start: (0, None)}           # state -> (cost, (parent state, op, resident set))
    history = [layer]
    for t in range(p.n):
        nxt: dict = {}
        for state, (cost, _) in layer.items():
            done, resident, spilled = state
            for i in range(p.n):
                if i in done or not rng[i][0] <= t <= rng[i][1]:
                    continue
                if any(q not in done for q in p.preds[i]):
                    continue
                uses = set(p.ops[i].uses)
                out = p.ops[i].output
                need = sum(size[a] for a in uses)
                keepable = [a for a in resident if a not in uses]
                # every subset of the other resident tensors that fits beside the operator
                for k in range(len(keepable), -1, -1):
                    for keep in itertools.combinations(keepable, k):
                        if need + sum(size[a] for a in keep) > p.budget_bytes:
                            continue
                        c = cost
                        new_spilled = set(spilled)
                        for a in uses:
                            if a == out or a in resident:
                                continue
                            c += size[a]                           # a load
                        done2 = done | {i}
                        for a in resident:
                            if a in keep or a in uses:
                                continue
                            info = p.tensors[a]
                            if info.producer is not None and not info.is_output and \
                                    needed_later(a, done2) and a not in new_spilled:
                                c += size[a]                       # evicted while needed
                                new_spilled.add(a)
                        res2 = frozenset(a for a in set(keep) | uses
                                         if needed_later(a, done2))
                        key = (frozenset(done2), res2, frozenset(new_spilled))
                        if key not in nxt or c < nxt[key][0]:
                            nxt[key] = (c, (state, i, frozenset(set(keep) | uses)))
        if not nxt:
            raise MappingError(f"no schedule fits a budget of {p.budget_bytes} bytes")
        layer = nxt
        history.append(layer)
    final = min(layer, key=lambda s: (layer[s][0], sorted(p.names(s[0]))))
    # walk back the choices
    order, resident_steps = [], {}
    state = final
    for t in range(p.n, 0, -1):
        cost, (parent, op, resident) = history[t][state]
        order.append(op)
        for a in resident:
            resident_steps.setdefault(a, []).append(t - 1)
        state = parent
    order.reverse()
    sched = schedule_from_residency(p, order, resident_steps, mapper="exhaustive")
    cost = p.evaluate(sched).non_compulsory_bytes
    sched.solver = {"status": "optimal", "limit": None, "objective": cost, "bound": cost,
                    "gap": 0.0, "solver": "exhaustive",
                    "states": sum(len(h) for h in history),
                    "stage1_non_compulsory_bytes": cost}
    assign_offsets(p, sched)                   # offsets are not part of the search
    sched.solver["objective"] = p.evaluate(sched).non_compulsory_bytes
    sched.solver["estimate"] = {"non_compulsory_bytes": sched.solver["objective"]}
    return sched
