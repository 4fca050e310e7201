"""What a simulation returns: one :class:`Result` type, whatever the family.

Every family's evaluator returns a :class:`Result`: :class:`GraphResult` (the graph family:
per-unit, per-memory and per-task figures), :class:`archsim.families.spatial.ModelResult` and
:class:`archsim.families.rdu.RduResult`, each with the family's own details beside the common
figures. Every result has ``cycles`` (in its ``clock_hz``), ``seconds``, ``energy_pj`` and
``energy_breakdown_pj``, ``units`` (name -> :class:`UnitStats`, where the family models
units), ``memory`` (name -> :class:`MemoryStats`, where it models traffic per level),
``timeline`` (per-task records, where it schedules tasks) and ``identity`` (family, model
version, archsim version, design and its hash, workload hash: see
:func:`archsim.core.identity.identity`). Results combine: ``a + b`` is a run of ``a`` then
``b``, ``n * a`` (or ``a * n``) is ``n`` runs of ``a`` (a :class:`CombinedResult`).

Cycle counts are in the design's reference clock (``clock_hz``); energy is in pJ; bytes are
bytes. Exports of a graph result live in :mod:`archsim.report` and are reachable as methods.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from archsim.mapping import Mapping


@dataclass
class UnitStats:
    """How one unit spent the run.

    ``busy_cycles``: cycles it was executing a task (including memory stalls);
    ``compute_cycles``: cycles its tasks would take if memory never stalled them;
    ``stall_cycles`` = busy - compute; ``utilization``: useful work / (peak rate x total cycles),
    e.g. MACs / (rows x cols x cycles) for a systolic array (always in [0, 1]).
    """

    kind: str
    busy_cycles: int
    compute_cycles: int
    stall_cycles: int
    utilization: float
    tasks: int
    energy_pj: float


@dataclass
class MemoryStats:
    """Traffic on one memory level; ``bandwidth_utilization`` = bytes / (bandwidth x time)."""

    kind: str
    read_bytes: int
    write_bytes: int
    bandwidth_utilization: float
    energy_pj: float


@dataclass
class TaskRecord:
    """One einsum's execution: when, where, what it moved and cost.

    ``instances`` > 1 marks an einsum of a repeated body (e.g. a transformer layer): the
    record shows the first instance; ops, bytes and energy are per instance, and the run's
    totals count every instance.
    """

    einsum: str
    text: str
    unit: str
    start_cycle: int
    end_cycle: int
    compute_cycles: int
    stall_cycles: int
    ops: dict[str, int]
    read_bytes: dict[str, int]
    write_bytes: dict[str, int]
    energy_pj: float
    phases: list[tuple[str, int, int]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    instances: int = 1


class Result:
    """The one result type (see the module docstring). Every subclass provides ``cycles``,
    ``seconds``, ``clock_hz``, ``energy_breakdown_pj``, ``units``, ``memory``, ``timeline``
    (the last three empty where its family does not model them), ``identity``, ``to_dict()``
    and ``summary()``; ``tests/test_result.py`` checks each family's."""

    #: what every result provides (attributes or properties)
    FIELDS = ("cycles", "seconds", "clock_hz", "energy_breakdown_pj", "units", "memory",
              "timeline", "identity")

    @property
    def family(self) -> str:
        """The model family that produced the result (from its identity)."""
        return self.identity.get("family", "")

    @property
    def energy_pj(self) -> float:
        """Total energy in pJ."""
        return float(sum(self.energy_breakdown_pj.values()))

    def __add__(self, other: "Result") -> "CombinedResult":
        if not isinstance(other, Result):
            return NotImplemented
        return CombinedResult([(self, 1), (other, 1)])

    def __mul__(self, count: int) -> "CombinedResult":
        if isinstance(count, bool) or not isinstance(count, int):
            return NotImplemented
        if count < 0:
            raise ValueError(f"a result repeats a whole number of times >= 0, not {count}")
        return CombinedResult([(self, count)])

    __rmul__ = __mul__


def _merge_units(parts) -> dict[str, UnitStats]:
    out: dict[str, UnitStats] = {}
    total = sum(r.cycles * n for r, n in parts)
    for r, n in parts:
        for name, u in r.units.items():
            acc = out.setdefault(name, UnitStats(u.kind, 0, 0, 0, 0.0, 0, 0.0))
            acc.busy_cycles += u.busy_cycles * n
            acc.compute_cycles += u.compute_cycles * n
            acc.stall_cycles += u.stall_cycles * n
            acc.tasks += u.tasks * n
            acc.energy_pj += u.energy_pj * n
            # utilization is per cycle of the run: weight each part by its cycles
            acc.utilization += u.utilization * r.cycles * n / total if total else 0.0
    return out


