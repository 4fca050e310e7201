"""Same inputs, same bytes: each command runs twice, each time in a fresh process and a fresh
directory, and every file it writes (and what it prints) must be identical byte for byte.

Covers the memory ILP (``map --mapper ilp``, both objectives), the binding ILP, the RDU
partition ILP (``simulate --design sn40l``), ``serve``, ``sweep`` on two worker processes
(points finish in any order) and the RL mapper (training, mapping with the policy, eval).
No time limit is given anywhere: the solvers stop on work (nodes), so a loaded or slow
machine gives the same answers.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from testpaths import REPO_ROOT

SWEEP = """\
design: npu
workload: {model: gpt3-7b, phase: decode, batch: 8, seq: 256, layers: 1}
axes:
  units.sa.rows: [64, 128]
  units.sa.cols: [64, 128]
  batch: [1, 4, 16]
objectives: [cycles, energy_pj, throughput]
"""


def _run_twice(tmp_path: Path, commands: list[list[str]], files: list[str],
               setup=None) -> dict[str, bytes]:
    """Run ``commands`` (archsim argument lists) in two fresh directories; assert that
    every file in ``files`` and the commands' stdout are the same bytes in both; return
    the first run's files."""
    outs = []
    for run in ("a", "b"):
        d = tmp_path / run
        d.mkdir()
        if setup:
            setup(d)
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), PYTHONHASHSEED="random")
        stdout = []
        for argv in commands:
            p = subprocess.run([sys.executable, "-m", "archsim.cli", *argv], cwd=d, env=env,
                               capture_output=True)
            assert p.returncode == 0, (argv, p.stderr.decode()[-2000:])
            assert b"HiGHS" not in p.stdout + p.stderr      # the solver's banner is kept out
            stdout.append(p.stdout)
        outs.append(({f: (d / f).read_bytes() for f in files}, stdout))
    (fa, sa), (fb, sb) = outs
    for f in files:
        assert fa[f] == fb[f], f"{f} differs between two runs of the same command"
    assert sa == sb, "stdout differs between two runs"
    return fa


def test_memory_ilp_and_binding_ilp(tmp_path):
    files = _run_twice(tmp_path, [
        ["map", "--design", "npu", "--cascade", "mlp", "--ranks", "m=256", "--mapper", "ilp",
         "--budget", "MR", "--json", "traffic.json", "--out", "traffic_mapping.json"],
        ["map", "--design", "npu", "--cascade", "attention", "--ranks", "m=256,p=256",
         "--mapper", "ilp", "--objective", "time", "--budget", "MH",
         "--json", "time.json", "--out", "time_mapping.json"],
        ["map", "--design", "neupims", "--model", "gpt3-7b", "--phase", "decode", "--batch",
         "4", "--seq", "256", "--tp", "4", "--layers", "1", "--mapper", "ilp-binding",
         "--json", "binding.json"],
    ], ["traffic.json", "traffic_mapping.json", "time.json", "time_mapping.json",
        "binding.json"])
    d = json.loads(files["traffic.json"])
    assert "seconds" not in d["solver"] and d["solver"]["limit"] is None
    assert d["design_source"] == d["identity"]["design_source"] == "builtin:npu"


@pytest.mark.slow
def test_rdu_partition_ilp_and_serve(tmp_path):
    _run_twice(tmp_path, [
        ["simulate", "--design", "sn40l", "--model", "llama2-7b", "--phase", "prefill",
         "--seq", "4096", "--sockets", "8", "--partition", "ilp", "--json", "rdu.json"],
        ["serve", "--design", "neupims", "--model", "gpt3-7b", "--requests", "48", "--tp",
         "4", "--batch", "16", "--json", "serve.json", "--quiet"],
        ["serve", "--design", "duplex", "--model", "mixtral-8x7b", "--requests", "24",
         "--devices", "4", "--batch", "8", "--dataset", "fixed:128,32", "--json",
         "duplex.json", "--quiet"],
    ], ["rdu.json", "serve.json", "duplex.json"])


def test_sweep_on_two_workers(tmp_path):
    files = _run_twice(tmp_path, [
        ["sweep", "s.yaml", "--workers", "2", "--out", "r.csv", "--quiet"],
    ], ["r.csv"], setup=lambda d: (d / "s.yaml").write_text(SWEEP))
    lines = files["r.csv"].decode().splitlines()
    assert len(lines) == 1 + 12 and "elapsed" not in lines[0]
    assert all(",graph-" in ln for ln in lines[1:])            # the model version column


@pytest.mark.slow
def test_rl_training_mapping_and_eval(tmp_path):
    """The exported policy, the learning curve, a mapping with it and the evaluation are the
    same bytes. The stable-baselines3 checkpoint (.zip) carries sb3's own run metadata (start
    time, episode wall times, object addresses), so only its weights are compared."""
    _run_twice(tmp_path, [
        ["rl", "train", "--steps", "2048", "--problems", "decoder,cnn:4", "--seed", "3",
         "--out", "p.zip", "--quiet"],
        ["map", "--design", "npu", "--cascade", "mlp", "--ranks", "m=256", "--mapper", "rl",
         "--policy", "p.npz", "--budget", "MR", "--json", "map.json"],
        ["rl", "eval", "--policy", "p.npz", "--problems", "decoder:3", "--ilp", "--json",
         "eval.json", "--quiet"],
    ], ["p.npz", "p.csv", "map.json", "eval.json"])
    weights = [zipfile.ZipFile(tmp_path / run / "p.zip").read("policy.pth")
               for run in ("a", "b")]
    assert weights[0] == weights[1]
