"""`archsim` with model workloads: --model on simulate/map, `archsim models`, `archsim workload`."""
from __future__ import annotations

import csv
import json

import pytest

import dataflow
from testpaths import ok, user_error

DECODE = ["--model", "llama2-7b", "--phase", "decode", "--batch", "32", "--seq", "1024"]


def test_models_json_lists_every_builtin_with_the_documented_fields(run_archsim):
    rows = json.loads(ok(run_archsim("models", "--json")))
    names = [r["name"] for r in rows]
    assert names == [m.name for m in dataflow.builtin_models()]
    for key in ("name", "params", "layers", "hidden", "heads", "kv_heads", "experts"):
        assert all(key in r for r in rows), key
    by = {r["name"]: r for r in rows}
    assert by["llama2-70b"]["kv_heads"] == 8 and by["mixtral-8x7b"]["experts"] == 8
    assert abs(by["llama2-7b"]["params"] / 6.74e9 - 1) < 0.01      # Llama 2 paper, Table 1
    text = ok(run_archsim("models"))
    assert "grok-1" in text and "315.68B" in text


def test_map_whole_model_decode(run_archsim, tmp_path):
    out = tmp_path / "r.json"
    text = ok(run_archsim("map", "--design", "sa128", *DECODE, "--json", out))
    assert "llama2-7b-decode-fp16" in text
    result = json.loads(out.read_text())
    direct = dataflow.model_graph("llama2-7b", "decode", 32, 1024)
    import archsim
    assert result["cycles"] == archsim.simulate("sa128", direct).cycles
    # 32 layers of 7 GEMMs (Q, K, V, O, gate, up, down) + QK and AV = 288 tasks at least
    assert sum(u["tasks"] for u in result["units"].values()) > 32 * 9


def test_simulate_model_tp_dtype_and_kv_list(run_archsim, tmp_path):
    out = tmp_path / "r.json"
    ok(run_archsim("simulate", "--design", "sa128", "--model", "llama2-70b", "--phase",
                   "decode", "--batch", "4", "--kv", "512,1024,1024,2048", "--tp", "4",
                   "--dtype", "fp8", "--layers", "8", "--json", out, "--quiet"))
    res = json.loads(out.read_text())
    assert res["workload"] == "llama2-70b-decode-fp8-tp4"


def test_workload_table_json_csv_and_graph(run_archsim, tmp_path):
    j, c, g = tmp_path / "w.json", tmp_path / "w.csv", tmp_path / "g.png"
    text = ok(run_archsim("workload", "--model", "mixtral-8x7b", "--phase", "decode",
                          "--batch", "8", "--seq", "512", "--json", j, "--csv", c,
                          "--graph", g))
    assert "repeat layers x32" in text and "op/B" in text
    data = json.loads(j.read_text())
    roles = {r["role"] for r in data["einsums"]}
    assert {"router", "topk", "expert", "attention", "softmax"} <= roles
    qk = next(r for r in data["einsums"] if r["role"] == "attention" and "KC" in r["text"])
    assert 3.5 < qk["op_per_byte"] < 4.1           # GQA group 4 in fp16 (duplex.md: 4-8)
    assert data["totals"]["flops"] == sum(r["flops"] * r["instances"] for r in data["einsums"])
    with open(c) as f:
        assert len(list(csv.DictReader(f))) == len(data["einsums"])
    assert g.stat().st_size > 10_000 and g.read_bytes()[:4] == b"\x89PNG"


def test_workload_yaml_round_trips(run_archsim, tmp_path):
    text = ok(run_archsim("workload", "--model", "bert-base", "--batch", "2", "--seq", "128",
                          "--yaml"))
    path = tmp_path / "bert.yaml"
    path.write_text(text)
    assert dataflow.Cascade.from_yaml(path) == dataflow.model_graph("bert-base", "prefill", 2,
                                                                    128)
    # the saved cascade runs as a --cascade workload
    ok(run_archsim("simulate", "--design", "sa128", "--cascade", path, "--quiet"))


