"""The graph family: workload + design + mapping -> :class:`~archsim.result.GraphResult` through
the event-driven engine (NPU, NPU+PIM, GPU designs).

Every graph mapper's proposal is scored here. Steps: check the mapping; ask each einsum's unit model
for a :class:`~archsim.units.base.TaskPlan` (timing phases, traffic, energy); run the plans
through the event-driven engine, which shares memory bandwidth between concurrent tasks; sum
up per unit, per memory level and per task.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from archsim import engine
from archsim.core.identity import cascade_hash, identity, model_version
from archsim.core.physics import whole_cycles
from archsim.version import __version__
from archsim.errors import MappingError, WorkloadError
from archsim.families.base import Decision, Problem
from archsim.mapping import Mapping
from archsim.result import GraphResult, MemoryStats, TaskRecord, UnitStats
from archsim.spec import Design
from archsim.units.base import PlanContext, TaskPlan

if TYPE_CHECKING:  # pragma: no cover
    from dataflow import Cascade


def _cycles(x: float) -> int:
    """Round an engine time (float cycles) up to whole cycles, forgiving the float noise of
    the engine's event arithmetic (1e-6 cycles)."""
    return whole_cycles(x, slack=1e-6)


def staging_bytes(design: Design, mapping: Mapping, cascade: "Cascade",
                  resident: dict[str, list[int]] | None = None) -> dict[str, int]:
    """Einsum -> scratchpad bytes its unit may use for tiles (capacity minus resident tensors)."""
    resident = resident if resident is not None else mapping.resident_bytes(cascade, design)
    out = {}
    for step, e in enumerate(mapping.order):
        spm = design.unit_models[mapping.binding[e]].scratchpad
        if spm is None:
            out[e] = 0
            continue
        out[e] = design.memories[spm].capacity_bytes - resident[spm][step]
    return out


def plan_einsum(design: Design, cascade: "Cascade", einsum: str, unit: str,
                placement: dict[str, str], staging: int,
                tiling: dict[str, Any] | None = None,
                on_chip: frozenset[str] = frozenset()) -> TaskPlan:
    """Cost of one einsum on one unit (the unit model's plan); ``on_chip``: the tensors its
    fusion group keeps in the kernel."""
    ctx = PlanContext(cascade=cascade, einsum=einsum, placement=placement,
                      staging_bytes=staging, tiling=tiling,
                      bandwidth_bytes_per_cycle=design.bandwidth_bytes_per_cycle,
                      on_chip=on_chip)
    return design.unit_models[unit].plan(ctx)


def _add_memory_moves(plans: dict[str, TaskPlan], mapping: Mapping, cascade: "Cascade") -> None:
    """Charge a memory plan's loads (before the task) and stores (after it) to the tasks:
    extra phases moving bytes between the backing memory and the scratchpad."""
    from archsim.units.base import Phase

    level, backing = mapping.memory["level"], mapping.memory["backing"]
    for e, (load, store) in mapping.memory_moves(cascade).items():
        p = plans[e]
        if load:
            p.phases.insert(0, Phase("load", 0.0, {backing: load, level: load}))
            p.read_bytes[backing] = p.read_bytes.get(backing, 0) + int(load)
            p.write_bytes[level] = p.write_bytes.get(level, 0) + int(load)
        if store:
            p.phases.append(Phase("store", 0.0, {backing: store, level: store}))
            p.read_bytes[level] = p.read_bytes.get(level, 0) + int(store)
            p.write_bytes[backing] = p.write_bytes.get(backing, 0) + int(store)
        p.details = dict(p.details, loaded_bytes=load, stored_bytes=store)


def _merge_fused(plans: dict[str, TaskPlan], mapping: Mapping) -> None:
    """Run each fusion group as one kernel: its last einsum (in issue order) takes one phase
    with the group's compute and traffic summed, so they overlap across the whole group (an
    epilogue's bytes hide behind its GEMM's compute); the other members take no time and
    record ``fused_into``. Ops, bytes and energy stay with the einsum that causes them."""
    from archsim.units.base import Phase

    pos = {e: i for i, e in enumerate(mapping.order)}
    for group in mapping.fusion:
        members = sorted(group, key=pos.get)
        last = members[-1]
        compute = sum(ph.compute_cycles for e in members for ph in plans[e].phases)
        traffic: dict[str, float] = {}
        for e in members:
            for ph in plans[e].phases:
                for level, nbytes in ph.bytes.items():
                    traffic[level] = traffic.get(level, 0.0) + nbytes
        total_compute = sum(plans[e].compute_cycles for e in members)
        for e in members[:-1]:
            p = plans[e]
            p.phases = [Phase("fused", 0.0, {})]
            p.compute_cycles = 0
            p.details = dict(p.details, fused_into=last)
        p = plans[last]
        p.phases = [Phase("fused kernel", compute, traffic)]
        p.compute_cycles = total_compute
        p.details = dict(p.details, fused_group=members)


