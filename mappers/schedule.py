"""The data of a memory mapping, shared by the problem and every memory mapper: tensors and
operators of a :class:`~mappers.problem.MappingProblem`, a schedule's buffers, the schedule
itself and its traffic (see :mod:`mappers.problem` for what they mean)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TensorInfo:
    """A tensor of the problem: size in bytes, producer and consumer operator indices."""

    name: str
    size: int
    producer: int | None
    consumers: tuple[int, ...]
    is_input: bool
    is_output: bool


@dataclass(frozen=True)
class OperatorInfo:
    """An operator (einsum): the tensors it uses, its unit and compute cycles."""

    name: str
    inputs: tuple[str, ...]
    output: str
    unit: str
    compute_cycles: float

    @property
    def uses(self) -> tuple[str, ...]:
        """Inputs and output (each once)."""
        return tuple(dict.fromkeys((*self.inputs, self.output)))


@dataclass
class Buffer:
    """``tensor`` resident in the scratchpad from step ``start`` to ``end`` (inclusive) at byte
    ``offset`` (None: not assigned yet). ``loaded``: the buffer starts with a load from off
    chip (else the producer creates it at ``start``)."""

    tensor: str
    start: int
    end: int
    offset: int | None = None
    loaded: bool = True

    def overlaps(self, other: "Buffer") -> bool:
        """True when the two buffers are resident at a common step."""
        return self.start <= other.end and other.start <= self.end


@dataclass
class MemorySchedule:
    """A mapper's answer: the order (einsum names, one per step), the buffers and the spilled
    tensors. ``solver`` carries how it was found (status, objective, bound, gap, seconds)."""

    order: list[str]
    buffers: list[Buffer]
    spilled: set[str] = field(default_factory=set)
    mapper: str = "manual"
    solver: dict[str, Any] = field(default_factory=dict)


@dataclass
class ScheduleCost:
    """Traffic of a valid schedule, in bytes, and the scratchpad occupancy per step."""

    non_compulsory_bytes: int
    compulsory_bytes: int
    reload_bytes: int
    spill_bytes: int
    peak_bytes: int
    occupancy_bytes: list[int]
    arena_bytes: int | None
