"""Every result says what produced it: model family and version, archsim version, the
design (hash, portable source) and, where there is one, the workload hash."""
from __future__ import annotations

import pytest

import dataflow
from archsim import __version__, load_design, simulate
from archsim.core.identity import MODEL_VERSIONS, model_version, portable_source
from archsim.families import family_for


def _check(ident: dict, family: str, design: str):
    assert ident["family"] == family
    assert ident["model_version"] == f"{family}-{MODEL_VERSIONS[family]}"
    assert ident["archsim_version"] == __version__
    assert ident["design"] == design and len(ident["design_hash"]) == 12
    assert ident["design_source"] == f"builtin:{design}"


def test_family_for_builtin_designs():
    assert family_for(load_design("npu")).name == "graph"
    assert family_for(load_design("duplex")).name == "graph"
    assert family_for(load_design("fusemax")).name == "spatial"
    assert family_for(load_design("sn40l")).name == "rdu"
    with pytest.raises(KeyError, match="unknown model family"):
        model_version("quantum")


def test_portable_source(tmp_path):
    assert portable_source(load_design("npu").source) == "builtin:npu"
    mine = tmp_path / "mine.yaml"
    assert portable_source(str(mine)) == str(mine)


def test_every_result_carries_its_identity():
    from archsim.experiments.coe import simulate_coe
    from archsim.api import simulate as api_simulate
    from archsim.experiments.serving.run import serve
    from archsim.families.spatial import simulate_model as spatial_model

    cas = dataflow.load_cascade("mlp", ranks_override={"m": 64})
    d = simulate("npu", cas).to_dict(timeline=False)
    _check(d["identity"], "graph", "npu")
    assert d["identity"]["workload_hash"] == d["workload_hash"]
    _check(spatial_model(load_design("fusemax"), "bert-base", seq=1024, batch=1,
                         scope="attention").to_dict()["identity"], "spatial", "fusemax")
    r = api_simulate("sn40l", "llama2-7b", phase="decode", batch=1, seq=512, sockets=8, layers=1)
    _check(r.to_dict()["identity"], "rdu", "sn40l")
    s = serve("neupims", "gpt3-7b", requests=4, batch=4, tp=4).to_dict()
    _check(s["identity"], "graph", "neupims")
    c = simulate_coe("sn40l", experts=4, batch=2, batches=2, output_tokens=2).to_dict()
    _check(c["identity"], "rdu", "sn40l")
    assert c["identity"]["baseline_model_version"] == model_version("graph")
