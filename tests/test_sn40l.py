"""SN40L dataflow RDU: PCU unit, section model, partitioners, memory tiers, multi-socket,
Composition of Experts, CLI, and validation against ../shared/reference/sn40l.md."""
from __future__ import annotations

import json
import math

import pytest

import dataflow
from archsim import load_design
from archsim.cli import main
from archsim.experiments.coe import BASELINES, lru_misses, max_experts, simulate_coe
from archsim.errors import DesignError, MappingError, UserError
from archsim import api
from archsim.families.rdu import Infeasible, SectionModel
from mappers.partition import partition


@pytest.fixture(scope="module")
def sn40l():
    return load_design("sn40l")


def _body(cas):
    return list(cas.repeat_body(cas.repeats[0]))


@pytest.fixture(scope="module")
def prefill_model(sn40l):
    cas = dataflow.model_graph("llama2-7b", "prefill", 1, 4096, tp=8, dtype="bf16")
    return SectionModel(cas, sn40l, sockets=8)


@pytest.fixture(scope="module")
def decode_model(sn40l):
    cas = dataflow.model_graph("llama2-7b", "decode", 1, 4096, tp=8, dtype="bf16")
    return SectionModel(cas, sn40l, sockets=8)


# --------------------------------------------------------------------------- design and unit
def test_design_matches_reference_figures(sn40l):
    """sn40l.md "Chip": 638 TFLOPS BF16, 1040 PCUs/PMUs, 520 MB SRAM, 64 GB HBM at 1.8 TB/s,
    1.5 TB DDR at 200 GB/s."""
    pcu = sn40l.unit_models["pcu"]
    assert pcu.peak_flops_per_s == pytest.approx(638e12, rel=0.005)
    assert sn40l.units["pcu"].count == 1040 and sn40l.rdu.pmus == 1040
    assert sn40l.memories["sram"].capacity_bytes == 520_000_000
    assert sn40l.memories["hbm"].capacity_bytes == 64 * 2**30
    assert sn40l.memories["hbm"].bandwidth_bytes_per_s == 1.8e12
    assert sn40l.memories["ddr"].capacity_bytes == 1.5e12
    assert sn40l.memories["ddr"].bandwidth_bytes_per_s == 2.0e11
    # HBM streaming efficiency is derived from the DRAM timing, not given
    assert 0.85 < sn40l.memory_efficiency("hbm") < 1.0


def test_design_errors_name_the_key(tmp_path):
    with pytest.raises(DesignError, match=r"rdu\.pcu: expected one of the units \(pcu\)"):
        load_design("sn40l", ["rdu.pcu=tpu"])
    with pytest.raises(DesignError, match=r"rdu\.hbm: expected a memory of kind dram"):
        load_design("sn40l", ["rdu.hbm=sram"])
    with pytest.raises(DesignError, match=r"rdu\.launch\.orchestration"):
        load_design("sn40l", ["rdu.launch.orchestration=magic"])
    with pytest.raises(DesignError, match=r"rdu\.pmu: unknown key .pmu.; expected one of: pcu, sram"):
        load_design("sn40l", ["rdu.pmu=3"])


def test_pcu_modes(sn40l):
    pcu = sn40l.unit_models["pcu"]
    # decode GEMV: M = 1 fills one row of the 32 x 6 array -> 1/6 of peak
    assert pcu.systolic_utilization(1, 4096) == pytest.approx(1 / 6)
    assert pcu.systolic_utilization(4096, 4096) == pytest.approx(4096 / 4098)
    cas = dataflow.model_graph("llama2-7b", "decode", 1, 4096, tp=8, dtype="bf16")
    cyc, mode = pcu.einsum_cycles(cas, "Q")
    assert mode == "systolic"
    assert cyc == pytest.approx(4096 * 512 / (192 / 6))
    # a norm's sum of squares (M = N = 1) is a SIMD reduction, not a 1/192-full array
    cyc, mode = pcu.einsum_cycles(cas, "N1_SS")
    assert mode == "simd" and cyc == pytest.approx(4096 / 32)
    # e^(a-b): one ALU op and one tail op per point -> one lane cycle per point
    cyc, mode = pcu.einsum_cycles(cas, "A_SN")
    assert mode == "simd" and cyc == pytest.approx(cas.points("A_SN") / 32)


