"""How a question reaches a family: the one place where a design's family is picked
(:func:`archsim.families.family_for`) and a family's problem is handed to a mapper.

The public entry points are in :mod:`archsim.api` (which re-exports :func:`simulate`,
:func:`map` and :func:`load` from here); experiments built on them (Composition of Experts,
sweeps) call this module so that :mod:`archsim.api` can offer them too without an import
cycle.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from archsim.families import Family, family_for
from archsim.spec import Design, load_design

__all__ = ["simulate", "map", "load"]


def load(design: Design | str | Path, overrides=()) -> Design:
    """``design`` as a :class:`Design` (a built-in name or a file path is loaded, with
    ``--set``-style ``overrides``)."""
    if not isinstance(design, Design) or overrides:
        return load_design(design, tuple(overrides))
    return design


def _rdu_problem(fam: Family, design: Design, workload, options: dict[str, Any], limits):
    """The RDU problem of ``workload``, with the tier-placement ILP run first when
    ``tiers="ilp"`` (a mapping decision the section costs depend on)."""
    tiers = options.pop("tiers", None)
    if tiers != "ilp":
        return fam.problem(design, workload, tiers=tiers, **options)
    from mappers.ilp import place_tiers

    base = fam.problem(design, workload, **options)
    placed, solver = place_tiers(base.workload, design,
                                 sockets_reserve_bytes=options.get("reserve_bytes", 0.0),
                                 limits=limits)
    keep = {k: v for k, v in options.items()
            if k in ("fusion", "partitioner", "sockets", "orchestration", "reserve_bytes")}
    return fam.problem(design, base.workload, tiers=placed, config=base.view.config,
                       tier_solver=solver, **keep)


def simulate(design: Design | str | Path, workload, mapping=None, *, mapper: str | None = None,
             overrides=(), limits=None, **options):
    """Simulate ``workload`` on ``design``: the family that claims the design scores
    ``mapping``, or the mapping that ``mapper`` (default: the family's) finds.

    Args:
        design: a :class:`Design`, a built-in design name or a design file path.
        workload: a :class:`dataflow.Cascade` or a model name (see the module table).
        mapping: the family's mapping (graph: :class:`archsim.Mapping`; rdu: segment ->
            :class:`~archsim.families.rdu.Partition`); None asks ``mapper``.
        mapper: graph: a mapper name (default ``greedy``); rdu: a partitioner (default
            ``ilp``; also accepted as ``partitioner=``).
        overrides: ``--set`` style overrides of ``design``.
        limits: solver limits (:class:`archsim.core.solve.SolveLimits`) of ILP mappers.
        options: the family's workload and problem options (see the module table).

    Returns:
        The family's result (graph: :class:`archsim.Result`; spatial:
        :class:`~archsim.families.spatial.ModelResult`; rdu:
        :class:`~archsim.families.rdu.RduResult`), each with ``cycles``, ``seconds``,
        ``to_dict()`` and an ``identity`` block naming family and model version.
    """
    design = load(design, overrides)
    fam = family_for(design, workload)
    if fam.name == "rdu":
        if mapper is not None:
            options.setdefault("partitioner", mapper)
        problem = _rdu_problem(fam, design, workload, dict(options), limits)
        if mapping is None:
            from mappers.partition import map_sections

            mapping = map_sections(problem, limits=limits)
        return fam.evaluate(problem, mapping)
    problem = fam.problem(design, workload, **options)
    if mapping is None and fam.name == "graph":
        from mappers import get_mapper

        mapping = get_mapper(mapper or "greedy")(problem.workload, design)
    elif mapper is not None and fam.name != "graph":
        raise ValueError(f"the {fam.name} family has no mappers (got mapper={mapper!r})")
    return fam.evaluate(problem, mapping)


def map(design: Design | str | Path, workload, *, mapper: str | None = None, overrides=(),
        limits=None, mapper_options: dict[str, Any] | None = None, **options):
    """Search a mapping of ``workload`` on ``design`` with ``mapper`` and score it with the
    family's evaluator. Returns ``(mapping, result)``; the mapper's own proxy figure is in
    the mapping (graph: ``mapping.info["estimate"]``, also ``result.estimate``; rdu: each
    partition's ``objective_cycles``, printed by ``result.summary()``).

    ``mapper_options`` go to the graph mapper (``budget``, ``window``, ``objective``,
    ``policy``, ``samples``); ``limits`` to any ILP."""
    design = load(design, overrides)
    fam = family_for(design, workload)
    if fam.name == "rdu":
        if mapper_options:
            raise ValueError(f"RDU partitioners take no mapper options "
                             f"({', '.join(mapper_options)})")
        if mapper is not None:
            options.setdefault("partitioner", mapper)
        problem = _rdu_problem(fam, design, workload, dict(options), limits)
        from mappers.partition import map_sections

        mapping = map_sections(problem, limits=limits)
        return mapping, fam.evaluate(problem, mapping)
    if fam.name != "graph":
        raise ValueError(f"the {fam.name} family maps by its design's policy: use simulate")
    from mappers import get_mapper

    problem = fam.problem(design, workload, **options)
    opts = dict(mapper_options or {})
    if limits is not None:
        opts["limits"] = limits
    mapping = get_mapper(mapper or "greedy")(problem.workload, design, **opts)
    return mapping, fam.evaluate(problem, mapping)