def _merge_memory(parts) -> dict[str, MemoryStats]:
    out: dict[str, MemoryStats] = {}
    total = sum(r.seconds * n for r, n in parts)
    for r, n in parts:
        for name, m in r.memory.items():
            acc = out.setdefault(name, MemoryStats(m.kind, 0, 0, 0.0, 0.0))
            acc.read_bytes += m.read_bytes * n
            acc.write_bytes += m.write_bytes * n
            acc.energy_pj += m.energy_pj * n
            acc.bandwidth_utilization += (m.bandwidth_utilization * r.seconds * n / total
                                          if total else 0.0)
    return out


class CombinedResult(Result):
    """Results run one after another, each ``count`` times: ``cycles``, ``seconds``, energy,
    unit busy cycles and memory bytes add up; utilizations are weighted by each part's time;
    the timeline lists each part's tasks once, shifted to where the part starts, with
    ``instances`` multiplied by its count. Cycles add only between parts of one clock."""

    def __init__(self, parts) -> None:
        flat: list[tuple[Result, int]] = []
        for r, n in parts:
            if isinstance(r, CombinedResult):
                flat += [(p, m * n) for p, m in r.parts]
            else:
                flat.append((r, n))
        clocks = {r.clock_hz for r, _ in flat}
        if len(clocks) > 1:
            raise ValueError(f"results of different clocks ({', '.join(map(str, sorted(clocks)))}"
                             f" Hz) do not add in cycles: combine results of one clock")
        self.parts = flat

    @property
    def clock_hz(self) -> float:
        return self.parts[0][0].clock_hz if self.parts else 0.0

    @property
    def cycles(self):
        return sum(r.cycles * n for r, n in self.parts)

    @property
    def seconds(self) -> float:
        return sum(r.seconds * n for r, n in self.parts)

    @property
    def energy_breakdown_pj(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for r, n in self.parts:
            for k, v in r.energy_breakdown_pj.items():
                out[k] = out.get(k, 0.0) + v * n
        return out

    @property
    def units(self) -> dict[str, UnitStats]:
        return _merge_units(self.parts)

    @property
    def memory(self) -> dict[str, MemoryStats]:
        return _merge_memory(self.parts)

    @property
    def timeline(self) -> list[TaskRecord]:
        out, start = [], 0
        for r, n in self.parts:
            for t in r.timeline:
                out.append(replace(t, start_cycle=t.start_cycle + start,
                                   end_cycle=t.end_cycle + start, instances=t.instances * n))
            start += r.cycles * n
        return out

    @property
    def identity(self) -> dict[str, Any]:
        """The fields every part shares (family, versions, design ...), and ``parts``: each
        part's identity with its ``count``."""
        ids = [r.identity for r, _ in self.parts]
        shared = {k: v for k, v in ids[0].items() if all(i.get(k) == v for i in ids[1:])} \
            if ids else {}
        return {**shared, "parts": [{**i, "count": n} for i, (_, n) in zip(ids, self.parts)]}

    def to_dict(self) -> dict[str, Any]:
        """JSON form: the totals, ``identity`` and every part's own form with its count."""
        return {"cycles": self.cycles, "seconds": self.seconds, "clock_hz": self.clock_hz,
                "energy_pj": self.energy_pj, "energy_breakdown_pj": self.energy_breakdown_pj,
                "identity": self.identity,
                "parts": [{"count": n, "result": r.to_dict()} for r, n in self.parts]}

    def summary(self) -> str:
        """One line per part and the total."""
        lines = [f"{n} x {r.identity.get('design', '?')} ({r.family}): {r.cycles:,.0f} cycles"
                 for r, n in self.parts]
        lines.append(f"total {self.cycles:,.0f} cycles, {self.seconds * 1e3:.4f} ms, "
                     f"energy {self.energy_pj / 1e6:.3f} uJ")
        return "\n".join(lines)


@dataclass
class GraphResult(Result):
    """Outcome of :func:`archsim.simulate` on a graph-family design.

    Attributes:
        cycles: total cycles (reference clock); seconds = cycles / clock_hz.
        units / memory: per-unit and per-memory-level figures.
        energy_breakdown_pj: energy by component (unit or memory name); ``energy_pj`` is the sum.
        timeline: one record per task, in issue order.
        design, design_hash, overrides, workload, workload_hash, mapper, archsim_version:
            identity of the inputs, so a number can be traced back to what produced it;
        identity: the same plus the model family and its version
            (:func:`archsim.core.identity.identity`).
    """

    cycles: int
    seconds: float
    clock_hz: float
    units: dict[str, UnitStats]
    memory: dict[str, MemoryStats]
    energy_breakdown_pj: dict[str, float]
    timeline: list[TaskRecord]
    design: str
    design_hash: str
    design_source: str
    overrides: list[str]
    workload: str
    workload_hash: str
    mapper: str
    archsim_version: str
    mapping: Mapping
    identity: dict[str, Any] = field(default_factory=dict)

    @property
    def estimate(self) -> dict[str, Any] | None:
        """The mapper's own figure of what it optimised beside the evaluator's figure of the
        same quantity: ``{"quantity", "mapper", "evaluator", "mapper_is"}`` (None when the
        mapping carries no estimate, e.g. one written by hand)."""
        est = self.mapping.info.get("estimate")
        if not isinstance(est, dict) or len(est) != 1:
            return None
        (quantity, value), = est.items()
        if quantity == "cycles":
            figure: float | None = self.cycles
        elif quantity == "non_compulsory_bytes" and self.mapping.memory is not None:
            m = self.memory[self.mapping.memory["backing"]]
            info = self.mapping.info
            floor = info.get("compulsory_bytes_all_instances", info.get("compulsory_bytes"))
            figure = m.read_bytes + m.write_bytes - int(floor or 0)
        else:
            figure = None
        return {"quantity": quantity, "mapper": value, "evaluator": figure,
                "mapper_is": self.mapping.info.get("estimate_is")}

    def to_dict(self, timeline: bool = True) -> dict[str, Any]:
        """JSON-serialisable summary (the ``simulate --json`` document)."""
        from archsim.core.identity import portable_source

        d: dict[str, Any] = {
            "design": self.design,
            "design_hash": self.design_hash,
            "design_source": portable_source(self.design_source),
            "overrides": list(self.overrides),
            "workload": self.workload,
            "workload_hash": self.workload_hash,
            "mapper": self.mapper,
            "archsim_version": self.archsim_version,
            "clock_hz": self.clock_hz,
            "cycles": int(self.cycles),
            "seconds": self.seconds,
            "energy_pj": self.energy_pj,
            "energy_breakdown_pj": dict(self.energy_breakdown_pj),
            "units": {k: asdict(v) for k, v in self.units.items()},
            "memory": {k: asdict(v) for k, v in self.memory.items()},
            "mapping": self.mapping.to_dict(),
            "identity": dict(self.identity),
        }
        if self.estimate is not None:
            d["estimate"] = self.estimate
        if self.mapping.memory is not None:
            d["non_compulsory_bytes"] = self.mapping.info.get("non_compulsory_bytes")
            d["compulsory_bytes"] = self.mapping.info.get("compulsory_bytes")
        if "solver" in self.mapping.info:
            d["solver"] = {k: self.mapping.info["solver"].get(k)
                           for k in ("status", "limit", "objective", "bound", "gap", "nodes")}
        if timeline:
            d["timeline"] = [asdict(t) for t in self.timeline]
        return d

    def summary(self) -> str:
        """A few lines for a terminal."""
        from archsim.report import summary_text

        return summary_text(self)

    def to_json(self, path) -> None:
        """Write :meth:`to_dict` as JSON."""
        from archsim.report import write_json

        write_json(self, path)

    def to_csv(self, path) -> None:
        """Write the per-task timeline as CSV."""
        from archsim.report import write_csv

        write_csv(self, path)

    def to_chrome_trace(self, path) -> None:
        """Write a Chrome / Perfetto trace (open in ui.perfetto.dev or chrome://tracing)."""
        from archsim.report import write_chrome_trace

        write_chrome_trace(self, path)

    def plot(self, path) -> None:
        """Save a timeline + utilization figure (PNG, SVG or PDF by extension)."""
        from archsim.report import plot_result

        plot_result(self, path)
