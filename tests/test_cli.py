"""The ``archsim`` command line, run as a subprocess (``sys.executable -m archsim.cli``).

User errors must exit with code 2 and print exactly one line on stderr (``archsim: error: ...``)
and no traceback; the outputs (JSON, CSV, trace, plot) must carry the figures they claim.
"""
from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import archsim
from archsim.spec import builtin_designs_dir

GEMM = "Z[m,n] = A[m,k] * B[k,n]"
from testpaths import SCALESIM_CSV, ok, user_error


def cycles_of(json_path) -> int:
    return json.loads(Path(json_path).read_text())["cycles"]


# --------------------------------------------------------------------------- simulate
@pytest.fixture(scope="module")
def gemm_run(tmp_path_factory, run_archsim):
    out = tmp_path_factory.mktemp("gemm")
    paths = {k: out / name for k, name in
             (("json", "r.json"), ("csv", "r.csv"), ("trace", "t.json"), ("plot", "p.png"))}
    proc = run_archsim("simulate", "--design", "sa128", "--einsum", GEMM,
                       "--ranks", "m=256,n=256,k=256", "--name", "gemm256",
                       *[a for k, p in paths.items() for a in (f"--{k}", p)], cwd=out)
    return proc, paths


def test_simulate_exit_and_summary(gemm_run):
    proc, paths = gemm_run
    out = ok(proc)
    res = json.loads(paths["json"].read_text())
    assert out.startswith("design sa128 (")
    assert f"cycles {res['cycles']:,}" in out
    assert "gemm256" in out


def test_simulate_json_fields(gemm_run):
    _, paths = gemm_run
    res = json.loads(paths["json"].read_text())
    assert isinstance(res["cycles"], int) and res["cycles"] > 0
    assert res["seconds"] == pytest.approx(res["cycles"] / 1e9, rel=1e-12)
    assert res["design"] == "sa128"
    assert res["workload"] == "gemm256"
    assert res["mapper"] == "greedy"
    assert res["archsim_version"] == archsim.__version__
    assert set(res["units"]) == {"sa", "vu", "link"}     # link: sa128's interconnect
    for u in ("sa", "vu"):
        assert {"busy_cycles", "utilization"} <= set(res["units"][u])
    assert set(res["memory"]) == {"spm", "hbm"}
    for m in ("spm", "hbm"):
        assert {"read_bytes", "write_bytes"} <= set(res["memory"][m])
    assert isinstance(res["energy_pj"], float)


def test_simulate_json_figures(gemm_run):
    _, paths = gemm_run
    res = json.loads(paths["json"].read_text())
    macs = 256 ** 3
    ideal = macs // (128 * 128)                 # 1024 cycles at full utilization
    sa, vu = res["units"]["sa"], res["units"]["vu"]
    # one GEMM on the systolic array; the vector unit idles
    assert sa["busy_cycles"] == res["cycles"] >= ideal
    assert sa["utilization"] == pytest.approx(ideal / res["cycles"])
    assert vu["busy_cycles"] == 0 and vu["utilization"] == 0.0
    # FP16 operands: A and B (128 KiB each) come from HBM at least once; Z (128 KiB) goes back
    assert res["memory"]["hbm"]["read_bytes"] >= 2 * 256 * 256 * 2
    assert res["memory"]["hbm"]["write_bytes"] == 256 * 256 * 2
    # energy: every MAC costs the design's 17.16 pJ, plus memory traffic
    assert sa["energy_pj"] == pytest.approx(macs * 17.16)
    assert res["energy_pj"] > macs * 17.16
    assert res["energy_pj"] == pytest.approx(sum(res["energy_breakdown_pj"].values()))


def test_simulate_csv(gemm_run):
    _, paths = gemm_run
    res = json.loads(paths["json"].read_text())
    rows = list(csv.DictReader(paths["csv"].open(newline="")))
    assert len(rows) == 1
    header = paths["csv"].read_text().splitlines()[0].split(",")
    assert header[:4] == ["einsum", "unit", "start_cycle", "end_cycle"]
    (row,) = rows
    assert (row["einsum"], row["unit"]) == ("Z", "sa")
    assert int(row["start_cycle"]) == 0 and int(row["end_cycle"]) == res["cycles"]
    assert row["text"] == GEMM


