"""NPU + PIM designs: the design files, the PIM and GPU units in the evaluator, the serving
iteration model's policies, `archsim serve` and `archsim validate neupims`."""
from __future__ import annotations

import json

import numpy as np
import pytest
from testpaths import ok, serve_argv, user_error

from archsim import simulate
from archsim.errors import DesignError, UserError
from archsim.experiments.serving.iteration import IterationModel, lpt_makespan
from archsim.experiments.serving.run import serve, split_devices
from archsim.spec import load_design
from archsim.units.systolic import gemm_compute_cycles
from dataflow.transformer import model_graph

PIM_DESIGNS = ("npu", "npu_pim_blocked", "neupims")


# --------------------------------------------------------------------------- design files
@pytest.mark.parametrize("name", PIM_DESIGNS + ("a100",))
def test_builtin_designs_load_and_cite(name):
    d = load_design(name)
    assert d.references and d.serving is not None or name == "a100"
    assert d.interconnect is not None


def test_dram_block_derives_the_achieved_bandwidth():
    d = load_design("neupims")
    hbm = d.memories["hbm"]
    assert hbm.dram.organization.peak_bytes_per_s == pytest.approx(1.024e12)  # neupims.md
    eff = d.memory_efficiency("hbm")
    assert 0.85 < eff < 0.99
    assert d.bandwidth_bytes_per_cycle["hbm"] == pytest.approx(1.024e12 * eff / 1e9)


def test_dram_block_disagreeing_with_the_bandwidth_names_the_key():
    with pytest.raises(DesignError, match=r"neupims.yaml:\d+: memories.hbm: .*expected 1.024e\+12"):
        load_design("neupims", ["memories.hbm.bandwidth_bytes_per_s=2e12"])


def test_efficiency_and_dram_block_are_exclusive():
    with pytest.raises(DesignError, match="either efficiency or a dram block"):
        load_design("neupims", ["memories.hbm.efficiency=0.9"])


def test_serving_policy_names_existing_units():
    with pytest.raises(DesignError, match=r"serving.attention: expected one of the units"):
        load_design("neupims", ["serving.attention=nope"])


def test_double_buffered_needs_a_stationary_operand():
    with pytest.raises(DesignError, match="double_buffered applies to a stationary operand"):
        load_design("npu", ["units.sa.dataflow=os"])


# --------------------------------------------------------------------------- systolic arrays
def test_arrays_share_the_folds_and_double_buffering_hides_the_weight_load():
    # 4 folds of 128x128 weights, 64 streamed rows
    M, N, K = 64, 256, 256
    plain = gemm_compute_cycles(M, N, K, 128, 128, "ws")
    assert plain == 4 * (128 + 64 + 127 + 127)
    assert gemm_compute_cycles(M, N, K, 128, 128, "ws", arrays=4) == 128 + 64 + 127 + 127
    # double-buffered: one exposed load, then folds every max(T, R) cycles, one drain
    assert gemm_compute_cycles(M, N, K, 128, 128, "ws", double_buffered=True) == \
        128 + 3 * 128 + 64 + 127 + 127
    assert gemm_compute_cycles(512, N, K, 128, 128, "ws", double_buffered=True) == \
        128 + 3 * 512 + 512 + 127 + 127


# --------------------------------------------------------------------------- evaluator
@pytest.fixture(scope="module")
def decode_graph():
    return model_graph("gpt3-7b", "decode", batch=8, seq=256, tp=4)


def test_decode_attention_binds_to_pim_and_gemms_to_the_arrays(decode_graph):
    res = simulate("neupims", decode_graph)
    by_role = {}
    for r in res.timeline:
        by_role.setdefault(decode_graph.tag(r.einsum, "role"), set()).add(r.unit)
    assert by_role["attention"] == {"pim"}
    assert by_role["qkv"] == by_role["ffn"] == {"sa"}
    assert res.units["pim"].energy_pj > 0


def test_blocked_pim_is_never_faster_than_dual_row_buffers(decode_graph):
    dual = simulate("neupims", decode_graph)
    blocked = simulate("npu_pim_blocked", decode_graph)
    assert blocked.cycles >= dual.cycles
    # same work, same energy: only the overlap differs
    assert blocked.energy_pj == pytest.approx(dual.energy_pj)


