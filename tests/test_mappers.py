"""Mapping problems and the memory/binding/tier mappers: the ILP against the exhaustive
optimum, the baselines, the evaluator's accounting of a memory plan, budgets, time limits,
and the CLI."""
from __future__ import annotations

import json

import pytest

import dataflow
from archsim import Mapping, load_design, simulate
from archsim.cli import main
from archsim.errors import MappingError, UserError
from mappers import get_mapper, graphs, memory_mapping
from mappers.exhaustive import exhaustive_schedule
from mappers.greedy import belady_schedule, opb_mapping, xla_schedule
from mappers.ilp import bind_units, memory_schedule, place_tiers
from mappers.problem import MappingProblem

BIG = ["memories.spm.capacity_bytes=4294967296"]


@pytest.fixture(scope="module")
def npu():
    return load_design("npu", BIG)


@pytest.fixture(scope="module")
def tiny():
    return graphs.tiny_graphs(50)


# --------------------------------------------------------------------------- optimality
@pytest.mark.slow
def test_ilp_equals_exhaustive_optimum_on_50_tiny_graphs(npu, tiny):
    """The done-when test: 50 random graphs of 7-8 operators whose spill-free peak exceeds
    M_R; at M_R and M_H the ILP's residency optimum equals the exhaustive search's, and the
    final schedules (with offsets) are valid and never worse than the baselines."""
    assert len(tiny) == 50
    for cas in tiny:
        for budget in ("MR", "MH"):
            p = MappingProblem(cas, npu, budget_bytes=budget)
            ilp = memory_schedule(p)
            ex = exhaustive_schedule(p)
            assert ilp.solver["status"] == "optimal"
            assert ilp.solver["stage1_non_compulsory_bytes"] == \
                ex.solver["stage1_non_compulsory_bytes"], (cas.name, budget)
            final = p.evaluate(ilp, need_offsets=True).non_compulsory_bytes
            assert final >= ilp.solver["stage1_non_compulsory_bytes"]
            for base in (belady_schedule(p), xla_schedule(p)):
                assert final <= p.evaluate(base).non_compulsory_bytes, (cas.name, budget)


def test_tiny_graphs_force_spills(npu, tiny):
    spilling = 0
    for cas in tiny[:10]:
        p = MappingProblem(cas, npu, budget_bytes="MR")
        spilling += belady_schedule(p) is not None and \
            p.evaluate(belady_schedule(p)).non_compulsory_bytes > 0
        assert p.peak_bytes(range(p.n)) >= 1.15 * p.min_budget_bytes()
    assert spilling >= 5


def test_ilp_beats_baselines_on_cnn_and_decoder(npu):
    for cas in (graphs.resnet_like(4), graphs.densenet_like(4), graphs.decoder_block(128, 32)):
        p = MappingProblem(cas, npu, budget_bytes="MR")
        ilp = p.evaluate(memory_schedule(p), need_offsets=True).non_compulsory_bytes
        best = min(p.evaluate(belady_schedule(p)).non_compulsory_bytes,
                   p.evaluate(xla_schedule(p)).non_compulsory_bytes)
        assert ilp < 0.7 * best, cas.name


def test_zero_traffic_at_mp_where_baselines_spill(npu):
    cas = graphs.densenet_like(4)
    p = MappingProblem(cas, npu, budget_bytes="MP")
    assert p.min_budget_bytes() <= p.budget_bytes <= p.peak_bytes(range(p.n)) or \
        p.budget_bytes == p.peak_optimal_bytes()
    assert p.evaluate(memory_schedule(p), need_offsets=True).non_compulsory_bytes == 0
    assert p.evaluate(belady_schedule(p)).non_compulsory_bytes > 0
    assert p.evaluate(xla_schedule(p)).non_compulsory_bytes > 0
    mr, mh = p.named_budget("MR"), p.named_budget("MH")
    assert mr <= mh <= p.budget_bytes