def test_simulate_csv_has_one_row_per_einsum(tmp_path, run_archsim):
    out = tmp_path / "att.csv"
    ok(run_archsim("simulate", "--design", "sa128", "--cascade", "attention", "--quiet",
                   "--csv", out))
    rows = list(csv.DictReader(out.open(newline="")))
    assert [r["einsum"] for r in rows] == ["QK", "GM", "SN", "SD", "A", "AV"]


def test_simulate_trace(gemm_run):
    _, paths = gemm_run
    res = json.loads(paths["json"].read_text())
    trace = json.loads(paths["trace"].read_text())
    tasks = [e for e in trace["traceEvents"] if e.get("ph") == "X" and e.get("name") == "Z"]
    assert len(tasks) == 1
    assert tasks[0]["ts"] == 0
    assert tasks[0]["dur"] == pytest.approx(res["cycles"] / 1e9 * 1e6)   # microseconds


def test_simulate_plot_png(gemm_run):
    _, paths = gemm_run
    data = paths["plot"].read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 1000


def test_simulate_quiet_prints_nothing(tmp_path, run_archsim):
    proc = run_archsim("simulate", "--design", "sa128", "--einsum", GEMM, "--ranks",
                       "m=64,n=64,k=64", "--quiet", cwd=tmp_path)
    assert ok(proc) == ""


def test_simulate_builtin_cascade_and_ranks_override(tmp_path, run_archsim):
    full, half = tmp_path / "full.json", tmp_path / "half.json"
    ok(run_archsim("simulate", "--design", "sa128", "--cascade", "attention", "--quiet",
                   "--json", full))
    ok(run_archsim("simulate", "--design", "sa128", "--cascade", "attention", "--quiet",
                   "--ranks", "m=512", "--json", half))
    a, b = json.loads(full.read_text()), json.loads(half.read_text())
    assert a["workload"] == b["workload"] == "attention"
    assert a["units"]["sa"]["tasks"] == 2 and a["units"]["vu"]["tasks"] == 4
    assert b["cycles"] < a["cycles"]
    # half the keys: QK and AV do half the MACs
    assert b["energy_pj"] < a["energy_pj"]


def test_simulate_set_override_changes_result(tmp_path, run_archsim):
    base, small = tmp_path / "base.json", tmp_path / "small.json"
    args = ("simulate", "--design", "sa128", "--einsum", GEMM, "--ranks", "m=256,n=256,k=256",
            "--quiet")
    ok(run_archsim(*args, "--json", base))
    ok(run_archsim(*args, "--set", "units.sa.rows=64", "--set", "units.sa.cols=64",
                   "--json", small))
    a, b = json.loads(base.read_text()), json.loads(small.read_text())
    assert b["overrides"] == ["units.sa.rows=64", "units.sa.cols=64"]
    assert b["design_hash"] != a["design_hash"]
    # a quarter of the array: at least four times the ideal cycles of the full one
    assert b["cycles"] >= 256 ** 3 // (64 * 64) > a["cycles"]


# --------------------------------------------------------------------------- map
def test_map_prints_table_and_cost_and_mapping_reproduces(tmp_path, run_archsim):
    mapping = tmp_path / "mapping.json"
    out = ok(run_archsim("map", "--design", "sa128", "--cascade", "attention", "--out", mapping))
    assert re.search(r"^\s*0\s+sa\s+QK\[m,p\]", out, re.M), out
    assert re.search(r"^\s*1\s+vu\s+GM\[p\]", out, re.M), out
    m = re.search(r"^cost: ([\d,]+) cycles", out, re.M)
    assert m, out
    cost = int(m.group(1).replace(",", ""))

    saved = json.loads(mapping.read_text())
    assert saved["binding"] == {"QK": "sa", "GM": "vu", "SN": "vu", "SD": "vu", "A": "vu",
                                "AV": "sa"}
    res = tmp_path / "r.json"
    ok(run_archsim("simulate", "--design", "sa128", "--cascade", "attention", "--quiet",
                   "--mapping", mapping, "--json", res))
    assert cycles_of(res) == cost

    # the mapping file is honoured, not re-searched: move QK to the vector unit
    saved["binding"]["QK"] = "vu"
    saved["tiling"].pop("QK", None)
    moved = tmp_path / "moved.json"
    moved.write_text(json.dumps(saved))
    res2 = tmp_path / "r2.json"
    ok(run_archsim("simulate", "--design", "sa128", "--cascade", "attention", "--quiet",
                   "--mapping", moved, "--json", res2))
    r2 = json.loads(res2.read_text())
    assert r2["units"]["vu"]["tasks"] == 5 and r2["units"]["sa"]["tasks"] == 1
    assert r2["cycles"] > cost


