"""ILP mappers (PuLP; HiGHS by default, CBC as a fallback).

Memory mapping ([COSMA] ../shared/reference/mappers.md), in two stages:

1. **Order, residency, spills** (:func:`memory_schedule`). Binaries ``x[i,t]`` put operator
   ``i`` at step ``t`` (within its window, :meth:`MappingProblem.step_range`), ``r[a,t]`` keep
   tensor ``a`` resident at step ``t``; ``l[a,t]`` (a load at ``t``) and ``s[a]`` (``a`` is
   spilled) follow. Every operator's inputs and output are resident when it runs; an
   intermediate is resident only after its producer ran; a residency that does not start at
   the producer's step is a load; a reloaded intermediate must have been spilled; the resident
   bytes at every step fit the budget. Objective ``traffic``: the non-compulsory bytes
   (reloads and spills); ``time``: the makespan the evaluator's engine gives the schedule
   (:func:`_time_objective`): each step's task is its load phase, its compute and its store
   phase one after another; each unit runs its tasks in step order; a task starts when its
   unit is free and its producers have finished. Only bandwidth sharing between tasks that
   run at once on different units is left out, so the estimate is a lower bound of the
   evaluator's figure whenever units overlap.
2. **Offsets** (:func:`mappers.offsets.assign_offsets`): best-fit, largest buffers first; when best-fit leaves
   a buffer without room, a small non-overlap ILP over the buffers that share its steps repairs
   the placement (big-M disjunctions, only over co-resident pairs).

Every solve goes through :func:`archsim.core.solve.solve`: one thread, a fixed seed, a limit
on branch-and-bound nodes (and on wall-clock time only when the caller gives one), so the same
problem gives the same mapping on any machine. A solve cut short by a limit returns its
incumbent (or the best baseline, when that is better) with the solver's bound, gap and which
limit stopped it; "optimal" is reported only when HiGHS proves it.

:func:`mappers.peak.peak_memory_schedule` is the peak-memory variant (no spills, minimise the peak) that
defines the M_P budget. :func:`bind_units` (binding with overlap, minimising the makespan) and
:func:`place_tiers` (SRAM/HBM/DDR placement for the RDU) are the other two ILPs.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

from archsim.core.solve import SolveLimits, solve
from archsim.core.solve import new_var as _var
from archsim.errors import MappingError
from mappers.greedy import belady_schedule, default_placement, xla_schedule
from mappers.offsets import assign_offsets, schedule_from_residency
from mappers.peak import at_step, order_variables, step_windows
from mappers.problem import MappingProblem
from mappers.schedule import Buffer, MemorySchedule

OBJECTIVES = ("traffic", "time")
#: Largest problem for which a fragmented two-stage answer is retried with addresses in the ILP
#: (COSMA's full formulation; with the order window it stays small enough for HiGHS)
JOINT_MAX_OPERATORS = 250


class NoIncumbent(MappingError):
    """The ILP found no solution within its limit (``info`` holds the solver's answer)."""

    def __init__(self, message: str, info: dict):
        super().__init__(message)
        self.info = info


# --------------------------------------------------------------------------- stage 1
def memory_schedule(p: MappingProblem, *, objective: str = "traffic",
                    limits: SolveLimits | None = None, offsets: bool = True) -> MemorySchedule:
    """Stage 1 (and, with ``offsets``, stage 2) of the memory-mapping ILP; see module
    docstring. ``limits``: the solver's work (and optional time) limits. Returns the schedule
    with ``solver`` info: status, limit, objective, bound, gap, nodes, ``estimate`` (the ILP's
    own figure of its objective: bytes for ``traffic``, cycles for ``time``). Raises
    MappingError when the budget cannot hold some operator."""
    if objective not in OBJECTIVES:
        raise MappingError(f"objective must be one of {', '.join(OBJECTIVES)}, found "
                           f"{objective!r}")
    limits = limits or SolveLimits()
    p.check_budget()
    try:
        sched = _stage1(p, objective, limits, p.budget_bytes)
    except NoIncumbent as exc:
        if exc.info["status"] == "infeasible":
            raise
        return _baseline_fallback(p, exc.info, limits, objective)
    stage1 = p.evaluate(sched).non_compulsory_bytes
    sched.solver["stage1_non_compulsory_bytes"] = stage1
    if offsets and objective == "time":
        return _offsets_for_time(p, sched, limits)
    if offsets:                        # the traffic objective from here on
        assign_offsets(p, sched, limits)
        best = sched
        # fragmentation cost traffic: stage 1 with a little less room may pack without it
        saved = p.budget_bytes
        for frac in (0.97, 0.94):
            cost = p.evaluate(best).non_compulsory_bytes
            if cost <= stage1 or int(saved * frac) < p.min_budget_bytes():
                break
            try:
                trial = _stage1(p, "traffic", limits, int(saved * frac))
                assign_offsets(p, trial, limits)
            except MappingError:
                continue
            if p.evaluate(trial).non_compulsory_bytes < cost:
                trial.solver.update(stage1_non_compulsory_bytes=stage1,
                                    stage1_budget_bytes=int(saved * frac))
                best = trial
        cost = p.evaluate(best).non_compulsory_bytes
        if cost > stage1 and p.n <= JOINT_MAX_OPERATORS:
            # fragmentation cost traffic: solve residency and offsets at once (COSMA's
            # addresses in the ILP), within the limits
            try:
                joint = _stage1(p, "traffic", limits, saved, addresses=True)
                if p.evaluate(joint).non_compulsory_bytes < cost:
                    joint.solver.update(stage1_non_compulsory_bytes=stage1, joint=True)
                    best = joint
            except MappingError as exc:      # no joint answer within the limits
                best.solver["joint"] = f"not used: {exc}"
        mp = p.cached_peak_schedule
        if mp is not None and p.budget_bytes >= mp.solver.get("arena_bytes", math.inf) and \
                p.evaluate(best).non_compulsory_bytes > 0:
            # the peak-optimal schedule already found is spill-free and fits
            best = MemorySchedule(list(mp.order), [Buffer(b.tensor, b.start, b.end, b.offset,
                                                         b.loaded) for b in mp.buffers],
                                  set(), mapper="ilp", solver=dict(best.solver, peak=True))
        sched = best
        sched.solver["objective"] = p.evaluate(sched).non_compulsory_bytes
        sched.solver["estimate"] = {"non_compulsory_bytes": sched.solver["objective"]}
        if sched.solver["status"] != "optimal":
            fb = _baseline_fallback(p, sched.solver, limits, "traffic")
            if fb.solver["objective"] < sched.solver["objective"]:
                return fb
            _set_gap(sched.solver)
    return sched


def _offsets_for_time(p: MappingProblem, sched: MemorySchedule,
                      limits: SolveLimits) -> MemorySchedule:
    """Stage 2 for the time objective: offsets for the stage-1 schedule; when placing them
    costs reloads (a split buffer), the joint ILP (addresses inside) is tried and kept if its
    estimate beats the repaired schedule's (the stage-1 estimate plus the repair bytes' load
    time)."""
    assign_offsets(p, sched, limits)
    repair = sched.solver.get("repair_bytes", 0)
    if not repair:
        return sched
    est = sched.solver["estimate"]["cycles"] + repair / p.load_bytes_per_cycle
    sched.solver["estimate"] = {"cycles": round(est, 3)}
    sched.solver["note"] = ("offsets split buffers: the estimate adds their reload time to "
                            "the ILP's makespan")
    if p.n > JOINT_MAX_OPERATORS:
        return sched
    try:
        joint = _stage1(p, "time", limits, p.budget_bytes, addresses=True)
    except MappingError as exc:
        sched.solver["joint"] = f"not used: {exc}"
        return sched
    if joint.solver["estimate"]["cycles"] < est:
        joint.solver["joint"] = True
        return joint
    return sched


def _set_gap(info: dict) -> None:
    obj, bound = info.get("objective"), info.get("bound")
    if obj is not None and bound is not None:
        info["gap"] = (obj - bound) / obj if obj > 0 else 0.0


def _baseline_fallback(p: MappingProblem, info: dict, limits: SolveLimits,
                       objective: str) -> MemorySchedule:
    """The better of the Belady and XLA-style baselines, labelled with the ILP's status,
    limit and bound: a solve cut short never returns less than the baselines give."""
    cands = []
    for fn in (belady_schedule, xla_schedule):
        try:
            cands.append(fn(p))
        except MappingError:
            continue
    if not cands:
        raise MappingError(f"memory ILP: no solution within {limits.describe()} and no "
                           f"baseline schedule fits; {limits.advice()}")
    best = min(cands, key=lambda s: p.evaluate(s).non_compulsory_bytes)
    best.mapper = "ilp"
    status = info.get("status")
    if status not in ("time_limit", "node_limit"):
        status = "time_limit" if info.get("limit") == "time" else "node_limit"
    traffic = p.evaluate(best).non_compulsory_bytes
    best.solver = dict(info, status=status,
                       limit=info.get("limit") or ("time" if status == "time_limit"
                                                   else "nodes"),
                       objective=traffic,
                       note=f"no better ILP incumbent within {limits.describe()}: best "
                            f"baseline schedule returned")
    best.solver["estimate"] = {"non_compulsory_bytes": traffic}
    if objective == "time":
        best.solver.update(objective=None, bound=None, gap=None)
    else:
        _set_gap(best.solver)
    return best


def _stage1(p: MappingProblem, objective: str, limits: SolveLimits,
            budget: int, addresses: bool = False) -> MemorySchedule:
    import pulp

    prob = pulp.LpProblem("memory_schedule", pulp.LpMinimize)
    rng, win = step_windows(p)
    x = order_variables(prob, p, rng)
    r, ld, sp = {}, {}, {}
    for a, (lo, hi) in win.items():
        info = p.tensors[a]
        for t in range(lo, hi + 1):
            r[a, t] = _var(prob, f"r_{len(r)}")
            ld[a, t] = _var(prob, f"l_{len(ld)}", cat="Continuous")
        if info.producer is not None and not info.is_output:
            sp[a] = _var(prob, f"s_{len(sp)}", cat="Continuous")
    for i, o in enumerate(p.ops):
        for a in o.uses:
            for t in range(rng[i][0], rng[i][1] + 1):
                prob += r[a, t] >= x[i, t]
    for a, (lo, hi) in win.items():
        info = p.tensors[a]
        q = info.producer
        for t in range(lo, hi + 1):
            prev = r.get((a, t - 1), 0)
            if q is not None:
                made = pulp.lpSum(at_step(x, q, s) for s in range(rng[q][0], t + 1))
                prob += r[a, t] <= made
                prob += ld[a, t] >= r[a, t] - prev - at_step(x, q, t)
            else:
                prob += ld[a, t] >= r[a, t] - prev
            if a in sp:
                prob += sp[a] >= ld[a, t]
    for t in range(p.n):
        prob += pulp.lpSum(p.tensors[a].size * r[a, s] for (a, s) in r if s == t) <= budget
    addr = _address_model(prob, p, r, budget) if addresses else None
    traffic = pulp.lpSum(p.tensors[a].size * v for (a, _), v in ld.items()) + \
        pulp.lpSum(p.tensors[a].size * v for a, v in sp.items())
    makespan = None
    if objective == "traffic":
        prob += traffic
    else:
        makespan, starts, ends = _time_objective(prob, p, x, rng, ld, sp)
        # ties between equally fast schedules go to the one that moves fewer bytes
        prob += makespan + traffic / (p.load_bytes_per_cycle * 1000.0)
    res = solve(prob, limits)
    if res["status"] in ("infeasible", "no_solution"):
        raise NoIncumbent(
            f"memory ILP: {res['status'].replace('_', ' ')} at a budget of {budget} bytes "
            f"within {limits.describe()}" + ("" if res["status"] == "infeasible" else
                                             f"; {limits.advice()}"), res)
    order = [None] * p.n
    for (i, t), v in x.items():
        if (v.value() or 0) > 0.5:
            order[t] = i
    resident = {a: [t for t in range(lo, hi + 1) if (r[a, t].value() or 0) > 0.5]
                for a, (lo, hi) in win.items()}
    # the time objective charges a load at the step its residency starts (a prefetch may
    # start before the first use); keep those starts so the evaluator charges the same
    sched = schedule_from_residency(p, order, resident, mapper="ilp",
                                    prefetch=objective == "time")
    if addr is not None:
        for b in sched.buffers:
            b.offset = int(round(addr[b.tensor, b.start].value()))
    cost = p.evaluate(sched)
    compulsory = cost.compulsory_bytes
    if objective == "traffic":
        res["objective"] = cost.non_compulsory_bytes
        if res["bound"] is not None:
            res["bound"] = max(0.0, res["bound"] - _input_bytes(p))
        res["estimate"] = {"non_compulsory_bytes": cost.non_compulsory_bytes}
    else:
        est = float(makespan.value())
        res["objective"] = est
        # a repeated body runs count times back to back, as the evaluator scales it
        pos = {i: t for t, i in enumerate(order)}
        for rep in p.cascade.repeats:
            body = [p.index[n] for n in p.cascade.repeat_body(rep) if n in p.index]
            if body and rep.count > 1:
                span = max(ends[i].value() for i in body) - \
                    min(starts[pos[i]].value() for i in body)
                est += (rep.count - 1) * span
        if res["bound"] is not None:
            res["bound"] = min(res["bound"], est)
        _set_gap(res)
        res["estimate"] = {"cycles": round(est, 3)}
    res["compulsory_bytes"] = compulsory
    res["objective_kind"] = objective
    sched.solver = res
    return sched


def _time_objective(prob, p: MappingProblem, x, rng, ld, sp):
    """The makespan of the schedule as the evaluator's engine runs it (returned as a PuLP
    variable, constrained here).

    Step ``t``'s task lasts ``D_t`` = its operator's stand-alone compute time + the bytes it
    loads before it and stores after it at the load/store rate (the engine runs load, compute
    and store as consecutive phases). A spill is stored by the producer's task; a graph
    output likewise. Each unit runs its tasks in step order (``F[u, t]``: when unit ``u`` is
    free after step ``t``); a task starts when its unit is free and its producers have ended
    (``E_i``). Big-M constraints switch these on for the operator ``x`` puts at each step.
    Bandwidth sharing between tasks running at once is not modelled (a lower bound there).
    Returns (makespan, step start variables, operator end variables)."""
    import pulp

    bw = p.load_bytes_per_cycle
    # a safe big-M: every operator serially plus every byte the model can move
    movable = sum(p.tensors[a].size for (a, _) in ld) + \
        sum(p.tensors[a].size for a in sp) + \
        sum(i.size for i in p.tensors.values() if i.is_output and i.producer is not None)
    H = sum(o.compute_cycles for o in p.ops) + movable / bw + 1.0
    units = sorted({o.unit for o in p.ops})
    S, D = [], []
    for t in range(p.n):
        here = [i for i in range(p.n) if (i, t) in x]
        moved = [p.tensors[a].size * v for (a, s), v in ld.items() if s == t]
        for a, v in sp.items():
            q = p.tensors[a].producer
            if (q, t) in x:
                z = _var(prob, f"z_{t}_{len(moved)}", 0, 1, "Continuous")
                prob += z >= v + x[q, t] - 1
                moved.append(p.tensors[a].size * z)
        for info in p.tensors.values():
            if info.is_output and info.producer is not None and (info.producer, t) in x:
                moved.append(info.size * x[info.producer, t])
        D.append(pulp.lpSum(p.ops[i].compute_cycles * x[i, t] for i in here) +
                 pulp.lpSum(moved) / bw)
        S.append(_var(prob, f"S_{t}", 0, None, "Continuous"))
    free_prev = {u: 0 for u in units}
    for t in range(p.n):
        for k, u in enumerate(units):
            on = pulp.lpSum(x[i, t] for i in range(p.n) if (i, t) in x and p.ops[i].unit == u)
            F = _var(prob, f"F_{k}_{t}", 0, None, "Continuous")
            prob += F >= free_prev[u]
            prob += S[t] >= free_prev[u] - H * (1 - on)
            prob += F >= S[t] + D[t] - H * (1 - on)
            free_prev[u] = F
    E = [_var(prob, f"E_{i}", 0, None, "Continuous") for i in range(p.n)]
    for i in range(p.n):
        for t in range(rng[i][0], rng[i][1] + 1):
            prob += E[i] >= S[t] + D[t] - H * (1 - x[i, t])
            for q in p.preds[i]:
                prob += S[t] >= E[q] - H * (1 - x[i, t])
    span = _var(prob, "makespan", 0, None, "Continuous")
    for u in units:
        prob += span >= free_prev[u]
    return span, S, E


def _address_model(prob, p: MappingProblem, r, budget: int):
    """COSMA's addresses, for small problems: an offset per resident (tensor, step), fixed
    while the tensor stays resident; co-resident tensors do not overlap (big-M)."""
    L = {}
    for (a, t) in r:
        L[a, t] = _var(prob, f"L_{len(L)}", 0, budget - p.tensors[a].size, "Continuous")
    for (a, t) in r:
        if (a, t - 1) in r:
            keep = 2 - r[a, t] - r[a, t - 1]
            prob += L[a, t] - L[a, t - 1] <= budget * keep
            prob += L[a, t - 1] - L[a, t] <= budget * keep
    steps: dict[int, list[str]] = {}
    for (a, t) in r:
        steps.setdefault(t, []).append(a)
    for t, names in steps.items():
        for k, a in enumerate(names):
            for b in names[k + 1:]:
                y = _var(prob, f"Y_{t}_{k}_{names.index(b)}")
                both = 2 - r[a, t] - r[b, t]
                prob += L[a, t] + p.tensors[a].size <= L[b, t] + budget * (1 - y) + \
                    budget * both
                prob += L[b, t] + p.tensors[b].size <= L[a, t] + budget * y + budget * both
    return L


def _input_bytes(p: MappingProblem) -> int:
    return sum(i.size for i in p.tensors.values() if i.producer is None and i.consumers)


# --------------------------------------------------------------------------- unit binding
def bind_units(cascade, design, *, limits: SolveLimits | None = None,
               units: Sequence[str] | None = None) -> tuple[dict[str, str], dict[str, Any]]:
    """Bind einsums to units (e.g. NPU vs PIM, xPU vs Logic-PIM) minimising the makespan with
    overlap: each einsum's duration on each unit comes from the evaluator's unit model
    (stand-alone time, operands at their default homes); einsums on one unit do not overlap;
    dependences hold. Returns (binding, solver info)."""
    import pulp

    from archsim.families.graph import plan_einsum

    order = cascade.topological_order()
    placement = default_placement(cascade, design, order)
    bw = design.bandwidth_bytes_per_cycle
    units = list(units or design.unit_models)
    dur: dict[tuple[str, str], float] = {}
    for e in order:
        for u in units:
            model = design.unit_models[u]
            if model.unsupported_reason(cascade, e):
                continue
            spm = model.scratchpad
            staging = design.memories[spm].capacity_bytes // 2 if spm else 0
            try:
                dur[e, u] = plan_einsum(design, cascade, e, u, placement, staging) \
                    .alone_cycles(bw)
            except MappingError:
                continue
        if not any((e, u) in dur for u in units):
            raise MappingError(f"no unit of {design.name} can run einsum {e!r}")
    horizon = sum(max(dur[e, u] for u in units if (e, u) in dur) for e in order)
    prob = pulp.LpProblem("binding", pulp.LpMinimize)
    b = {(e, u): _var(prob, f"b_{k}") for k, (e, u) in enumerate(dur)}
    s = {e: _var(prob, f"s_{k}", 0, horizon, "Continuous") for k, e in enumerate(order)}
    span = _var(prob, "makespan", 0, horizon, "Continuous")
    d = {e: pulp.lpSum(dur[e, u] * b[e, u] for u in units if (e, u) in b) for e in order}
    for e in order:
        prob += pulp.lpSum(b[e, u] for u in units if (e, u) in b) == 1
        prob += span >= s[e] + d[e]
    dag = cascade.dag()
    for u_, v_ in dag.edges():
        prob += s[v_] >= s[u_] + d[u_]
    import networkx as nx

    anc = {e: nx.ancestors(dag, e) for e in order}
    for i, e in enumerate(order):
        for f in order[i + 1:]:
            if e in anc[f] or f in anc[e]:
                continue
            for u in units:
                if (e, u) in b and (f, u) in b:
                    y = _var(prob, f"y_{i}_{order.index(f)}_{u}")
                    both = b[e, u] + b[f, u] - 1
                    prob += s[f] >= s[e] + d[e] - horizon * (1 - y) - horizon * (1 - both)
                    prob += s[e] >= s[f] + d[f] - horizon * y - horizon * (1 - both)
    prob += span
    limits = limits or SolveLimits()
    res = solve(prob, limits)
    if res["status"] in ("infeasible", "no_solution"):
        raise MappingError(f"binding ILP: {res['status'].replace('_', ' ')} within "
                           f"{limits.describe()}; {limits.advice()}")
    res["estimate"] = {"cycles": round(float(res["objective"]), 3)}
    binding = {e: max((u for u in units if (e, u) in b), key=lambda u: b[e, u].value() or 0)
               for e in order}
    return binding, res


# --------------------------------------------------------------------------- RDU tiers
def place_tiers(cascade, design, *, sockets_reserve_bytes: float = 0.0,
                limits: SolveLimits | None = None) -> tuple[dict[str, str], dict[str, Any]]:
    """Place the persistent tensors of an RDU workload in SRAM, HBM or DDR, minimising the
    largest per-tier streaming time (bytes touched per run / tier bandwidth), within each
    tier's capacity. Returns (tiers for :func:`archsim.families.rdu.simulate_cascade`, solver info)."""
    import pulp

    from archsim.families.rdu import persistent_bytes

    rdu = design.rdu
    if rdu is None:
        raise MappingError(f"design {design.name!r} has no rdu section")
    tiers = {"sram": rdu.sram, "hbm": rdu.hbm}
    if rdu.ddr is not None:
        tiers["ddr"] = rdu.ddr
    held, touched = persistent_bytes(cascade)
    bw = {k: design.memories[m].bandwidth_bytes_per_s * design.memory_efficiency(m)
          for k, m in tiers.items()}
    cap = {k: design.memories[m].capacity_bytes for k, m in tiers.items()}
    cap["hbm"] -= sockets_reserve_bytes
    # SRAM also holds the sections' stage buffers: offer half of it
    cap["sram"] *= 0.5
    prob = pulp.LpProblem("tiers", pulp.LpMinimize)
    y = {(t, k): _var(prob, f"y_{i}_{k}") for i, t in enumerate(held) for k in tiers}
    z = _var(prob, "z", 0, None, "Continuous")
    for t in held:
        prob += pulp.lpSum(y[t, k] for k in tiers) == 1
    for k in tiers:
        prob += pulp.lpSum(held[t] * y[t, k] for t in held) <= cap[k]
        prob += z >= pulp.lpSum(touched[t] / bw[k] * y[t, k] for t in held)
    prob += z
    res = solve(prob, limits)
    if res["status"] in ("infeasible", "no_solution"):
        raise MappingError(f"tier placement: the persistent tensors "
                           f"({sum(held.values()) / 1e9:.2f} GB) do not fit the tiers")
    return {t: max(tiers, key=lambda k: y[t, k].value() or 0) for t in held}, res
