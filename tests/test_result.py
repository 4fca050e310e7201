"""One Result type: every family's result has the same figures and identity, and results add
(a run of one then the other) and multiply (n runs)."""
from __future__ import annotations

import pytest

import dataflow
from archsim import CombinedResult, GraphResult, Result, api
from archsim.result import MemoryStats, UnitStats


@pytest.fixture(scope="module")
def results():
    cascade = dataflow.load_cascade("mlp", ranks_override={"m": 64, "d": 128, "h": 256})
    return {
        "graph": api.simulate("npu", cascade),
        "spatial": api.simulate("fusemax", "bert-base", seq=1024, batch=4, scope="layers"),
        "rdu": api.simulate("sn40l", "llama2-7b", phase="decode", batch=4, seq=512, layers=2),
    }


@pytest.mark.parametrize("family", ["graph", "spatial", "rdu"])
def test_every_family_returns_the_one_result_type(results, family):
    r = results[family]
    assert isinstance(r, Result) and r.family == family
    for name in Result.FIELDS:
        getattr(r, name)
    # cycles are whole cycles of the run; seconds may be the unrounded time
    assert r.cycles > 0 and r.seconds == pytest.approx(r.cycles / r.clock_hz, abs=1 / r.clock_hz)
    assert r.units and all(isinstance(u, UnitStats) for u in r.units.values())
    assert r.memory and all(isinstance(m, MemoryStats) for m in r.memory.values())
    for u in r.units.values():
        assert 0.0 <= u.utilization <= 1.0 and u.busy_cycles <= r.cycles + 1
    ident = r.identity
    for key in ("family", "model_version", "archsim_version", "design", "design_hash",
                "workload_hash"):
        assert ident[key], key
    assert r.to_dict()["identity"] == ident
    assert r.summary()


def test_spatial_energy_is_split_without_loss(results):
    """Units (compute) and memory levels (traffic) together are the whole energy."""
    r = results["spatial"]
    parts = sum(u.energy_pj for u in r.units.values()) + \
        sum(m.energy_pj for m in r.memory.values())
    assert parts == pytest.approx(r.energy_pj, rel=1e-9)
    dram = r.memory["dram"]
    assert dram.write_bytes > 0 and dram.read_bytes > dram.write_bytes


def test_rdu_memory_is_the_tier_traffic(results):
    r = results["rdu"]
    for tier, nbytes in r.memory_bytes.items():
        m = r.memory[tier]
        assert m.read_bytes + m.write_bytes == pytest.approx(nbytes, abs=1)
    assert r.memory["hbm"].write_bytes > 0
    assert r.units["pcu"].tasks == r.kernel_launches


def test_sum_and_count(results):
    g = results["graph"]
    total = g + 3 * g
    assert isinstance(total, CombinedResult) and isinstance(total, Result)
    assert total.cycles == 4 * g.cycles and total.seconds == pytest.approx(4 * g.seconds)
    assert total.energy_pj == pytest.approx(4 * g.energy_pj)
    for name, u in g.units.items():
        assert total.units[name].busy_cycles == 4 * u.busy_cycles
        assert total.units[name].utilization == pytest.approx(u.utilization)
    for name, m in g.memory.items():
        assert total.memory[name].read_bytes == 4 * m.read_bytes
    # the timeline: the first part's tasks, then the second part's, shifted by the first
    tl = total.timeline
    n = len(g.timeline)
    assert len(tl) == 2 * n
    assert tl[n].start_cycle == g.timeline[0].start_cycle + g.cycles
    assert tl[n].instances == 3 * g.timeline[0].instances
    ident = total.identity
    assert ident["family"] == "graph" and [p["count"] for p in ident["parts"]] == [1, 3]
    assert (g * 2).cycles == (2 * g).cycles == (g + g).cycles
    assert (0 * g).cycles == 0
    d = total.to_dict()
    assert d["cycles"] == total.cycles and len(d["parts"]) == 2


def test_sums_keep_what_parts_do_not_share(results):
    g, s = results["graph"], results["spatial"]
    with pytest.raises(ValueError, match="different clocks"):
        g + s                     # 1 GHz NPU and 940 MHz FuseMax: cycles do not add
    r = results["rdu"]
    both = r + 2 * r
    assert both.cycles == 3 * r.cycles and both.identity["family"] == "rdu"
    with pytest.raises(TypeError):
        g * 1.5
    with pytest.raises(ValueError):
        g * -1


def test_graph_result_is_the_graph_familys():
    assert issubclass(GraphResult, Result)


def test_serve_and_coe_carry_the_same_identity():
    run = api.serve("npu", "gpt3-7b", dataset="fixed:64,4", requests=4, batch=4)
    ident = run.to_dict()["identity"]
    assert ident["family"] == "graph" and ident["workload_hash"]
    other = api.serve("npu", "gpt3-7b", dataset="fixed:64,5", requests=4, batch=4)
    assert other.identity["workload_hash"] != ident["workload_hash"]
    assert other.identity["design_hash"] == ident["design_hash"]
    c = api.coe(batches=2)
    assert c.identity["family"] == "rdu" and c.identity["workload_hash"]
    assert c.to_dict()["identity"] == c.identity