def _repeat_extras(cascade: "Cascade", timings) -> dict[str, float]:
    """Repeat name -> cycles its ``count - 1`` further instances add: each instance takes the
    span of the simulated one (first start to last end of the body's tasks). Exact when the
    body's instances run back to back, as a model's layers do (each layer needs the previous
    layer's output)."""
    extras = {}
    for rep in cascade.repeats:
        body = cascade.repeat_body(rep)
        span = max(timings[e].end for e in body) - min(timings[e].start for e in body)
        extras[rep.name] = (rep.count - 1) * span
    return extras


def _repeat_shifts(cascade: "Cascade", timings) -> dict[str, float]:
    """Einsum -> cycles to add to its simulated times: the extra instances of every repeated
    body that finished before it started."""
    shift = {e: 0.0 for e in timings}
    if not cascade.repeats:
        return shift
    extras = _repeat_extras(cascade, timings)
    for rep in cascade.repeats:
        body = set(cascade.repeat_body(rep))
        body_end = max(timings[e].end for e in body)
        for e, t in timings.items():
            if e not in body and t.start >= body_end - 1e-9:
                shift[e] += extras[rep.name]
    return shift


def evaluate(design: Design, workload: "Cascade", mapping: Mapping) -> GraphResult:
    """Score ``mapping`` of ``workload`` (a :class:`dataflow.Cascade`) on ``design``.

    Returns:
        A :class:`GraphResult`: total cycles and seconds, per-unit busy cycles and utilization,
        bytes per memory level, energy in pJ by component, and the per-task timeline.

    Raises:
        MappingError: the mapping is impossible (the message says why).
    """
    if not hasattr(workload, "einsums"):
        raise WorkloadError(f"workload must be a dataflow.Cascade, got {type(workload).__name__}")
    mapping.check(workload, design)

    resident = mapping.resident_bytes(workload, design)
    staging = staging_bytes(design, mapping, workload, resident)
    fused = mapping.fused_tensors(workload)
    plans: dict[str, TaskPlan] = {}
    for e in mapping.order:
        plans[e] = plan_einsum(design, workload, e, mapping.binding[e], mapping.placement,
                               staging[e], mapping.tiling.get(e), fused[e])
    if mapping.memory is not None:
        _add_memory_moves(plans, mapping, workload)
    _merge_fused(plans, mapping)

    dag = workload.dag()
    tasks = [engine.EngineTask(e, mapping.binding[e], plans[e].phases,
                               tuple(dag.predecessors(e))) for e in mapping.order]
    timings = engine.run(tasks, design.bandwidth_bytes_per_cycle)
    shift = _repeat_shifts(workload, timings)
    extras = _repeat_extras(workload, timings)
    # a body task's last instance ends its repeat's extra cycles after the first one
    makespan = max((t.end + shift[e] + extras.get(getattr(workload.repeat_of(e), "name", None),
                                                  0.0)
                    for e, t in timings.items()), default=0.0)
    cycles = _cycles(makespan)
    count = {e: workload.multiplicity(e) for e in mapping.order}

    texts = {e.name: e.text for e in workload.einsums}
    timeline: list[TaskRecord] = []
    for e in mapping.order:
        t, p = timings[e], plans[e]
        start, end = _cycles(t.start + shift[e]), _cycles(t.end + shift[e])
        timeline.append(TaskRecord(
            einsum=e, text=texts[e], unit=t.unit, start_cycle=start, end_cycle=end,
            compute_cycles=p.compute_cycles, stall_cycles=max(end - start - p.compute_cycles, 0),
            ops=dict(p.ops), read_bytes=dict(p.read_bytes), write_bytes=dict(p.write_bytes),
            energy_pj=p.unit_energy_pj,
            phases=[(n, _cycles(a + shift[e]), _cycles(b + shift[e]))
                    for n, a, b in t.phase_spans],
            details=p.details, instances=count[e],
        ))

    units: dict[str, UnitStats] = {}
    for name, spec in design.units.items():
        recs = [r for r in timeline if r.unit == name]
        busy = sum((r.end_cycle - r.start_cycle) * r.instances for r in recs)
        comp = sum(r.compute_cycles * r.instances for r in recs)
        useful = sum(plans[r.einsum].useful_cycles * r.instances for r in recs)
        units[name] = UnitStats(
            kind=spec.kind, busy_cycles=busy, compute_cycles=comp,
            stall_cycles=max(busy - comp, 0),
            utilization=min(useful / cycles, 1.0) if cycles else 0.0,
            tasks=sum(r.instances for r in recs),
            energy_pj=float(sum(r.energy_pj * r.instances for r in recs)),
        )
    memory: dict[str, MemoryStats] = {}
    for name, m in design.memories.items():
        rd = sum(p.read_bytes.get(name, 0) * count[e] for e, p in plans.items())
        wr = sum(p.write_bytes.get(name, 0) * count[e] for e, p in plans.items())
        bw = design.bandwidth_bytes_per_cycle[name]
        memory[name] = MemoryStats(
            kind=m.kind, read_bytes=int(rd), write_bytes=int(wr),
            bandwidth_utilization=min((rd + wr) / (bw * cycles), 1.0) if cycles else 0.0,
            energy_pj=rd * m.energy.read_pj_per_byte + wr * m.energy.write_pj_per_byte,
        )
    energy = {n: u.energy_pj for n, u in units.items()}
    energy.update({n: m.energy_pj for n, m in memory.items()})

    return GraphResult(
        cycles=cycles, seconds=cycles / design.clock_hz, clock_hz=design.clock_hz,
        units=units, memory=memory, energy_breakdown_pj=energy, timeline=timeline,
        design=design.name, design_hash=design.hash, design_source=design.source,
        overrides=list(design.overrides), workload=workload.name,
        workload_hash=cascade_hash(workload), mapper=mapping.mapper,
        archsim_version=__version__, mapping=mapping,
        identity=identity(design, family="graph", workload_hash=cascade_hash(workload)),
    )


