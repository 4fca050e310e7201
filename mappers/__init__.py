"""Mappers: strategies that propose a :class:`archsim.mapping.Mapping` for the one evaluator.

``get_mapper(name)`` returns a callable ``(cascade, design, **options) -> Mapping``.

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

from typing import Callable

from archsim.errors import UserError
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


def get_mapper(name: str) -> Callable:
    """The mapper registered as ``name``: ``(cascade, design, **options) -> Mapping``."""
    try:
        return MAPPERS[name]
    except KeyError:
        raise UserError(f"unknown mapper {name!r}; available: {', '.join(MAPPERS)}") from None


__all__ = ["MAPPERS", "MEMORY_MAPPERS", "BINDING_MAPPERS", "get_mapper", "greedy_mapping",
           "opb_mapping", "memory_mapping", "default_placement"]