# --------------------------------------------------------------------------- designs, cascades
def test_designs_lists_npu(run_archsim):
    out = ok(run_archsim("designs"))
    assert re.search(r"^sa128\s+One 128x128", out, re.M), out
    for name in ("npu", "npu_pim_blocked", "neupims", "a100"):
        assert re.search(rf"^{name}\s", out, re.M), out
    assert ok(run_archsim("designs", "list")) == out


def test_designs_show_with_set(run_archsim):
    out = ok(run_archsim("designs", "show", "sa128", "--set", "units.sa.rows=64"))
    lines = out.splitlines()
    assert lines[0].startswith("# sa128 (hash ")
    assert "    rows: 64" in lines
    assert "    rows: 128" not in lines
    assert "    cols: 128" in lines


def test_cascades_lists_builtins(run_archsim):
    out = ok(run_archsim("cascades"))
    names = [line.split()[0] for line in out.splitlines() if line.strip()]
    assert {"attention", "attention_1pass", "attention_deferred", "gemm", "mlp"} <= set(names)
    assert re.search(r"^attention\s+6 einsums, ranks m=1024,p=1024,e=64,f=64$", out, re.M)


def test_cascades_show_prints_a_table(run_archsim):
    out = ok(run_archsim("cascades", "show", "attention"))
    lines = out.splitlines()
    assert lines[0] == "cascade attention: ranks m=1024, p=1024, e=64, f=64"
    assert lines[1].split()[:2] == ["einsum", "points"]
    rows = {line.split()[0]: line.split() for line in lines[2:]}
    assert list(rows)[:6] == ["QK", "GM", "SN", "SD", "A", "AV"]
    assert rows["QK"][1] == str(1024 * 1024 * 64)          # points of QK = M*P*E
    assert "total" in rows


def test_version(run_archsim):
    proc = run_archsim("--version")
    assert ok(proc).strip() == f"archsim {archsim.__version__}"
    assert re.fullmatch(r"archsim \d+\.\d+\.\d+\S*", proc.stdout.strip())


def test_no_command_prints_help_and_exits_2(run_archsim):
    proc = run_archsim()
    assert proc.returncode == 2
    assert "usage: archsim" in proc.stdout


# --------------------------------------------------------------------------- validate
def test_validate_scalesim_passes(tmp_path, run_archsim):
    out_json = tmp_path / "v.json"
    out = ok(run_archsim("validate", "scalesim", "--csv", SCALESIM_CSV, "--json", out_json))
    assert "PASS" in out
    rows = json.loads(out_json.read_text())
    n_ref = len(list(csv.DictReader(SCALESIM_CSV.open(newline=""))))
    assert isinstance(rows, list) and len(rows) == n_ref > 0
    keys = {"M", "N", "K", "rows", "cols", "dataflow", "ours_compute_cycles",
            "ref_compute_cycles", "error_pct"}
    for r in rows:
        assert keys <= set(r)
        assert abs(r["error_pct"]) <= 1.0, r
        assert r["error_pct"] == pytest.approx(
            100 * (r["ours_compute_cycles"] - r["ref_compute_cycles"]) / r["ref_compute_cycles"])
    assert f"PASS: all {n_ref} rows within 1.0%" in out


def test_validate_scalesim_fails_on_an_off_row(tmp_path, run_archsim):
    with SCALESIM_CSV.open(newline="") as f:
        reader = csv.DictReader(f)
        fields, rows = reader.fieldnames, list(reader)
    target = next(i for i, r in enumerate(rows) if (r["M"], r["N"], r["K"], r["rows"],
                                                    r["dataflow"]) == ("512", "512", "512", "128", "os"))
    true_cycles = int(rows[target]["compute_cycles"])
    rows[target]["compute_cycles"] = str(round(true_cycles * 1.05))
    bad = tmp_path / "off.csv"
    with bad.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)

    proc = run_archsim("validate", "scalesim", "--csv", bad)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    flagged = [line for line in proc.stdout.splitlines() if "over tolerance" in line]
    assert len(flagged) == 1, proc.stdout
    fields_of_row = flagged[0].split()
    assert fields_of_row[:5] == ["512", "512", "512", "128x128", "os"]
    assert str(round(true_cycles * 1.05)) in fields_of_row
    assert f"FAIL: 1 of {len(rows)} rows off by more than 1.0%" in proc.stderr
    assert "PASS" not in proc.stdout

    out = ok(run_archsim("validate", "scalesim", "--csv", bad, "--tolerance", "10"))
    assert f"PASS: all {len(rows)} rows within 10.0%" in out


