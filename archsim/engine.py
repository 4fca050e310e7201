"""Event-driven execution of tasks on units with memory bandwidth shared by concurrent tasks.

Model
-----
* Each unit runs one task at a time, in the order the tasks are given (the mapping's order
  restricted to that unit). A task starts when its unit is free, it is next in the unit's queue
  and every task it depends on has finished.
* A task is a sequence of :class:`~archsim.units.base.Phase` objects. A phase needs
  ``compute_cycles`` of its unit and moves ``bytes[level]`` on each memory level; both progress
  together (a fluid model): at progress rate ``x`` (fraction of the phase per cycle) the phase
  uses ``x * bytes[level]`` bytes/cycle of each level and never exceeds ``x = 1/compute_cycles``.
* Bandwidth is shared by *dominant resource fairness* computed by progressive filling: a
  phase's share of a level is the fraction of that level's bandwidth it uses, its *dominant*
  share the largest of these; all phases' dominant shares grow together until a phase reaches
  its compute bound or a level it uses saturates, then the others keep growing. No level is
  ever over-subscribed, and a phase limited elsewhere leaves its unused share to the others.
* Like any work-conserving sharing with precedence constraints, this admits scheduling
  anomalies (Graham, 1969): a task finishing sooner can move another's contention so that the
  total grows slightly. Tests bound their size; without concurrency there are none.
* Between two events (a phase finishing) rates are constant, so time jumps from event to event.

The engine knows nothing about devices: units and memory levels are names, and what a phase
costs comes from the unit models.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from archsim.errors import MappingError
from archsim.units.base import Phase

_EPS = 1e-12


@dataclass(frozen=True)
class EngineTask:
    """A unit of work for the engine: phases to run on ``unit`` after ``deps`` finish."""

    name: str
    unit: str
    phases: Sequence[Phase]
    deps: tuple[str, ...] = ()


@dataclass
class TaskTiming:
    """When a task ran, in reference-clock cycles (floats; the evaluator rounds)."""

    name: str
    unit: str
    start: float
    end: float
    phase_spans: list[tuple[str, float, float]] = field(default_factory=list)


def _fill_rates(active: list[tuple[str, Phase]], bw: Mapping[str, float]) -> dict[str, float]:
    """Progress rates (phase fraction per cycle) of the active phases by progressive filling.

    ``active`` pairs a key (the unit) with its current phase. Phase ``i`` alone on its dominant
    level would need ``T_i`` cycles; at a common dominant share ``s`` it runs at ``s / T_i``.
    """
    rates: dict[str, float] = {}
    weight: dict[str, float] = {}  # T_i: cycles the phase needs on its dominant level alone
    unfrozen: set[str] = set()
    for key, ph in active:
        cap = 1.0 / ph.compute_cycles if ph.compute_cycles > 0 else math.inf
        t_mem = max((b / bw[l] for l, b in ph.bytes.items() if b > 0), default=0.0)
        if t_mem <= 0.0:
            rates[key] = cap
        else:
            weight[key] = t_mem
            unfrozen.add(key)
    phases = dict(active)
    used = {l: 0.0 for l in bw}
    while unfrozen:
        coef: dict[str, float] = {}  # level -> bytes/cycle used per unit of s
        for key in unfrozen:
            for l, b in phases[key].bytes.items():
                if b > 0:
                    coef[l] = coef.get(l, 0.0) + b / weight[key]
        level_s = {l: max(bw[l] - used[l], 0.0) / c for l, c in coef.items() if c > 0}
        cap_s = {}
        for key in unfrozen:
            c = phases[key].compute_cycles
            cap_s[key] = weight[key] / c if c > 0 else math.inf
        s_next = min(min(level_s.values(), default=math.inf), min(cap_s.values()))
        if not math.isfinite(s_next):  # cannot happen: every unfrozen phase moves bytes
            raise RuntimeError("engine: unbounded progress rate")
        lim = s_next * (1 + 1e-12) + 1e-300
        sat_levels = {l for l, s in level_s.items() if s <= lim}
        newly = {k for k in unfrozen if cap_s[k] <= lim
                 or any(b > 0 and l in sat_levels for l, b in phases[k].bytes.items())}
        for key in newly:
            x = min(s_next, cap_s[key]) / weight[key]
            rates[key] = x
            for l, b in phases[key].bytes.items():
                used[l] += x * b
        unfrozen -= newly
    return rates


def run(tasks: Sequence[EngineTask], bandwidth_bytes_per_cycle: Mapping[str, float]
        ) -> dict[str, TaskTiming]:
    """Execute ``tasks`` and return when each ran.

    Args:
        tasks: in issue order; each unit runs its tasks in this order.
        bandwidth_bytes_per_cycle: bandwidth of each memory level named in the phases.

    Raises:
        MappingError: the order cannot be executed (a task waits for one queued after it).
    """
    by_name = {t.name: t for t in tasks}
    if len(by_name) != len(tasks):
        raise MappingError("engine: duplicate task names")
    for t in tasks:
        for d in t.deps:
            if d not in by_name:
                raise MappingError(f"task {t.name!r} depends on unknown task {d!r}")
        for ph in t.phases:
            for l in ph.bytes:
                if l not in bandwidth_bytes_per_cycle:
                    raise MappingError(f"task {t.name!r} uses unknown memory level {l!r}")
    queues: dict[str, deque[EngineTask]] = {}
    for t in tasks:
        queues.setdefault(t.unit, deque()).append(t)

    done: dict[str, TaskTiming] = {}
    finished: set[str] = set()
    busy: dict[str, list] = {}  # unit -> [task, phase index, remaining fraction, timing]
    now = 0.0

    def start_ready() -> None:
        for unit, q in queues.items():
            if unit in busy or not q:
                continue
            t = q[0]
            if all(d in finished for d in t.deps):
                q.popleft()
                timing = TaskTiming(t.name, unit, now, now)
                busy[unit] = [t, -1, 0.0, timing, now]
                advance_phase(unit)

    def advance_phase(unit: str) -> None:
        """Move ``unit``'s task to its next phase with work, finishing it if none is left."""
        entry = busy[unit]
        t, idx = entry[0], entry[1]
        while True:
            idx += 1
            if idx >= len(t.phases):
                timing = entry[3]
                timing.end = now
                done[t.name] = timing
                finished.add(t.name)
                del busy[unit]
                return
            ph = t.phases[idx]
            if ph.compute_cycles > 0 or any(b > 0 for b in ph.bytes.values()):
                entry[1], entry[2], entry[4] = idx, 1.0, now
                return
            entry[3].phase_spans.append((ph.name, now, now))

    while True:
        # starting a task may finish it at once (no work), which may unblock others
        while True:
            before = len(finished)
            start_ready()
            if len(finished) == before:
                break
        if not busy:
            if any(queues.values()):
                blocked = [q[0] for q in queues.values() if q]
                t = blocked[0]
                missing = [d for d in t.deps if d not in finished]
                raise MappingError(
                    f"the order cannot run: task {t.name!r} on {t.unit!r} waits for "
                    f"{', '.join(map(repr, missing))}, which is queued behind another task")
            break
        active = [(unit, entry[0].phases[entry[1]]) for unit, entry in busy.items()]
        rates = _fill_rates(active, bandwidth_bytes_per_cycle)
        dt = min(busy[u][2] / rates[u] for u, _ in active)
        now += dt
        for unit, ph in active:
            entry = busy[unit]
            entry[2] -= rates[unit] * dt
            if entry[2] <= _EPS * 4:
                entry[3].phase_spans.append((ph.name, entry[4], now))
                advance_phase(unit)
    return done