def test_general_evaluator_runs_on_pcus(sn40l):
    """``archsim map`` / ``simulate --mapping`` use the PCU unit's plan (all PCUs, one
    einsum per kernel)."""
    from archsim import simulate

    cas = dataflow.Cascade.from_text(["Z[m,n] = A[m,k] * B[k,n]"],
                                     {"m": 4096, "n": 4096, "k": 4096})
    r = simulate(sn40l, cas)
    ideal = 2 * 4096**3 / sn40l.unit_models["pcu"].peak_flops_per_s
    assert r.seconds == pytest.approx(ideal, rel=0.05)


# --------------------------------------------------------------------------- sections
def test_fused_gemm_runs_near_peak(sn40l):
    cas = dataflow.Cascade.from_text(["Z[m,n] = A[m,k] * B[k,n]"],
                                     {"m": 4096, "n": 4096, "k": 4096}, default_bits=16)
    r = api.simulate(sn40l, cas)
    ideal = 2 * 4096**3 / sn40l.unit_models["pcu"].peak_flops_per_s
    assert ideal < r.seconds < 1.1 * ideal
    assert r.kernel_launches == 1
    assert r.memory_bytes["hbm"] == pytest.approx(3 * 4096 * 4096 * 2)


def test_only_section_io_touches_hbm(decode_model):
    body = _body(decode_model.cascade)
    fused = decode_model.plan(body)
    unfused = sum(decode_model.plan((n,)).tier_bytes["hbm"] for n in body)
    weights = sum(decode_model.cascade.tensor_bytes(t) for t in
                  ("WQ", "WK", "WV", "WO", "WG", "WU", "WD", "KC", "VC"))
    # fused: weights + KV cache + the layer's input/outputs; unfused adds every intermediate
    assert weights <= fused.tier_bytes["hbm"] < weights * 1.01
    assert unfused > fused.tier_bytes["hbm"]


def test_decode_layer_is_one_bandwidth_bound_section(decode_model):
    plan = decode_model.plan(_body(decode_model.cascade))
    assert len(plan.waves) == 1 and plan.waves[0]["tiles"] == 1
    assert plan.waves[0]["bound"] == "hbm"
    # every stage got PCUs, in proportion to its work
    assert all(s.pcus >= 1 for s in plan.stages if s.mode != "link")
    assert plan.pcus_used <= 1040 and plan.pmus_used <= 1040
    assert plan.hbm_utilization(decode_model.chip) > 0.85


def test_attention_across_key_tiles_starts_a_wave(prefill_model):
    """A_QK streams query tiles but reads every key tile of KR: fused with its producer it
    must wait (a second wave); QR and A_QK stream together."""
    body = _body(prefill_model.cascade)
    i, j = body.index("KR"), body.index("A_QK")
    p = prefill_model.plan(body[i:j + 1])
    assert len(p.waves) == 2
    q = prefill_model.plan(("QR", "A_QK") if body.index("QR") + 1 == j else body[
        body.index("QR"):j + 1])
    waves = {s.name: s.wave for s in q.stages}
    assert waves["QR"] == 0 and waves["A_QK"] >= 1  # KR sits between QR and A_QK in order
    one = prefill_model.plan(body[j:])                # attention .. FFN streams in one wave
    assert len(one.waves) == 1 and one.waves[0]["tiles"] == 4096 // 32


def test_too_many_stages_do_not_fit(sn40l):
    small = load_design("sn40l", ["units.pcu.count=8"])
    cas = dataflow.model_graph("llama2-7b", "decode", 1, 4096, tp=8, dtype="bf16")
    m = SectionModel(cas, small, sockets=8)
    with pytest.raises(Infeasible, match="stages need more PCUs than the 8"):
        m.plan(_body(cas))
    r = api.simulate(small, cas, sockets=8)       # the partitioner cuts it instead
    assert all(len(s.plan.ops) - sum(st.mode == "link" for st in s.plan.stages) <= 8
               for s in r.runs)


def test_operator_that_cannot_fit_says_why(sn40l):
    tiny = load_design("sn40l", ["rdu.pmus=2", "memories.sram.capacity_bytes=2000"])
    cas = dataflow.Cascade.from_text(["Z[m,n] = A[m,k] * B[k,n]"],
                                     {"m": 4096, "n": 4096, "k": 4096})
    with pytest.raises(MappingError, match="does not fit on the chip alone: .*PMUs"):
        api.simulate(tiny, cas)


