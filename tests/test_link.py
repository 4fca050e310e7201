"""Collectives on the link unit (archsim.units.link): one formula for the all-reduce in the
graph family, the serving models and the RDU family, read from the design's interconnect."""

import pytest

import dataflow
from archsim import api
from archsim.core import physics
from archsim.errors import DesignError, MappingError
from archsim.experiments.serving.iteration import link_allreduce
from archsim.spec import builtin_designs_dir, load_design

TOKENS, HIDDEN = 32, 4096          # gpt3-7b decode, 32 requests: one all-reduce moves 256 KiB


@pytest.fixture(scope="module")
def graph():
    return dataflow.model_graph("gpt3-7b", "decode", TOKENS, kv=512, tp=4, layers=1)


def _link_tasks(result):
    return [r for r in result.timeline if r.unit == "link"]


@pytest.mark.parametrize("design", ["npu", "neupims", "a100", "h100", "duplex"])
def test_allreduce_runs_on_the_link_at_the_interconnect_ring_time(design, graph):
    d = load_design(design)
    ic = d.interconnect
    res = api.simulate(d, graph)
    tasks = _link_tasks(res)
    reduces = [e.name for e in graph.einsums if graph.tag(e.name, "role") == "allreduce"]
    assert sorted(t.einsum for t in tasks) == sorted(reduces) and len(reduces) == 2
    nbytes = TOKENS * HIDDEN * 2
    moved = 2 * 3 / 4 * nbytes                                  # ring over 4 devices
    expect_s = moved / ic.bandwidth_bytes_per_s + 2 * 3 * ic.latency_s
    for t in tasks:
        assert t.compute_cycles == pytest.approx(expect_s * d.clock_hz, abs=1)
        assert t.energy_pj == pytest.approx(moved * ic.energy_pj_per_byte)
    # the serving models time the same all-reduce with the same unit
    assert link_allreduce(d, 4, nbytes) == pytest.approx((expect_s, moved))


def test_the_interconnect_names_the_algorithm(graph):
    ring = _link_tasks(api.simulate("npu", graph))[0]
    shot = _link_tasks(api.simulate("npu", graph, overrides=["interconnect.allreduce=one_shot"]))[0]
    auto = _link_tasks(api.simulate("npu", graph, overrides=["interconnect.allreduce=auto"]))[0]
    ic = load_design("npu").interconnect
    nbytes = TOKENS * HIDDEN * 2
    assert shot.compute_cycles == pytest.approx(
        (3 * nbytes / ic.bandwidth_bytes_per_s + ic.latency_s) * 1e9, abs=1)
    assert auto.compute_cycles == min(ring.compute_cycles, shot.compute_cycles)
    assert shot.details["algorithm"] == "one_shot" and ring.details["algorithm"] == "ring"


def test_auto_picks_the_faster_algorithm():
    small = physics.allreduce(64.0, 8, 64.0, 100.0, "auto")
    large = physics.allreduce(1e9, 8, 64.0, 100.0, "auto")
    assert small[3] == "one_shot" and large[3] == "ring"
    with pytest.raises(ValueError, match="tree"):
        physics.allreduce(1.0, 2, 1.0, 0.0, "tree")


def test_all_to_all_sends_what_leaves_the_device():
    bw_t, lat_t, moved = physics.all_to_all(1000.0, 4, 10.0, 2.0)
    assert moved == pytest.approx(750.0) and bw_t == pytest.approx(75.0) and lat_t == 2.0
    assert physics.all_to_all(1000.0, 1, 10.0, 2.0) == (0.0, 0.0, 0.0)


def test_no_interconnect_refuses_a_tensor_parallel_graph(tmp_path, graph):
    text = (builtin_designs_dir() / "sa128.yaml").read_text()
    path = tmp_path / "alone.yaml"
    path.write_text(text[:text.index("interconnect:")])
    d = load_design(path)
    assert "link" not in d.units
    with pytest.raises(MappingError, match="allreduce over 4 devices runs on a link unit, and sa128 has no interconnect"):
        api.simulate(d, graph)
    # one device: no collective, nothing to refuse
    api.simulate(d, dataflow.model_graph("gpt3-7b", "decode", 4, kv=64, layers=1))


def test_a_link_runs_only_collectives(graph):
    d = load_design("npu")
    mapping, _ = api.map(d, graph)
    e = next(n for n, u in mapping.binding.items() if u == "vu")
    mapping.binding[e] = "link"
    with pytest.raises(MappingError, match="a link runs collectives only"):
        api.simulate(d, graph, mapping)


def test_a_declared_link_names_its_section(tmp_path):
    text = (builtin_designs_dir() / "sa128.yaml").read_text()
    text = text.replace("units:\n", "units:\n  wire:\n    kind: link\n    links: network\n", 1)
    path = tmp_path / "wired.yaml"
    path.write_text(text)
    with pytest.raises(DesignError, match=r"units\.wire\.links.*no 'network' section"):
        load_design(path)