# --------------------------------------------------------------------------- budgets, limits
def test_infeasible_budget_says_why(npu):
    cas = graphs.decoder_block(128, 32)
    p = MappingProblem(cas, npu)
    mr = p.min_budget_bytes()
    with pytest.raises(MappingError, match=rf"operator '\w+' alone needs {mr} bytes resident"):
        p.set_budget(mr - 1)
    small = load_design("npu", ["memories.spm.capacity_bytes=1000"])
    with pytest.raises(MappingError, match=r"\(MR: the largest operator's inputs and output\) "
                                           r"exceeds the capacity of 'spm'"):
        MappingProblem(cas, small, budget_bytes="MR")
    with pytest.raises(UserError, match="expected MR, MH, MP or a number of bytes"):
        p.set_budget("lots")


def _hard_problem(npu):
    """A memory ILP that branch and bound does not close at its root (an inception-like
    graph, operators free to move 4 steps: about 80 nodes to prove), so a node limit of 1
    stops it with a gap."""
    return MappingProblem(graphs.inception_like(1), npu, window=4, budget_bytes="MR")


@pytest.mark.slow
def test_node_limit_returns_incumbent_with_gap(npu):
    """A solve cut short by its work limit is never reported optimal: it returns its
    incumbent (or the best baseline) with the bound, the gap and limit: nodes -- and, being
    a limit on work, the same answer every time."""
    from archsim.core.solve import SolveLimits

    p = _hard_problem(npu)
    s = memory_schedule(p, limits=SolveLimits(nodes=1))
    assert s.solver["status"] == "node_limit" and s.solver["limit"] == "nodes"
    assert s.solver["gap"] is not None and s.solver["gap"] > 0
    assert s.solver["bound"] <= s.solver["objective"]
    assert s.solver["objective"] == p.evaluate(s).non_compulsory_bytes
    best = min(p.evaluate(belady_schedule(p)).non_compulsory_bytes,
               p.evaluate(xla_schedule(p)).non_compulsory_bytes)
    assert s.solver["objective"] <= best
    again = memory_schedule(_hard_problem(npu), limits=SolveLimits(nodes=1))
    assert (again.order, again.solver) == (s.order, s.solver)
    full = memory_schedule(_hard_problem(npu))
    assert full.solver["status"] == "optimal" and full.solver["limit"] is None
    assert full.solver["objective"] <= s.solver["objective"]


def test_time_limit_is_explicit_and_marked(npu):
    """A wall-clock limit only when asked for, and its result says so (limit: time). A
    limit of a microsecond stops any machine before the root is solved, so the answer is the
    best baseline, labelled as such."""
    from archsim.core.solve import SolveLimits

    assert SolveLimits().time_s is None
    p = _hard_problem(npu)
    s = memory_schedule(p, limits=SolveLimits(time_s=1e-6))
    assert s.solver["status"] == "time_limit" and s.solver["limit"] == "time"
    assert "baseline" in s.solver["note"]
    best = min(p.evaluate(belady_schedule(p)).non_compulsory_bytes,
               p.evaluate(xla_schedule(p)).non_compulsory_bytes)
    assert s.solver["objective"] == best


def test_exhaustive_refuses_big_graphs(npu):
    p = MappingProblem(graphs.decoder_block(128, 32), npu)
    with pytest.raises(MappingError, match="at most 8 operators"):
        exhaustive_schedule(p)


@pytest.mark.parametrize("graph", ["decoder", "densenet", "resnet"])
@pytest.mark.parametrize("budget", ["MR", "MH"])
def test_time_objective_models_the_evaluator(npu, graph, budget):
    """The time objective's own estimate is the evaluator's figure (within a cycle of
    rounding, plus what bandwidth sharing between overlapping units adds), and the schedule
    it picks is never slower than the traffic-optimal one."""
    cas = {"decoder": graphs.decoder_block(128, 32), "densenet": graphs.densenet_like(4),
           "resnet": graphs.resnet_like(4)}[graph]
    p = MappingProblem(cas, npu, budget_bytes=budget)
    r_traffic = simulate(npu, cas, p.to_mapping(memory_schedule(p)))
    m_time = p.to_mapping(memory_schedule(p, objective="time"))
    r_time = simulate(npu, cas, m_time)
    est = r_time.estimate
    assert est["quantity"] == "cycles" and est["evaluator"] == r_time.cycles
    assert est["mapper"] <= r_time.cycles <= est["mapper"] * 1.01 + 1
    assert r_time.cycles <= r_traffic.cycles