# --------------------------------------------------------------------------- partitioners
@pytest.mark.parametrize("which", ["prefill_model", "decode_model"])
def test_ilp_partition_is_the_exact_optimum(which, request):
    m = request.getfixturevalue(which)
    body = _body(m.cascade)
    ilp = partition(m, body, "ilp")
    dp = partition(m, body, "dp")
    greedy = partition(m, body, "greedy")
    unfused = partition(m, body, "unfused")
    assert ilp.status == "optimal"
    assert ilp.objective_cycles == pytest.approx(dp.objective_cycles, rel=1e-9)
    assert ilp.objective_cycles <= greedy.objective_cycles * (1 + 1e-9)
    assert ilp.objective_cycles < unfused.objective_cycles
    # every einsum in exactly one section, in program order
    assert [n for s in ilp.sections for n in s] == body


def test_ilp_matches_dp_on_other_graphs(sn40l):
    for model, phase, seq in (("llama3-8b", "prefill", 1024), ("mixtral-8x7b", "decode", 512)):
        cas = dataflow.model_graph(model, phase, 2, seq, tp=8, dtype="bf16")
        m = SectionModel(cas, sn40l, sockets=8)
        body = _body(cas)
        a, b = partition(m, body, "ilp"), partition(m, body, "dp")
        assert a.objective_cycles == pytest.approx(b.objective_cycles, rel=1e-9), model


# --------------------------------------------------------------------------- memory tiers
def test_weights_spill_to_ddr_least_bandwidth_first():
    # a 64 GB HBM shrunk to 1 GB: Llama-2-7B's 13.5 GB shard of one socket cannot stay
    d = load_design("sn40l", ["memories.hbm.capacity_bytes=1000000000",
                              "memories.hbm.dram=null"])
    r = api.simulate(d, "llama2-7b", phase="decode", batch=1, seq=1024, sockets=1)
    assert r.memory_bytes["ddr"] > 0
    assert any("spilled to DDR" in n for n in r.notes)
    fast = api.simulate("sn40l", "llama2-7b", phase="decode", batch=1, seq=1024, sockets=1)
    assert r.seconds > 2 * fast.seconds                # DDR is 9x slower than HBM
    from archsim.families.rdu import place_tensors
    # B is read whole, C one column of 4096: C needs less bandwidth per byte held and spills
    from dataflow.einsum import Tensor
    cas = dataflow.Cascade.from_text(["Z[m,n] = A[m,k] * B[k,n]", "Y[n] = C[n,0] + Z[0,n]"],
                                     {"m": 4096, "n": 4096, "k": 4096},
                                     tensors={"C": Tensor("C", ("n", "k"), 16)})
    half = load_design("sn40l", ["memories.hbm.capacity_bytes=70000000",
                                 "memories.hbm.dram=null"])
    place = place_tensors(cas, half)
    assert place["C"] == "ddr" and place["B"] == "hbm" and place["A"] == "hbm"
    cas = dataflow.model_graph("llama2-7b", "decode", 1, 1024, dtype="bf16")
    # explicit choices win; impossible ones say why
    place = place_tensors(cas, load_design("sn40l"), {"WQ": "ddr"})
    assert place["WQ"] == "ddr" and place["WK"] == "hbm"
    with pytest.raises(MappingError, match="tier of 'WQ' must be one of"):
        place_tensors(cas, load_design("sn40l"), {"WQ": "tape"})
    nodr = load_design("sn40l", ["memories.hbm.capacity_bytes=1000000000",
                                 "memories.hbm.dram=null", "rdu.ddr=null"])
    with pytest.raises(MappingError, match="only 1.00 GB is available and the design has no DDR"):
        place_tensors(cas, nodr)


# --------------------------------------------------------------------------- multi-socket
def test_more_sockets_decode_faster_with_link_time():
    t = {n: api.simulate("sn40l", "llama2-7b", phase="decode", batch=1, seq=4096,
                           sockets=n) for n in (1, 2, 8)}
    assert t[1].seconds > t[2].seconds > t[8].seconds
    # not perfectly linear: all-reduces and launches do not shrink
    assert t[1].seconds / t[8].seconds < 8
    links = [s for r in t[8].runs for s in r.plan.stages if s.mode == "link"]
    assert links and all(s.tile_cycles > 0 for s in links)
    with pytest.raises(UserError, match="joins at most 16 sockets"):
        api.simulate("sn40l", "llama2-7b", phase="decode", sockets=32)


# --------------------------------------------------------------------------- validation
@pytest.fixture(scope="module")
def runs():
    out = {}
    for phase in ("prefill", "decode"):
        for fusion in ("fused", "unfused"):
            out[phase, fusion] = api.simulate("sn40l", "llama2-7b", phase=phase, batch=1,
                                                seq=4096, sockets=8, fusion=fusion)
    return out


