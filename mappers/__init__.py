"""Mappers: strategies that propose a mapping for a family's evaluator to score.

Every mapper is registered in :data:`REGISTRY` as a :class:`MapperInfo`: the family whose
problems it maps, the decisions it takes (named as in that family's
:class:`~archsim.families.base.Problem`; every other decision stays at the problem's
default) and the proxy cost it optimises, which it records beside the mapping; the final
figure always comes from the family's evaluator. ``get_mapper(name)`` returns a graph-family
mapper as a callable ``(cascade, design, **options) -> Mapping``; the RDU partitioners are in
:mod:`mappers.partition` and the tier-placement ILP is :func:`mappers.ilp.place_tiers`.

* binding mappers: ``greedy`` (each einsum on its fastest unit, default homes), ``opb`` (the
  op/B rule between compute and PIM units), ``ilp-binding`` (units chosen by an ILP that
  minimises the makespan with overlap);
* memory mappers (a scratchpad schedule: order, residency, spills, offsets; see
  :mod:`mappers.problem`): ``ilp`` (exact, :mod:`mappers.ilp`), ``belady`` (TFLite-style linear
  allocator with Belady replacement), ``xla`` (XLA-style best-fit by memory-boundedness),
  ``exhaustive`` (tiny graphs), ``rl`` (a trained policy plays the memory-mapping game,
  :mod:`mappers.rl`). Their options: ``budget`` (``MR``/``MH``/``MP``/bytes),
  ``objective`` (``traffic``/``time``, ILP), ``limits`` (ILP: a
  :class:`archsim.core.solve.SolveLimits`), ``window``.

Every mapping records the mapper's own figure of what it optimised in
``mapping.info["estimate"]`` (``{"cycles": ...}`` or ``{"non_compulsory_bytes": ...}``); the
evaluator's figure of the same quantity is printed beside it (``Result.estimate``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from archsim.errors import UserError
from mappers.partition import DECIDES as PARTITION_DECIDES
from mappers.greedy import default_placement, greedy_mapping, opb_mapping

MEMORY_MAPPERS = ("ilp", "belady", "xla", "exhaustive")
BINDING_MAPPERS = ("greedy", "opb", "ilp-binding")


def memory_mapping(name: str, cascade, design, *, budget=None, objective: str = "traffic",
                   limits=None, window: int | None = None):
    """Map ``cascade``'s tensors into ``design``'s scratchpad with memory mapper ``name``;
    returns the Mapping (its ``info`` holds ``non_compulsory_bytes`` and ``solver``)."""
    from mappers.exhaustive import exhaustive_schedule
    from mappers.greedy import belady_schedule, xla_schedule
    from mappers.ilp import memory_schedule
    from mappers.problem import MappingProblem

    if name not in MEMORY_MAPPERS:
        raise UserError(f"unknown memory mapper {name!r}; expected one of "
                        f"{', '.join(MEMORY_MAPPERS)}")
    p = MappingProblem(cascade, design, budget_bytes=budget, window=window)
    if name == "ilp":
        sched = memory_schedule(p, objective=objective, limits=limits)
    elif name == "exhaustive":
        sched = exhaustive_schedule(p)
    elif name == "belady":
        sched = belady_schedule(p)
    else:
        sched = xla_schedule(p)
    if not sched.solver:
        sched.solver = {"status": "heuristic", "limit": None, "objective": None,
                        "bound": None, "gap": None, "solver": name}
    mapping = p.to_mapping(sched)
    solver = mapping.info.setdefault("solver", dict(sched.solver))
    if name != "ilp" or objective == "traffic":
        solver["objective"] = mapping.info["non_compulsory_bytes"]
    return mapping


def _ilp_binding(cascade, design, *, limits=None, **_):
    from archsim.mapping import Mapping
    from mappers.ilp import bind_units

    binding, res = bind_units(cascade, design, limits=limits)
    order = cascade.topological_order()
    return Mapping(binding=binding, order=order,
                   placement=default_placement(cascade, design, order), mapper="ilp-binding",
                   info={"solver": res, "estimate": dict(res["estimate"])})


def _rl(cascade, design, **opts):
    from mappers.rl import rl_mapping

    return rl_mapping(cascade, design, **opts)


def _memory(name: str) -> Callable:
    def run(cascade, design, **opts):
        return memory_mapping(name, cascade, design, **opts)
    run.__name__ = f"{name}_mapping"
    return run


MAPPERS: dict[str, Callable] = {
    "greedy": lambda cascade, design, **_: greedy_mapping(cascade, design),
    "opb": lambda cascade, design, **_: opb_mapping(cascade, design),
    "ilp-binding": _ilp_binding,
    **{n: _memory(n) for n in MEMORY_MAPPERS},
    "rl": _rl,
}


@dataclass(frozen=True)
class MapperInfo:
    """A registered mapper (see the module docstring)."""

    name: str
    family: str                  # the family whose problems it maps: graph or rdu
    decides: tuple[str, ...]     # the decisions it takes; the rest keep their defaults
    proxy: str                   # what it optimises, as recorded in its mapping
    summary: str


_MEMORY_DECIDES = ("order", "placement", "memory")
_BYTES = "non-compulsory scratchpad traffic bytes (mapping.info['estimate'])"

#: every mapper, by family (names repeat across families: ``ilp`` and ``greedy`` are a memory
#: ILP and a binding rule on graph designs, the section partitioners on RDU designs)
REGISTRY: tuple[MapperInfo, ...] = (
    MapperInfo("greedy", "graph", ("binding", "fusion"),
               "sum of every einsum's stand-alone cycles on its unit",
               "each einsum on its fastest unit"),
    MapperInfo("opb", "graph", ("binding",), "sum of stand-alone cycles",
               "the op/B rule between compute and PIM units"),
    MapperInfo("ilp-binding", "graph", ("binding",), "makespan cycles with overlap (ILP)",
               "units chosen by an ILP over stand-alone durations"),
    MapperInfo("ilp", "graph", _MEMORY_DECIDES, _BYTES,
               "exact scratchpad schedule: order, residency, spills, offsets"),
    MapperInfo("belady", "graph", ("placement", "memory"), _BYTES,
               "linear allocator with Belady replacement (TFLite-style)"),
    MapperInfo("xla", "graph", ("placement", "memory"), _BYTES,
               "best-fit by memory-boundedness (XLA-style)"),
    MapperInfo("exhaustive", "graph", _MEMORY_DECIDES, _BYTES,
               "every order and residency of a tiny graph"),
    MapperInfo("rl", "graph", _MEMORY_DECIDES, _BYTES,
               "a trained policy plays the memory-mapping game"),
    MapperInfo("ilp", "rdu", PARTITION_DECIDES,
               "sum of section cycles x runs (Partition.objective_cycles)",
               "exact set-partitioning ILP over contiguous sections"),
    MapperInfo("dp", "rdu", PARTITION_DECIDES, "sum of section cycles x runs",
               "the same optimum by dynamic programming"),
    MapperInfo("greedy", "rdu", PARTITION_DECIDES, "sum of section cycles x runs",
               "grow a section while fusing does not cost more"),
    MapperInfo("tier-ilp", "rdu", ("tiers",),
               "largest per-tier streaming time (bytes touched / tier bandwidth)",
               "persistent tensors in SRAM, HBM or DDR (simulate --tier ilp)"),
)


def mappers_of(family: str) -> dict[str, MapperInfo]:
    """Name -> :class:`MapperInfo` of the mappers of ``family`` (``graph`` or ``rdu``)."""
    return {m.name: m for m in REGISTRY if m.family == family}


def get_mapper(name: str) -> Callable:
    """The mapper registered as ``name``: ``(cascade, design, **options) -> Mapping``. A
    graph mapper that does not decide ``fusion`` gets the default fusion of its binding
    (:func:`mappers.greedy.fusion_groups`: fused kernels on GPU units, none elsewhere)."""
    try:
        fn = MAPPERS[name]
    except KeyError:
        raise UserError(f"unknown mapper {name!r}; available: {', '.join(MAPPERS)}") from None
    info = mappers_of("graph").get(name)
    if info is None or "fusion" in info.decides:
        return fn

    def with_default_fusion(cascade, design, **options):
        from mappers.greedy import fusion_groups

        mapping = fn(cascade, design, **options)
        mapping.fusion = fusion_groups(cascade, design, mapping.binding)
        return mapping

    return with_default_fusion


__all__ = ["MAPPERS", "MEMORY_MAPPERS", "BINDING_MAPPERS", "REGISTRY", "MapperInfo", "mappers_of",
           "get_mapper", "greedy_mapping",
           "opb_mapping", "memory_mapping", "default_placement"]