def test_gpu_roofline_runs_every_einsum(decode_graph):
    res = simulate("a100", decode_graph)
    # every einsum on the GPU, the tensor-parallel all-reduces on its link
    assert {r.unit for r in res.timeline} == {"gpu", "link"}
    assert {r.einsum for r in res.timeline if r.unit == "link"} == {
        e.name for e in decode_graph.einsums if decode_graph.tag(e.name, "role") == "allreduce"}
    assert res.memory["hbm"].read_bytes > 0


# --------------------------------------------------------------------------- iteration model
CTX = np.random.default_rng(0).integers(80, 700, 256)
NONE = np.zeros(0, dtype=np.int64)


@pytest.fixture(scope="module")
def models():
    out = {}
    for name, il in (("npu", None), ("npu_pim_blocked", None), ("neupims", False),
                     ("neupims", True), ("neupims", "auto"), ("a100", None)):
        out[(name, il)] = IterationModel(load_design(name), "gpt3-7b", tp=4, interleave=il)
    return out


def test_policies_order_as_the_hardware_allows(models):
    t = {k: m.step(NONE, NONE, CTX).seconds for k, m in models.items()}
    # PIM attention beats the NPU's; dual row buffers overlap what blocked mode serializes
    assert t[("npu", None)] > t[("npu_pim_blocked", None)] > t[("neupims", False)]
    # auto picks the faster schedule per iteration
    assert t[("neupims", "auto")] == pytest.approx(min(t[("neupims", True)],
                                                       t[("neupims", False)]))


def test_interleaving_loses_at_small_batch(models):
    small = CTX[:32]
    on = models[("neupims", True)].step(NONE, NONE, small).seconds
    off = models[("neupims", False)].step(NONE, NONE, small).seconds
    assert on > off     # two passes over the weights, attention too short to hide


def test_pim_attention_is_the_dram_model_summed_over_heads(models):
    m = models[("neupims", False)]
    s = m.shapes
    hbm = m.pim.hbm
    c = 300
    want = (s.group * hbm.pim_gemv_cycles(c, s.kv_dim, s.head_dim)
            + s.heads * hbm.pim_gemv_cycles(s.head_dim, c, c)) * 1e-9
    got, _ = m.pim_request_s(np.array([c]))
    assert got[0] == pytest.approx(want)


def test_command_fidelity_agrees_with_the_closed_form():
    d = load_design("neupims")
    a = IterationModel(d, "gpt3-7b", tp=4, fidelity="analytical")
    c = IterationModel(d, "gpt3-7b", tp=4, fidelity="command")
    ctx = np.array([37, 300, 1024])
    ta, tc = a.pim_request_s(ctx)[0], c.pim_request_s(ctx)[0]
    np.testing.assert_allclose(ta, tc, rtol=0.03)


def test_lpt_balances_channels():
    # longest first: 5 | 4, then 3 -> 4 (7), 3 -> 5 (8), 3 -> 7 (10); the optimum is 9
    assert lpt_makespan(np.array([5.0, 4, 3, 3, 3]), 2) == 10
    assert lpt_makespan(np.array([4.0, 4, 2, 2]), 2) == 6
    assert lpt_makespan(np.array([1.0]), 32) == 1
    assert lpt_makespan(np.zeros(0), 4) == 0


def test_kv_capacity_and_errors():
    d = load_design("neupims")
    m = IterationModel(d, "gpt3-7b", tp=4)
    per_token = 2 * m.shapes.kv_dim * 2 * 32
    free = d.memories["hbm"].capacity_bytes - m.weight_bytes_per_device()
    assert m.kv_capacity_tokens() == free // per_token
    with pytest.raises(UserError, match="does not fit on neupims"):
        IterationModel(d, "gpt3-175b", tp=1).kv_capacity_tokens()
    with pytest.raises(UserError, match="do not split into 5 pipeline stages"):
        IterationModel(d, "gpt3-7b", tp=1, pp=5)
    with pytest.raises(UserError, match="interleaving needs a PIM with dual row buffers"):
        IterationModel(load_design("npu_pim_blocked"), "gpt3-7b", interleave=True)
    # auto has nothing to choose from without dual row buffers
    for name in ("npu_pim_blocked", "npu", "a100"):
        assert IterationModel(load_design(name), "gpt3-7b", interleave="auto").interleave is False