def test_decode_fused_speedup_and_hbm_bandwidth(runs):
    """sn40l.md: decode fused over unfused 1-13x; a fused decoder layer uses >= 85% of HBM
    bandwidth."""
    ratio = runs["decode", "unfused"].seconds / runs["decode", "fused"].seconds
    assert 1.0 <= ratio <= 13.0
    assert runs["decode", "fused"].hbm_utilization >= 0.85
    assert runs["decode", "fused"].partitions["layers"].sections.__len__() == 1


@pytest.mark.xfail(strict=True, reason="known deviation (issue 7 note): our unfused prefill "
                   "materialises the 3-pass softmax in HBM and serialises all-reduces, 3.75x")
def test_prefill_fused_speedup_in_paper_range(runs):
    ratio = runs["prefill", "unfused"].seconds / runs["prefill", "fused"].seconds
    assert 1.5 <= ratio <= 3.0


@pytest.mark.xfail(strict=True, reason="known deviation (issue 7 note): the exact partition "
                   "has 3 sections per prefill layer, 7.9x fewer launches (paper ~11x)")
def test_prefill_launch_reduction_about_11x(runs):
    ratio = runs["prefill", "unfused"].kernel_launches / runs["prefill", "fused"].kernel_launches
    assert ratio == pytest.approx(11.0, rel=0.10)


def test_prefill_fusion_reduces_launches_and_time(runs):
    f, u = runs["prefill", "fused"], runs["prefill", "unfused"]
    assert u.kernel_launches == 24 * 32 + 4                 # one per einsum
    assert u.kernel_launches / f.kernel_launches > 5
    assert u.seconds / f.seconds > 1.5


def test_model_switching_speedups():
    """sn40l.md: switching 15x (DGX H100, 64 GB/s) and 31x (DGX A100, 32 GB/s), within 20%."""
    h = simulate_coe(baseline="dgx-h100", batches=8)
    a = simulate_coe(baseline="dgx-a100", batches=8)
    assert h.switch_speedup == pytest.approx(15.0, rel=0.20)
    assert a.switch_speedup == pytest.approx(31.0, rel=0.20)


def test_dgx_runs_out_of_memory_past_about_150_experts():
    limit = max_experts(baseline="dgx-h100")
    assert limit == pytest.approx(150, rel=0.10)
    assert not simulate_coe(experts=150, batches=4).baseline_oom
    assert simulate_coe(experts=limit + 1, batches=4).baseline_oom
    assert simulate_coe(experts=limit + 1, batches=4).speedup is None
    assert max_experts("sn40l") == pytest.approx(850, rel=0.10)


@pytest.mark.xfail(strict=True, reason="known deviation (issue 7 note): uniform routing over "
                   "150 experts, 128-token prompts: 5.2x over DGX H100 and 10.1x over A100")
def test_coe_speedups_within_20_percent():
    assert simulate_coe(baseline="dgx-h100").speedup == pytest.approx(3.7, rel=0.20)
    assert simulate_coe(baseline="dgx-a100").speedup == pytest.approx(6.6, rel=0.20)


def test_coe_faster_than_dgx_and_cache_helps():
    h = simulate_coe(baseline="dgx-h100", batches=16)
    a = simulate_coe(baseline="dgx-a100", batches=16)
    assert 1 < h.speedup < a.speedup
    cold = simulate_coe(baseline="dgx-h100", cache_experts=0, batches=16)
    assert cold.hit_rate == 0 and cold.seconds > h.seconds
    assert simulate_coe(batches=16, seed=1).seconds != h.seconds     # routing is seeded
    assert simulate_coe(batches=16).seconds == h.seconds             # ... and deterministic
    with pytest.raises(UserError, match="only .* experts fit"):
        simulate_coe(cache_experts=10_000)
    with pytest.raises(UserError, match="unknown baseline"):
        simulate_coe(baseline="dgx-b200")
    assert set(BASELINES) == {"dgx-h100", "dgx-a100", "dgx-a100-40"}


def test_lru_cache_replay():
    misses, distinct = lru_misses([[0, 1, 0], [1, 2, 3], [0, 1, 2]], capacity=3)
    assert distinct[0] == [0, 1] and misses[:2] == [2, 2]
    assert misses[2] == 1                 # 0 was evicted by 3; 1 and 2 are cached


@pytest.mark.xfail(strict=True, reason="known deviation (issue 7 note): the model streams the "
                   "shard at the HBM's derived efficiency with ~1 us launches: 1416 tok/s")