# --------------------------------------------------------------------------- evaluator
def test_evaluator_charges_the_memory_plan(npu, tmp_path):
    cas = graphs.resnet_like(2)
    for name in ("ilp", "belady", "xla"):
        m = memory_mapping(name, cas, npu, budget="MR")
        r = simulate(npu, cas, m)
        backing = r.memory["hbm"].read_bytes + r.memory["hbm"].write_bytes
        assert backing == m.info["compulsory_bytes"] + m.info["non_compulsory_bytes"], name
        d = r.to_dict()
        assert d["non_compulsory_bytes"] == m.info["non_compulsory_bytes"]
        assert set(d["solver"]) == {"status", "limit", "objective", "bound", "gap", "nodes"}
        # the mapper's own figure beside the evaluator's: for traffic they agree exactly
        assert d["estimate"]["quantity"] == "non_compulsory_bytes"
        assert d["estimate"]["mapper"] == d["estimate"]["evaluator"] == \
            m.info["non_compulsory_bytes"]
    path = tmp_path / "m.json"
    m.save(path)
    again = Mapping.load(path)
    assert again.memory == json.loads(json.dumps(m.memory))
    assert simulate(npu, cas, again).cycles == simulate(npu, cas, m).cycles
    # a broken plan is refused with the reason
    bad = Mapping.from_dict(json.loads(path.read_text()))
    bad.memory["buffers"] = [b for b in bad.memory["buffers"] if b[0] != bad.order[0]
                             and b[0] != cas.einsum(bad.order[0]).output_tensor]
    with pytest.raises(MappingError, match="is not resident"):
        simulate(npu, cas, bad)


def test_mappings_are_deterministic(npu):
    cas = graphs.densenet_like(3)
    a = memory_mapping("ilp", cas, npu, budget="MH")
    b = memory_mapping("ilp", cas, npu, budget="MH")
    assert a.memory == b.memory and a.order == b.order


# --------------------------------------------------------------------------- binding, tiers
def test_binding_ilp_and_op_per_byte_rule():
    d = load_design("neupims")
    cas = dataflow.model_graph("gpt3-7b", "decode", 4, 256, tp=4, layers=1)
    binding, res = bind_units(cas, d)
    assert res["status"] == "optimal" and set(binding) == {e.name for e in cas.einsums}
    m = get_mapper("ilp-binding")(cas, d)
    assert simulate(d, cas, m).cycles > 0
    opb = opb_mapping(cas, d)
    low = [e.name for e in cas.einsums if cas.op_per_byte(e.name) <
           opb.info["machine_balance_op_per_byte"]]
    assert any(opb.binding[e] == "pim" for e in low)
    assert all(opb.binding[e] != "pim" for e in opb.binding if e not in low)


def test_tier_ilp_for_the_rdu():
    from archsim import api

    d = load_design("sn40l")
    cas = dataflow.model_graph("llama2-70b", "decode", 1, 4096, dtype="bf16")
    tiers, res = place_tiers(cas, d)
    assert res["status"] == "optimal" and set(tiers.values()) <= {"sram", "hbm", "ddr"}
    held = {t: cas.tensor_bytes(t) for t in tiers}
    assert sum(b for t, b in held.items() if tiers[t] == "hbm") <= 64 * 2**30
    ilp = api.simulate(d, "llama2-70b", phase="decode", seq=4096, tiers="ilp")
    policy = api.simulate(d, "llama2-70b", phase="decode", seq=4096)
    assert ilp.seconds <= policy.seconds * 1.001
    assert any("ILP" in n for n in ilp.notes)