# --------------------------------------------------------------------------- regress
def test_regress_repo_goldens(run_archsim, repo_root):
    golden = sorted((repo_root / "tests" / "golden").glob("*.json"))
    assert golden
    out = ok(run_archsim("regress", cwd=repo_root))
    for f in golden:
        assert f"{f.stem}: ok" in out
    assert f"{len(golden)} golden cases, 0 changed" in out


def test_regress_update_check_and_diff(tmp_path, run_archsim):
    case = {"description": "small GEMM", "design": "sa128", "set": [],
            "workload": {"einsum": [GEMM], "ranks": {"m": 128, "n": 128, "k": 128}},
            "mapper": "greedy"}
    (tmp_path / "gemm.json").write_text(json.dumps(case))

    out = ok(run_archsim("regress", "--golden", tmp_path, "--update", cwd=tmp_path))
    assert "gemm: updated" in out and "(new case)" in out
    recorded = json.loads((tmp_path / "gemm.json").read_text())
    assert recorded["expected"]["cycles"] > 0
    assert recorded["description"] == "small GEMM"

    out = ok(run_archsim("regress", "--golden", tmp_path, cwd=tmp_path))
    assert "gemm: ok" in out and "1 golden cases, 0 changed" in out

    old = recorded["expected"]["cycles"]
    recorded["expected"]["cycles"] = old + 100
    (tmp_path / "gemm.json").write_text(json.dumps(recorded))
    proc = run_archsim("regress", "--golden", tmp_path, cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "gemm: changed" in proc.stdout
    assert f"cycles: {old + 100:,} -> {old:,}" in proc.stdout
    assert "1 of 1 golden cases differ" in proc.stdout


# --------------------------------------------------------------------------- user errors
USER_ERRORS = {
    "unknown design": (
        ["simulate", "--design", "no_such_design", "--cascade", "attention"],
        ["unknown design 'no_such_design'", "sa128"]),
    "bad --set value": (
        ["simulate", "--design", "sa128", "--set", "units.sa.rows=abc", "--cascade", "attention"],
        ["--set units.sa.rows=abc", "units.sa.rows", "'abc'"]),
    "malformed --set": (
        ["simulate", "--design", "sa128", "--set", "units.sa.rows", "--cascade", "attention"],
        ["--set 'units.sa.rows'", "path.to.key=value"]),
    "--set unknown unit": (
        ["simulate", "--design", "sa128", "--set", "units.xx.rows=8", "--cascade", "attention"],
        ["no key 'xx' under units", "sa, vu"]),
    "einsum rank without a size": (
        ["simulate", "--design", "sa128", "--einsum", GEMM, "--ranks", "m=4,n=4"],
        ["unknown rank 'k'", "m, n"]),
    "--ranks names a rank no einsum uses": (
        ["simulate", "--design", "sa128", "--einsum", GEMM, "--ranks", "m=4,n=4,k=4,q=3"],
        ["--ranks", "unknown rank 'q'", "m, n, k"]),
    "--ranks not a number": (
        ["simulate", "--design", "sa128", "--einsum", GEMM, "--ranks", "m=4,n=4,k=x"],
        ["--ranks", "'k'", "'x'"]),
    "einsum syntax error": (
        ["simulate", "--design", "sa128", "--einsum", "Z[m,n] = A[m,k] *", "--ranks", "m=4,n=4,k=4"],
        ["einsums[0]", "Z[m,n] = A[m,k] *"]),
    "missing --ranks": (
        ["simulate", "--design", "sa128", "--einsum", GEMM],
        ["--einsum needs --ranks"]),
    "no workload": (
        ["simulate", "--design", "sa128"],
        ["no workload", "--cascade"]),
    "missing cascade file": (
        ["simulate", "--design", "sa128", "--cascade", "/nonexistent/cascade.yaml"],
        ["/nonexistent/cascade.yaml", "no such file"]),
    "unknown built-in cascade": (
        ["simulate", "--design", "sa128", "--cascade", "no_such_cascade"],
        ["unknown cascade 'no_such_cascade'", "attention"]),
    "--ranks override unknown for cascade": (
        ["simulate", "--design", "sa128", "--cascade", "attention", "--ranks", "zz=4"],
        ["unknown rank 'zz'"]),
    "unknown mapper": (
        ["simulate", "--design", "sa128", "--cascade", "attention", "--mapper", "no_such_mapper"],
        ["unknown mapper 'no_such_mapper'", "greedy"]),
    "map with unknown mapper": (
        ["map", "--design", "sa128", "--cascade", "attention", "--mapper", "no_such_mapper"],
        ["unknown mapper 'no_such_mapper'"]),
    "impossible mapping": (
        ["simulate", "--design", "sa128", "--set", "memories.spm.capacity_bytes=64",
         "--einsum", GEMM, "--ranks", "m=256,n=256,k=256"],
        ["'Z'", "spm", "64"]),
    "missing mapping file": (
        ["simulate", "--design", "sa128", "--cascade", "attention", "--mapping",
         "/nonexistent/m.json"],
        ["/nonexistent/m.json", "not found"]),
    "unwritable --json": (
        ["simulate", "--design", "sa128", "--einsum", GEMM, "--ranks", "m=4,n=4,k=4",
         "--json", "/nonexistent/dir/x.json"],
        ["--json /nonexistent/dir/x.json", "/nonexistent/dir", "does not exist"]),
    "unsupported --plot format": (
        ["simulate", "--design", "sa128", "--einsum", GEMM, "--ranks", "m=4,n=4,k=4",
         "--plot", "fig.xyz"],
        ["--plot fig.xyz", "'.xyz'", ".png"]),
    "unwritable map --out": (
        ["map", "--design", "sa128", "--cascade", "attention", "--out", "/nonexistent/dir/m.json"],
        ["--out /nonexistent/dir/m.json", "does not exist"]),
    "unknown option": (
        ["simulate", "--design", "sa128", "--cascade", "attention", "--no-such-option"],
        ["unrecognized arguments: --no-such-option"]),
    "missing --design": (
        ["simulate", "--cascade", "attention"],
        ["--design"]),
    "validate without --csv": (
        ["validate", "scalesim"],
        ["validate scalesim needs --csv"]),
    "validate missing CSV file": (
        ["validate", "scalesim", "--csv", "/nonexistent/x.csv"],
        ["/nonexistent/x.csv", "not found"]),
    "regress without golden dir": (
        ["regress", "--golden", "/nonexistent/golden"],
        ["/nonexistent/golden", "not found"]),
    "designs show without a name": (
        ["designs", "show"],
        ["designs show needs a design name"]),
}


@pytest.mark.parametrize("args,needles", list(USER_ERRORS.values()), ids=list(USER_ERRORS))
def test_user_error(tmp_path, run_archsim, args, needles):
    line = user_error(run_archsim(*args, cwd=tmp_path))
    for needle in needles:
        assert needle in line, line
    assert not list(tmp_path.iterdir()), "a failed run left files behind"


def test_user_error_csv_missing_columns(tmp_path, run_archsim):
    bad = tmp_path / "bad.csv"
    bad.write_text("M,N,K,rows\n64,64,64,32\n")
    line = user_error(run_archsim("validate", "scalesim", "--csv", bad, cwd=tmp_path))
    assert str(bad) in line
    assert "missing columns cols, dataflow, compute_cycles" in line


def test_user_error_csv_without_rows(tmp_path, run_archsim):
    empty = tmp_path / "empty.csv"
    empty.write_text("M,N,K,rows,cols,dataflow,compute_cycles\n")
    line = user_error(run_archsim("validate", "scalesim", "--csv", empty, cwd=tmp_path))
    assert str(empty) in line and "no data rows" in line


def test_user_error_design_file_names_file_and_line(tmp_path, run_archsim):
    design = tmp_path / "d.yaml"
    npu = (builtin_designs_dir() / "sa128.yaml").read_text()
    assert npu.count("dataflow: ws") == 1
    design.write_text(npu.replace("dataflow: ws", "dataflow: xs"))
    line_no = next(i for i, t in enumerate(design.read_text().splitlines(), 1) if "dataflow: xs" in t)
    line = user_error(run_archsim("simulate", "--design", design, "--cascade", "attention",
                                  cwd=tmp_path))
    assert f"{design}:{line_no}: units.sa.dataflow:" in line and "'xs'" in line


def test_debug_env_shows_traceback(tmp_path):
    # run_archsim drops ARCHSIM_DEBUG, so run the module directly with it set
    env = dict(os.environ, ARCHSIM_DEBUG="1", PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    proc = subprocess.run([sys.executable, "-m", "archsim.cli", "simulate", "--design", "nope",
                           "--cascade", "attention"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr and "DesignError" in proc.stderr
