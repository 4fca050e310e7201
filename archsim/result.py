"""What a simulation returns: :class:`Result`, with per-unit, per-memory and per-task figures.

Cycle counts are integers in the design's reference clock (``clock_hz``); energy is in pJ;
bytes are bytes. Exports live in :mod:`archsim.report` and are reachable as methods.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
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


@dataclass
class Result:
    """Outcome of :func:`archsim.simulate`.

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
    def energy_pj(self) -> float:
        """Total energy in pJ."""
        return float(sum(self.energy_breakdown_pj.values()))

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
