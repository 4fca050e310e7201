"""The ``Family`` protocol: what every model family answers, and how one is chosen.

archsim has three families of cost models (see :mod:`archsim.core.identity` for their
versions):

* ``graph``   -- the event-driven evaluator over unit models (NPU, NPU+PIM, GPU);
* ``spatial`` -- the spatial attention arrays (FuseMax, FLAT, unfused);
* ``rdu``     -- the dataflow RDU section model (SN40L).

A family **claims** the designs (and workloads) it answers for, states the **problem** a
workload poses on a design (what may be decided, and each decision's default), and
**evaluates** a mapping of that problem into a result. Families never search: the mappers in
:mod:`mappers` do, and :mod:`archsim.api` joins the two. Families never import :mod:`mappers`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class Decision:
    """One mapping decision of a problem: its name (``binding``, ``order``, ``memory``,
    ``placement``, ``tiling``, ``partition``, ``tiers``, ``fusion``, ...) and what is chosen
    when no mapper decides it."""

    name: str
    default: str


@dataclass
class Problem:
    """A workload on a design, as one family sees it: ``decisions`` a mapper may take (with
    their defaults), ``options`` the family was given, ``view`` the family's own form of the
    problem (e.g. the RDU's section cost model), handed back to :meth:`Family.evaluate`."""

    family: str
    design: Any
    workload: Any
    decisions: tuple[Decision, ...]
    options: dict[str, Any] = field(default_factory=dict)
    view: Any = None

    def decision(self, name: str) -> Decision:
        """The decision called ``name`` (KeyError if this problem has none)."""
        for d in self.decisions:
            if d.name == name:
                return d
        raise KeyError(f"{self.family} problems decide {', '.join(d.name for d in self.decisions)}"
                       f"; not {name!r}")


@runtime_checkable
class Family(Protocol):
    """What a model family provides (see the module docstring)."""

    #: the family's name: ``graph``, ``spatial`` or ``rdu``
    name: str

    @property
    def model_version(self) -> str:
        """``name-N``: the version of the family's formulas (part of every result's identity)."""

    def claims(self, design, workload=None) -> bool:
        """Whether this family answers for ``workload`` (None: any) on ``design``."""

    def problem(self, design, workload, **options) -> Problem:
        """The mapping problem ``workload`` poses on ``design``."""

    def evaluate(self, problem: Problem, mapping) -> Any:
        """The result of ``mapping`` (None: every decision at its default) of ``problem``."""