#: What a graph problem decides, and what the default (``greedy``) mapper chooses.
DECISIONS = (
    Decision("binding", "each einsum on its fastest unit (greedy: stand-alone time)"),
    Decision("order", "program (topological) order"),
    Decision("placement", "weights and inputs in off-chip memory, intermediates on chip "
                          "when they fit"),
    Decision("tiling", "each unit model's own tile shape"),
    Decision("fusion", "on GPU units: each attention (QK, softmax, AV) as one "
                       "FlashAttention-style kernel, element-wise consumers in their producer "
                       "GEMM's epilogue (greedy; none elsewhere)"),
    Decision("memory", "none: no scratchpad memory plan (memory mappers: ilp, belady, xla, "
                       "exhaustive, rl)"),
)


class GraphFamily:
    """The ``graph`` family: every design without a ``spatial`` or ``rdu`` section, and any
    cascade (not a model name) on a spatial design."""

    name = "graph"

    @property
    def model_version(self) -> str:
        """``graph-N`` (see :data:`archsim.core.identity.MODEL_VERSIONS`)."""
        return model_version(self.name)

    def claims(self, design: Design, workload=None) -> bool:
        """Designs without an ``rdu`` section; spatial designs only for a cascade."""
        if design.rdu is not None:
            return False
        return design.spatial is None or hasattr(workload, "einsums")

    def problem(self, design: Design, workload, **options) -> Problem:
        """The problem of a cascade on ``design`` (``workload`` a model name with
        :func:`dataflow.model_graph` options in ``options`` builds the cascade)."""
        if isinstance(workload, str):
            import dataflow

            workload = dataflow.model_graph(workload, **options)
            options = {}
        elif options:
            raise WorkloadError(f"options {', '.join(sorted(options))} apply to a model name, "
                                f"not to a cascade")
        if not hasattr(workload, "einsums"):
            raise WorkloadError(f"workload must be a dataflow.Cascade or a model name, got "
                                f"{type(workload).__name__}")
        return Problem(self.name, design, workload, DECISIONS)

    def evaluate(self, problem: Problem, mapping: Mapping) -> GraphResult:
        """:func:`evaluate` of ``mapping`` (a :class:`~archsim.mapping.Mapping`)."""
        if mapping is None:
            raise MappingError("the graph family scores a Mapping; archsim.api.simulate asks "
                               "a mapper (default greedy) for one")
        return evaluate(problem.design, problem.workload, mapping)


FAMILY = GraphFamily()