# --------------------------------------------------------------------------- CLI
def test_cli_map_ilp_json_and_plot(tmp_path, capsys):
    out, fig = tmp_path / "r.json", tmp_path / "mem.png"
    assert main(["map", "--design", "npu", "--cascade", "mlp", "--ranks", "m=256",
                 "--mapper", "ilp", "--budget", "MR", "--node-limit", "5000",
                 "--json", str(out), "--plot", str(fig)]) == 0
    text = capsys.readouterr().out
    assert "memory plan in 'spm'" in text and "non-compulsory" in text
    d = json.loads(out.read_text())
    assert d["non_compulsory_bytes"] == 524288
    assert d["solver"]["status"] == "optimal" and d["solver"]["gap"] == 0
    assert fig.stat().st_size > 1000


@pytest.mark.parametrize("argv, message", [
    (["map", "--design", "npu", "--cascade", "mlp", "--budget", "MR"],
     "apply to the memory mappers"),
    (["map", "--design", "npu", "--cascade", "mlp", "--ranks", "m=256", "--mapper", "ilp",
      "--budget", "100"], "alone needs"),
    (["map", "--design", "npu", "--cascade", "mlp", "--mapper", "exhaustive", "--ranks",
      "m=64,d=64,h=64", "--time-limit", "-1"], "--time-limit must be a positive number"),
    (["map", "--design", "npu", "--cascade", "mlp", "--mapper", "ilp", "--ranks",
      "m=64,d=64,h=64", "--time-limit", "nan"], "--time-limit must be a positive number"),
    (["map", "--design", "npu", "--cascade", "mlp", "--mapper", "ilp", "--ranks",
      "m=64,d=64,h=64", "--node-limit", "0"], "--node-limit must be a positive"),
    (["map", "--design", "sn40l", "--model", "llama2-7b", "--mapper", "belady"],
     "section partitioner, one of ilp, greedy, dp"),
    (["map", "--design", "sn40l", "--model", "llama2-7b", "--budget", "MR"],
     "--budget do not apply to RDU section mapping"),
    (["map", "--design", "npu", "--cascade", "mlp", "--mapper", "magic"], "unknown mapper"),
])
def test_cli_map_errors(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_estimates_cover_every_instance_of_a_repeated_body():
    """A model graph simulates one layer and scales it; the mappers' estimates scale the
    same way, so they stay comparable with the evaluator's figure."""
    cas = dataflow.model_graph("llama2-7b", "decode", 4, 256, layers=3)
    assert cas.repeats and cas.repeats[0].count == 3
    big = load_design("npu", BIG)
    r = simulate(big, cas, get_mapper("xla")(cas, big))
    assert r.estimate["quantity"] == "non_compulsory_bytes"
    assert r.estimate["mapper"] == r.estimate["evaluator"]
    d = load_design("npu")
    g = simulate(d, cas, get_mapper("greedy")(cas, d))
    assert g.estimate["quantity"] == "cycles"
    assert g.cycles <= g.estimate["mapper"] * 1.01          # the serial sum bounds it
    assert g.estimate["mapper"] < 1.5 * g.cycles


@pytest.mark.parametrize("mapper", ["ilp", "dp", "greedy"])
def test_map_on_an_rdu_is_its_partitioner(mapper, tmp_path):
    """``archsim map --design sn40l --mapper M`` is the section partitioner M: the same JSON
    as ``simulate --partition M`` (one evaluator), with the partitioner's estimate printed."""
    import json

    from archsim.cli import main

    base = ["--design", "sn40l", "--model", "llama2-7b", "--phase", "decode", "--seq", "512",
            "--layers", "2", "--quiet"]
    assert main(["map", *base, "--mapper", mapper, "--json", str(tmp_path / "m.json")]) == 0
    assert main(["simulate", *base, "--partition", mapper,
                 "--json", str(tmp_path / "s.json")]) == 0
    m = json.loads((tmp_path / "m.json").read_text())
    assert m == json.loads((tmp_path / "s.json").read_text())
    assert m["partitioner"] == mapper
    assert all(p["method"] == mapper for p in m["partition"].values())