def test_llama31_8b_decode_16_sockets():
    r = api.simulate("sn40l", "llama3-8b", phase="decode", batch=1, seq=8192, sockets=16)
    assert 1.0 / r.seconds == pytest.approx(1042, rel=0.25)


def test_llama31_8b_decode_16_sockets_bandwidth_bound():
    r = api.simulate("sn40l", "llama3-8b", phase="decode", batch=1, seq=8192, sockets=16)
    hbm_only = r.memory_bytes["hbm"] / (1.8e12 * load_design("sn40l").memory_efficiency("hbm"))
    assert hbm_only < r.seconds < 1.25 * hbm_only
    assert r.hbm_utilization > 0.85


# --------------------------------------------------------------------------- CLI
def test_cli_simulate_json(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["simulate", "--design", "sn40l", "--model", "llama2-7b", "--phase", "decode",
                 "--batch", "1", "--seq", "4096", "--sockets", "8", "--fusion", "unfused",
                 "--json", str(out)]) == 0
    d = json.loads(out.read_text())
    assert d["kernel_launches"] == 24 * 32 + 4
    assert set(d["memory"]) == {"sram", "hbm", "ddr"} and d["memory"]["hbm"] > 0
    assert d["seconds"] > 0 and d["tokens_per_s_per_user"] == pytest.approx(1 / d["seconds"])
    assert "kernel launches" in capsys.readouterr().out


def test_cli_coe_json(tmp_path):
    out = tmp_path / "c.json"
    assert main(["coe", "--design", "sn40l", "--experts", "150", "--batch", "8",
                 "--output-tokens", "20", "--baseline", "dgx-a100", "--batches", "8",
                 "--json", str(out), "--quiet"]) == 0
    d = json.loads(out.read_text())
    for key in ("seconds", "baseline_seconds", "speedup", "switch_seconds",
                "baseline_switch_seconds", "baseline_oom"):
        assert key in d
    assert d["baseline_oom"] is False and d["speedup"] > 1


@pytest.mark.parametrize("argv, message", [
    (["simulate", "--design", "sn40l", "--model", "llama2-7b", "--tp", "8"], "use --sockets"),
    (["simulate", "--design", "npu", "--model", "llama2-7b", "--fusion", "fused"],
     "apply to dataflow-RDU designs"),
    (["simulate", "--design", "sn40l", "--model", "llama2-7b", "--sockets", "0"],
     "--sockets must be a positive integer"),
    (["coe", "--experts", "0"], "--experts must be a positive integer"),
    (["coe", "--cache-experts", "-1"], "--cache-experts must be >= 0"),
])
def test_cli_errors_are_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_validate_sn40l_runs(capsys, tmp_path):
    code = main(["validate", "sn40l", "--json", str(tmp_path / "v.json")])
    out = capsys.readouterr().out
    assert "switch_speedup_h100" in out and "decode_hbm_utilization" in out
    rows = json.loads((tmp_path / "v.json").read_text())
    ok = {r["name"]: r["ok"] for r in rows}
    assert ok["switch_speedup_h100"] and ok["switch_speedup_a100"]
    assert ok["decode_fused_speedup"] and ok["decode_hbm_utilization"]
    assert code == (0 if all(v is not False for v in ok.values()) else 1)
    assert math.isfinite(rows[0]["ours"])


def test_cli_tier_choice_moves_weights_to_ddr(tmp_path):
    out = tmp_path / "t.json"
    assert main(["simulate", "--design", "sn40l", "--model", "llama2-7b", "--phase", "decode",
                 "--seq", "4096", "--sockets", "8", "--tier", "WG=ddr", "--tier", "WU=ddr",
                 "--json", str(out), "--quiet"]) == 0
    d = json.loads(out.read_text())
    # WG and WU: 2 x 32 layers x 4096 x 1376 x 2 B of one socket's shard come from DDR
    assert d["memory"]["ddr"] == pytest.approx(2 * 32 * 4096 * 1376 * 2, rel=1e-6)
    base = api.simulate("sn40l", "llama2-7b", phase="decode", seq=4096, sockets=8)
    assert d["seconds"] > 2 * base.seconds
    assert main(["simulate", "--design", "sn40l", "--model", "llama2-7b", "--tier", "X"]) == 2


def test_coe_batch_routing_switches_once_per_batch():
    r = simulate_coe(routing="batch", batches=16)
    assert r.breakdown["distinct_experts"] == 1
    assert r.seconds < simulate_coe(batches=16).seconds
    with pytest.raises(UserError, match="unknown routing"):
        simulate_coe(routing="zipf")
