"""Common types of the unit models: the spec base class, phases and task plans.

A *unit* is a block that executes einsums (a systolic array, a vector unit, ...). Each unit kind
has a spec (the validated part of the design file) and a model that turns one einsum, placed on
the unit with its tensors' homes, into a :class:`TaskPlan`: a short sequence of :class:`Phase`
objects that the event-driven engine executes while memories are shared with other tasks.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Mapping

from pydantic import BaseModel, ConfigDict

from archsim.core.physics import roofline_time

if TYPE_CHECKING:  # pragma: no cover
    from dataflow import Cascade

    from archsim.spec import Design


class StrictModel(BaseModel):
    """Base of every design-file model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class UnitSpec(StrictModel):
    """Fields every unit has. ``kind`` selects the unit model; ``clock_hz`` defaults to the
    design clock."""

    kind: str
    clock_hz: float | None = None
    description: str = ""


@dataclass(frozen=True)
class Phase:
    """One stretch of a task with a constant mix of compute and memory traffic.

    ``compute_cycles`` is the time the phase takes when memory keeps up (reference-clock cycles);
    ``bytes`` is the traffic (reads + writes) it moves on each memory level. The engine runs the
    phase at the highest rate both allow, sharing each level's bandwidth with concurrent phases.
    """

    name: str
    compute_cycles: float
    bytes: Mapping[str, float] = field(default_factory=dict)


class Traffic:
    """Bytes one task reads from and writes to each memory level, built up move by move."""

    def __init__(self) -> None:
        self.reads: dict[str, float] = {}
        self.writes: dict[str, float] = {}

    def read(self, level: str, nbytes: float) -> None:
        """The task reads ``nbytes`` from ``level``."""
        if nbytes:
            self.reads[level] = self.reads.get(level, 0) + nbytes

    def write(self, level: str, nbytes: float) -> None:
        """The task writes ``nbytes`` to ``level``."""
        if nbytes:
            self.writes[level] = self.writes.get(level, 0) + nbytes

    def move(self, src: str, dst: str, nbytes: float) -> None:
        """Copy ``nbytes`` from ``src`` to ``dst`` (nothing when they are the same level)."""
        if src != dst:
            self.read(src, nbytes)
            self.write(dst, nbytes)

    def totals(self) -> dict[str, float]:
        """Level -> bytes read + written."""
        return {lvl: self.reads.get(lvl, 0) + self.writes.get(lvl, 0)
                for lvl in {**self.reads, **self.writes}}

    def as_ints(self) -> tuple[dict[str, int], dict[str, int]]:
        """(read_bytes, write_bytes) per level, rounded to whole bytes."""
        return ({k: int(round(v)) for k, v in self.reads.items()},
                {k: int(round(v)) for k, v in self.writes.items()})


@dataclass
class TaskPlan:
    """What running one einsum on one unit costs, before any sharing with other tasks.

    Attributes:
        phases: executed in order by the engine.
        compute_cycles: cycles the unit is busy if memory never stalls it (reference clock).
        ops: operations performed, by kind (``mac``, ``add``, ...).
        read_bytes / write_bytes: bytes read from / written to each memory level.
        unit_energy_pj: dynamic energy of the unit's datapath for this task.
        useful_cycles: work expressed as cycles at the unit's peak rate (for utilization).
        details: unit-specific facts for reports (tiling, folds, ...), JSON-serialisable.
    """

    phases: list[Phase]
    compute_cycles: int
    ops: dict[str, int]
    read_bytes: dict[str, int]
    write_bytes: dict[str, int]
    unit_energy_pj: float
    useful_cycles: float
    details: dict[str, Any] = field(default_factory=dict)

    def alone_cycles(self, bandwidth_bytes_per_cycle: Mapping[str, float]) -> float:
        """Duration in cycles if this task ran alone: each phase at max(compute, traffic/bw)."""
        total = 0.0
        for ph in self.phases:
            t = ph.compute_cycles
            for level, nbytes in ph.bytes.items():
                bw = bandwidth_bytes_per_cycle[level]
                t = roofline_time(t, nbytes, bw)
            total += t
        return total


@dataclass(frozen=True)
class PlanContext:
    """Everything a unit model needs to plan one einsum.

    Attributes:
        cascade: the workload.
        einsum: name of the einsum to plan.
        placement: tensor name -> memory level holding it (its home).
        staging_bytes: free scratchpad bytes the unit may use for tiles while this einsum runs.
        tiling: a tiling chosen by the mapping (unit-specific keys), or None to let the unit pick.
        bandwidth_bytes_per_cycle: each memory level's bandwidth in reference-clock cycles.
        on_chip: tensors the einsum's fusion group keeps inside the kernel (no traffic; only
            units with ``fuses = True`` receive any, see :meth:`archsim.Mapping.fused_tensors`).
    """

    cascade: "Cascade"
    einsum: str
    placement: Mapping[str, str]
    staging_bytes: int
    tiling: Mapping[str, Any] | None
    bandwidth_bytes_per_cycle: Mapping[str, float]
    on_chip: frozenset[str] = frozenset()


#: Einsum roles that are collectives between devices (tag ``degree``: how many).
COLLECTIVE_ROLES = ("allreduce", "alltoall")


def collective_of(cascade: "Cascade", einsum: str) -> tuple[str, int] | None:
    """(role, degree) when ``einsum`` is a collective over more than one device (a
    :data:`COLLECTIVE_ROLES` role with tag ``degree`` > 1), else None."""
    role = cascade.tag(einsum, "role")
    if role not in COLLECTIVE_ROLES:
        return None
    degree = int(cascade.tag(einsum, "degree", 1))
    return (role, degree) if degree > 1 else None


class UnitModel(ABC):
    """Base class of unit models. Subclasses set ``kind`` and ``spec_class``."""

    kind: ClassVar[str] = ""
    spec_class: ClassVar[type[UnitSpec]] = UnitSpec

    def __init__(self, name: str, spec: UnitSpec, design: "Design"):
        self.name = name
        self.spec = spec
        self.design = design
        self.clock_hz = spec.clock_hz or design.clock_hz
        # unit cycles -> reference (design) cycles
        self.cycle_scale = design.clock_hz / self.clock_hz

    @property
    def scratchpad(self) -> str | None:
        """Memory level the unit reads operands from and writes results to, if any."""
        return getattr(self.spec, "scratchpad", None)

    def unsupported_reason(self, cascade: "Cascade", einsum: str) -> str | None:
        """None if the unit can run ``einsum``; otherwise a short reason why not. A collective
        over several devices (:func:`collective_of`) runs only on a ``link`` unit."""
        coll = collective_of(cascade, einsum)
        if coll is not None and self.kind != "link":
            role, degree = coll
            if not any(u.kind == "link" for u in self.design.units.values()):
                return (f"the {role} over {degree} devices runs on a link unit, and "
                        f"{self.design.name} has no interconnect section to build one from")
            return (f"the {role} over {degree} devices runs on the design's link unit (read "
                    f"from its interconnect), not on a {self.kind}")
        return self.own_unsupported_reason(cascade, einsum)

    @abstractmethod
    def own_unsupported_reason(self, cascade: "Cascade", einsum: str) -> str | None:
        """The unit kind's own refusals (see :meth:`unsupported_reason`)."""

    @abstractmethod
    def plan(self, ctx: PlanContext) -> TaskPlan:
        """Cost of running ``ctx.einsum`` on this unit (see :class:`TaskPlan`)."""