def test_model_config_json_path(run_archsim, tmp_path):
    cfg = {"model_type": "llama", "hidden_size": 512, "num_hidden_layers": 2,
           "num_attention_heads": 8, "num_key_value_heads": 2, "intermediate_size": 1024,
           "vocab_size": 1000, "hidden_act": "silu"}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    text = ok(run_archsim("workload", "--model", path, "--phase", "prefill", "--batch", "1",
                          "--seq", "64"))
    assert "repeat layers x2" in text


@pytest.mark.parametrize("args,needle", [
    (["workload", "--model", "llama9"], "unknown model 'llama9'"),
    (["workload", "--model", "/nope/config.json"], "no such file"),
    (["workload", "--model", "bert-base", "--phase", "decode"], "is an encoder"),
    (["workload", "--model", "llama2-7b", "--tp", "3"], "not divisible by --tp 3"),
    (["workload", "--model", "llama2-7b", "--batch", "0"], "--batch must be a positive"),
    (["workload", "--model", "llama2-7b", "--batch", "2", "--kv", "5,6,7"],
     "one length per request (2)"),
    (["workload", "--model", "llama2-7b", "--kv", "x"], "--kv 'x'"),
    (["workload", "--model", "llama2-7b", "--phase", "prefill", "--kv", "4"], "--past"),
    (["workload", "--model", "mixtral-8x7b", "--batch", "2", "--expert-tokens", "1,1"],
     "expected 8 non-negative"),
    (["workload", "--model", "llama2-7b", "--layers", "3", "--expert-tokens", "1"],
     "has no experts"),
    (["workload", "--model", "llama3-8b", "--phase", "mixed", "--attention", "1pass"],
     "needs one attention group"),
    (["workload", "--cascade", "gemm", "--batch", "4"], "--batch need --model"),
    (["workload", "--cascade", "gemm", "--model", "llama2-7b"], "give one workload"),
    (["workload", "--model", "llama2-7b", "--graph", "/nope/g.png"], "does not exist"),
    (["workload", "--model", "llama2-7b", "--graph", "g.txt"], "unsupported figure format"),
    (["simulate", "--design", "sa128", "--model", "llama2-7b", "--ranks", "m=4"],
     "--ranks applies to --cascade"),
])
def test_model_user_errors(run_archsim, tmp_path, args, needle):
    line = user_error(run_archsim(*args, cwd=tmp_path))
    assert needle in line, line


def _onnx_mlp(path, op="Relu"):
    """Save a 2-layer MLP (symbolic batch) built with onnx.helper; return the path."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w1 = numpy_helper.from_array(np.ones((64, 128), np.float32), "w1")
    w2 = numpy_helper.from_array(np.ones((128, 32), np.float32), "w2")
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"], name="fc1"),
             helper.make_node(op, ["h"], ["a"], name="act"),
             helper.make_node("MatMul", ["a", "w2"], ["y"], name="fc2")]
    graph = helper.make_graph(
        nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 32])], [w1, w2])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_onnx_model_on_the_cli(run_archsim, tmp_path):
    path = _onnx_mlp(tmp_path / "mlp.onnx")
    j = tmp_path / "w.json"
    ok(run_archsim("workload", "--model", path, "--dims", "batch=16", "--json", j))
    rows = json.loads(j.read_text())["einsums"]
    assert sum(r["flops"] for r in rows if r["gemm"]) == 2 * 16 * (64 * 128 + 128 * 32)
    out = tmp_path / "r.json"
    ok(run_archsim("simulate", "--design", "sa128", "--model", path, "--batch", "16",
                   "--json", out, "--quiet"))
    assert json.loads(out.read_text())["units"]["sa"]["tasks"] >= 1


def test_onnx_errors_on_the_cli(run_archsim, tmp_path):
    path = _onnx_mlp(tmp_path / "mlp.onnx")
    assert "batch" in user_error(run_archsim("workload", "--model", path))
    bad = _onnx_mlp(tmp_path / "bad.onnx", op="Hardmax")
    line = user_error(run_archsim("workload", "--model", bad, "--dims", "batch=2"))
    assert "'act'" in line and "Hardmax" in line
    assert "no such file" in user_error(run_archsim("workload", "--model",
                                                    tmp_path / "none.onnx"))