def test_pipeline_parallel_halves_each_stage():
    d = load_design("neupims")
    one = IterationModel(d, "gpt3-7b", tp=4, pp=1, interleave=False)
    two = IterationModel(d, "gpt3-7b", tp=4, pp=2, interleave=False)
    assert two.layers_per_stage == 16
    assert two.kv_capacity_tokens() > one.kv_capacity_tokens()
    t1 = one.step(NONE, NONE, CTX).seconds
    t2 = two.step(NONE, NONE, CTX).seconds
    # each stage runs both half-batch micro-batches through half the layers while the other
    # stage runs the other one: twice the devices, more than half the time of one stage group
    assert t1 / 2 < t2 < t1
    half = two.stage(NONE, CTX[0::2])["seconds"] + two.stage(NONE, CTX[1::2])["seconds"]
    assert t2 > half


def test_split_devices():
    assert split_devices(8, None, None) == (8, 1)
    assert split_devices(8, 4, None) == (4, 2)
    assert split_devices(8, None, 2) == (4, 2)
    assert split_devices(None, 4, None) == (4, 1) and split_devices(None, None, None) == (1, 1)
    with pytest.raises(UserError, match="--tp 3 x --pp 2 = 6 devices"):
        split_devices(8, 3, 2)


# --------------------------------------------------------------------------- serving end to end
def test_serve_is_deterministic_and_pim_beats_npu_at_large_batch():
    kw = dict(batch=128, requests=256, devices=4, seed=3, dataset="fixed:80,64")
    a = serve("neupims", "gpt3-7b", **kw)
    b = serve("neupims", "gpt3-7b", **kw)
    assert a.to_dict() == b.to_dict()
    n = serve("npu", "gpt3-7b", **kw)
    assert a.result.steady_throughput_tokens_per_s > n.result.steady_throughput_tokens_per_s
    assert set(a.result.units) >= {"npu", "pim"}
    parts = a.result.energy_breakdown_j
    assert set(parts) == {"compute", "dram", "link"}
    assert sum(parts.values()) == pytest.approx(a.result.energy_j)
    # PIM reads the KV cache inside the banks: less DRAM energy per token than the NPU
    assert parts["dram"] / a.result.output_tokens_total < \
        n.result.energy_breakdown_j["dram"] / n.result.output_tokens_total


def test_cli_serve_json(run_archsim, tmp_path):
    out = tmp_path / "s.json"
    ok(run_archsim("serve", "--design", "neupims", "--model", "gpt3-7b", "--devices", "4",
                   "--batch", "16", "--requests", "24", "--dataset", "fixed:16,8", "--json",
                   out, "--quiet"))
    d = json.loads(out.read_text())
    for key in ("throughput_tokens_per_s", "ttft_s", "tbt_s", "units", "energy_per_token_j"):
        assert key in d
    assert set(d["ttft_s"]) >= {"p50", "p90", "p99"}
    assert {"npu", "pim"} <= set(d["units"]) and "utilization" in d["units"]["pim"]
    assert d["output_tokens"] == 24 * 8 and d["config"]["tp"] == 4


@pytest.mark.parametrize("args, match", [
    (["--dataset", "nope"], "unknown dataset"),
    (["--devices", "8", "--tp", "3"], "devices"),
    (["--qps", "-1"], "--qps must be positive"),
    (["--model", "gpt3-175b", "--devices", "1"], "does not fit"),
    (["--design", "sa128"], "no serving block"),
])
def test_cli_serve_user_errors(run_archsim, args, match):
    argv = serve_argv({"--design": "neupims", "--model": "gpt3-7b", "--requests": "4"}, args)
    assert match in user_error(run_archsim(*argv))


@pytest.mark.slow
def test_validate_neupims_figures_small():
    from archsim.validation import neupims as vn

    figs = vn.neupims_figures(models=("gpt3-7b",), batches=(64,), requests_per_batch=1)
    names = {f.name for f in figs}
    assert {"neupims_over_npu", "neupims_over_blocked", "neupims_over_a100",
            "interleaving_at_64", "energy_per_token_ratio"} <= names
    text = vn.format_figures(figs)
    assert "2.400" in text and "gpt3-7b tp4 pp1 sharegpt batch 64" in text
    f = next(f for f in figs if f.name == "neupims_over_npu")
    assert f.ours > 1 and f.paper == 2.4
