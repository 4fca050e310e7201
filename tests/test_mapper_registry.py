"""Every mapper declares what it decides, and decides nothing else.

:data:`mappers.REGISTRY` names, for each mapper, its family and the decisions it takes. The
declared decisions must be decisions of that family's problem; a graph mapper's mapping must
keep every undeclared decision at the problem's default (binding on the fastest unit, program
order, default homes, the unit models' own tiling, no memory plan) and carry its own proxy
figure (``mapping.info["estimate"]``) beside the evaluator's.
"""
from __future__ import annotations

import pytest

from archsim.families import family_named
from archsim.families.rdu import PARTITIONERS
from archsim.spec import load_design
from mappers import MAPPERS, REGISTRY, get_mapper, graphs, mappers_of
from mappers.greedy import default_placement, greedy_mapping

PROBE = {"graph": "npu", "rdu": "sn40l"}


@pytest.fixture(scope="module")
def cascade():
    return graphs.tiny_graphs(1)[0]


def test_registry_covers_every_mapper():
    assert set(mappers_of("graph")) == set(MAPPERS)
    assert set(mappers_of("rdu")) == {m for m in PARTITIONERS if m != "unfused"} | {"tier-ilp"}
    assert len({(m.family, m.name) for m in REGISTRY}) == len(REGISTRY)


@pytest.mark.parametrize("info", REGISTRY, ids=lambda m: f"{m.family}-{m.name}")
def test_declared_decisions_belong_to_the_familys_problem(info, cascade):
    problem = family_named(info.family).problem(load_design(PROBE[info.family]), cascade)
    names = {d.name for d in problem.decisions}
    assert info.decides and set(info.decides) <= names, (info.decides, names)
    assert info.proxy and info.summary


def _defaults(cascade, design):
    order = cascade.topological_order()
    return {"binding": greedy_mapping(cascade, design).binding, "order": order,
            "placement": default_placement(cascade, design, order), "tiling": {},
            "memory": None, "fusion": []}       # npu: nothing fuses (no GPU unit)


def _chosen(mapping):
    return {"binding": mapping.binding, "order": list(mapping.order),
            "placement": mapping.placement, "tiling": mapping.tiling, "memory": mapping.memory,
            "fusion": mapping.fusion}


@pytest.mark.parametrize("name", ["opb", "ilp-binding", "greedy"])
def test_binding_mappers_on_a_gpu_get_the_default_fusion(name):
    import dataflow
    from mappers.greedy import fusion_groups

    g = dataflow.model_graph("llama2-7b", "prefill", 1, 128, layers=1)
    design = load_design("h100")
    mapping = get_mapper(name)(g, design)
    assert mapping.fusion and mapping.fusion == fusion_groups(g, design, mapping.binding)


@pytest.mark.parametrize("name", sorted(mappers_of("graph")))
def test_graph_mapper_keeps_undeclared_decisions_at_defaults(name, cascade):
    design = load_design("npu")
    info = mappers_of("graph")[name]
    mapping = get_mapper(name)(cascade, design)
    defaults, chosen = _defaults(cascade, design), _chosen(mapping)
    problem = family_named("graph").problem(design, cascade)
    for decision in problem.decisions:
        if decision.name not in info.decides:
            assert chosen[decision.name] == defaults[decision.name], decision.name
    assert mapping.mapper == name
    assert mapping.info.get("estimate"), "every mapper records its own proxy figure"


def test_memory_mappers_do_decide_the_memory_plan(cascade):
    """The check above is not vacuous: a memory mapper's plan differs from the default."""
    design = load_design("npu")
    mapping = get_mapper("belady")(cascade, design)
    assert mapping.memory is not None
    assert _chosen(mapping)["placement"] != _defaults(cascade, design)["placement"]
