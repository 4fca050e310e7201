"""Design-space sweeps: spec checking, sampling, local and Dask execution with identical
results, kill-and-resume without recomputation or lost/duplicated rows, failing points,
Pareto fronts and plots."""
from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from archsim.experiments import sweep
from archsim.cli import main
from archsim.errors import UserError
from testpaths import REPO_ROOT

SPEC = """\
design: npu
workload: {model: gpt3-7b, phase: decode, batch: 8, seq: 256, layers: 1}
axes:
  units.sa.rows: [32, 64, 128, 256]
  units.sa.cols: [32, 64, 128, 256]
  batch: [1, 2, 4, 8, 16, 32]
objectives: [cycles, energy_pj, throughput, memory.hbm.read_bytes]
"""


def _spec(tmp_path: Path, text: str = SPEC, name: str = "s.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_local_and_dask_give_identical_results(tmp_path):
    small = SPEC.replace("[1, 2, 4, 8, 16, 32]", "[4]").replace("[32, 64, 128, 256]", "[64, 128]")
    spec = sweep.load_spec(_spec(tmp_path, small))
    a = sweep.run_sweep(spec, tmp_path / "local.csv", workers=2, progress=False)
    b = sweep.run_sweep(spec, tmp_path / "dask.csv", workers=2, scheduler="local",
                        progress=False)
    assert a.ran == b.ran == 4 and b.scheduler.startswith("dask LocalCluster")
    # the same points in the same order: the files are byte for byte the same
    assert (tmp_path / "local.csv").read_bytes() == (tmp_path / "dask.csv").read_bytes()
    assert all(r["status"] == "ok" for r in _rows(tmp_path / "local.csv"))


@pytest.mark.slow
def test_killed_sweep_resumes_without_recomputing(tmp_path):
    """Kill a sweep halfway (SIGKILL), run it again: every finished row is kept as written,
    nothing is recomputed, nothing is lost or duplicated."""
    spec = _spec(tmp_path)
    out = tmp_path / "k.csv"
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    cmd = [sys.executable, "-m", "archsim.cli", "sweep", str(spec), "--out", str(out),
           "--workers", "1", "--quiet"]
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path)
    while proc.poll() is None:                 # no wall-clock bound: a slow machine waits
        if out.exists() and out.read_text().count("\n") >= 21:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = out.read_text()
    first = [ln for ln in before.splitlines(keepends=True) if ln.endswith("\n")][1:]
    done_before = len(sweep.read_rows(out))
    assert 20 <= done_before < 96, "the sweep was not killed halfway"
    res = subprocess.run(cmd[:-1], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert f"96 points, {done_before} already done, {96 - done_before} run" in res.stdout
    after = out.read_text().splitlines(keepends=True)
    assert after[1:1 + len(first[:done_before])] == first[:done_before]   # kept as written
    rows = _rows(out)
    keys = [r["key"] for r in rows]
    assert len(keys) == len(set(keys)) == 96
    expected = {sweep.point_key(sweep.load_spec(spec), p)
                for p in sweep.load_spec(spec).points()}
    assert set(keys) == expected


def test_failing_point_is_recorded_and_sweep_goes_on(tmp_path):
    text = SPEC.replace("[32, 64, 128, 256]", "[0, 64]", 1).replace(
        "[1, 2, 4, 8, 16, 32]", "[4]")
    rep = sweep.run_sweep(sweep.load_spec(_spec(tmp_path, text)), tmp_path / "f.csv",
                          workers=1, progress=False)
    rows = _rows(tmp_path / "f.csv")
    bad = [r for r in rows if r["status"] == "error"]
    assert rep.failed == len(bad) == 4 and len(rows) == 8
    assert "units.sa.rows" in bad[0]["error"] and bad[0]["cycles"] == ""
    again = sweep.run_sweep(sweep.load_spec(_spec(tmp_path, text)), tmp_path / "f.csv",
                            workers=1, progress=False)
    assert again.ran == 0                                  # failures are finished points
    retry = sweep.run_sweep(sweep.load_spec(_spec(tmp_path, text)), tmp_path / "f.csv",
                            workers=1, progress=False, retry_errors=True)
    assert retry.ran == 4 and len(_rows(tmp_path / "f.csv")) == 8


def test_sampling_is_seeded_and_latin(tmp_path):
    text = SPEC + "sample: {method: lhs, points: 24, seed: 3}\n"
    spec = sweep.load_spec(_spec(tmp_path, text))
    pts = spec.points()
    assert pts == spec.points() and len(pts) == 24
    # Latin hypercube: every value of an axis with 6 values appears 24 / 6 = 4 times
    counts = {v: sum(p["batch"] == v for p in pts) for v in [1, 2, 4, 8, 16, 32]}
    assert set(counts.values()) == {4}
    rnd = sweep.load_spec(_spec(tmp_path, SPEC + "sample: {method: random, points: 10, "
                                                 "seed: 1}\n", "r.yaml")).points()
    assert len(rnd) == 10 and rnd != pts[:10]


@pytest.mark.parametrize("text, message", [
    ("design: npu\naxes: {batch: [1]}\n", "missing required key 'objectives'"),
    ("design: npu\naxes: {batch: []}\nobjectives: [cycles]\n", "axes.batch: expected a "
                                                               "non-empty list"),
    ("design: npu\naxes: {batch: [1]}\nobjectives: [cycles]\nworkload: {modle: x}\n",
     "workload.modle: unknown field"),
    ("design: npu\naxes: {batch: [1]}\nobjectives: [cycles]\nsample: {method: sobol}\n",
     "sample: expected {method: random|lhs"),
    ("design: npu\naxes: {batch: [1]}\nobjectives: [cycles]\nfoo: 1\n", "unknown key 'foo'"),
    ("design: nope\naxes: {batch: [1]}\nobjectives: [cycles]\n", "unknown design 'nope'"),
])
def test_spec_errors_name_the_key(tmp_path, text, message):
    with pytest.raises(UserError, match=message.replace("{", r"\{").replace("|", r"\|")):
        sweep.load_spec(_spec(tmp_path, text))


def test_unknown_objective_is_a_row_error(tmp_path):
    text = SPEC.replace("memory.hbm.read_bytes", "flux").replace("[1, 2, 4, 8, 16, 32]", "[4]") \
        .replace("[32, 64, 128, 256]", "[64]")
    sweep.run_sweep(sweep.load_spec(_spec(tmp_path, text)), tmp_path / "o.csv", workers=1,
                    progress=False)
    row = _rows(tmp_path / "o.csv")[0]
    assert row["status"] == "error" and "objective 'flux' is not a field" in row["error"]


def test_pareto_front():
    rows = [{"status": "ok", "a": 1, "b": 5}, {"status": "ok", "a": 2, "b": 2},
            {"status": "ok", "a": 3, "b": 3}, {"status": "ok", "a": 4, "b": 1},
            {"status": "error", "a": 0, "b": 0}]
    front = sweep.pareto(rows, {"a": "min", "b": "min"})
    assert [(r["a"], r["b"]) for r in front] == [(1, 5), (2, 2), (4, 1)]
    front = sweep.pareto(rows, {"a": "max", "b": "max"})
    assert [(r["a"], r["b"]) for r in front] == [(1, 5), (3, 3), (4, 1)]


def test_cli_sweep_and_plot(tmp_path, capsys):
    text = SPEC.replace("[1, 2, 4, 8, 16, 32]", "[1, 8]")
    spec = _spec(tmp_path, text)
    assert main(["sweep", str(spec), "--workers", "2", "--quiet"]) == 0
    res = tmp_path / "s.csv"
    assert len(_rows(res)) == 32
    fig = tmp_path / "p.png"
    assert main(["sweep", "plot", str(res), "--x", "cycles", "--y", "energy_pj",
                 "--color", "batch", "--out", str(fig)]) == 0
    assert fig.stat().st_size > 1000 and "Pareto front" in capsys.readouterr().out
    rows = sweep.load_results(res, as_frame=False)
    assert isinstance(rows[0]["cycles"], int) and rows[0]["status"] == "ok"
    assert main(["sweep", "plot", str(res), "--x", "nope", "--y", "cycles"]) == 2
    assert "no column 'nope'" in capsys.readouterr().err


def test_rdu_and_spatial_points(tmp_path):
    rdu = """\
design: sn40l
workload: {model: llama2-7b, phase: decode, batch: 1, seq: 1024, sockets: 8, layers: 2}
axes:
  units.pcu.count: [520, 1040]
  fusion: [fused, unfused]
objectives: [seconds, kernel_launches, hbm_utilization]
"""
    rep = sweep.run_sweep(sweep.load_spec(_spec(tmp_path, rdu, "r.yaml")), tmp_path / "r.csv",
                          workers=1, progress=False)
    rows = _rows(tmp_path / "r.csv")
    assert rep.failed == 0 and len(rows) == 4
    by = {(r["units.pcu.count"], r["fusion"]): float(r["seconds"]) for r in rows}
    assert by["1040", "fused"] < by["1040", "unfused"]


def test_changed_model_version_reruns_and_moves_old_rows_aside(tmp_path, monkeypatch):
    """The model version is part of the point key: after a formula change (a bumped
    version) a resume runs every point again, and the old rows move to RESULTS.stale.csv
    instead of mixing with the new ones."""
    from archsim.core import identity

    text = SPEC.replace("[1, 2, 4, 8, 16, 32]", "[4]").replace("[32, 64, 128, 256]", "[64, 128]")
    spec = _spec(tmp_path, text)
    out = tmp_path / "v.csv"
    first = sweep.run_sweep(sweep.load_spec(spec), out, workers=1, progress=False)
    now = identity.MODEL_VERSIONS["graph"]
    assert first.ran == 4 and {r["model_version"] for r in _rows(out)} == {f"graph-{now}"}
    again = sweep.run_sweep(sweep.load_spec(spec), out, workers=1, progress=False)
    assert again.ran == 0 and again.stale == 0
    monkeypatch.setitem(identity.MODEL_VERSIONS, "graph", now + 1)
    bumped = sweep.run_sweep(sweep.load_spec(spec), out, workers=1, progress=False)
    assert bumped.ran == 4 and bumped.stale == 4
    assert {r["model_version"] for r in _rows(out)} == {f"graph-{now + 1}"} and len(_rows(out)) == 4
    stale = _rows(sweep.stale_path_of(out))
    assert len(stale) == 4 and {r["model_version"] for r in stale} == {f"graph-{now}"}
