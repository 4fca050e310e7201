"""Packaging: a wheel built from the checkout ships the code, the built-in designs and cascades,
and the ``archsim`` console script, and works without the checkout on the path.

The wheel is built from a copy of the checkout (so the build does not write ``build/`` into the
working tree), unzipped, and imported in a subprocess whose ``PYTHONPATH`` is only the unzipped
tree (the runtime dependencies come from the test environment's site-packages).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import archsim
from archsim.spec import load_design

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]


def _pip_wheel(src: Path, dest: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps",
                           "--disable-pip-version-check", "-q", "-w", str(dest), *extra],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("pkg")
    src = tmp / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(
        ".git", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".hypothesis",
        ".venv", "tests", "notebooks", "out", ".ci"))
    dest = tmp / "wheelhouse"
    proc = _pip_wheel(src, dest)
    if proc.returncode != 0:   # e.g. no network for the isolated build environment
        proc = _pip_wheel(src, dest, "--no-build-isolation")
    assert proc.returncode == 0, f"pip wheel failed:\n{proc.stdout}\n{proc.stderr}"
    wheels = list(dest.glob("archsim-*.whl"))
    assert len(wheels) == 1, list(dest.iterdir())
    return wheels[0]


@pytest.fixture(scope="module")
def unzipped(wheel, tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(wheel) as z:
        z.extractall(d)
    return d


def test_wheel_name_and_version(wheel):
    assert wheel.name.startswith(f"archsim-{archsim.__version__}-")
    assert wheel.name.endswith("-py3-none-any.whl")


def test_wheel_contents(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in ("archsim/__init__.py", "archsim/cli/__init__.py", "archsim/spec.py",
                     "archsim/units/__init__.py", "archsim/designs/__init__.py",
                     "archsim/designs/sa128.yaml",
                     "dataflow/__init__.py", "dataflow/cascades/__init__.py",
                     "dataflow/cascades/attention.yaml",
                     "mappers/__init__.py"):
        assert required in names, required
    # every design and cascade file of the checkout is shipped
    for y in (REPO / "designs").glob("*.yaml"):
        assert f"archsim/designs/{y.name}" in names
    for y in (REPO / "dataflow" / "cascades").glob("*.yaml"):
        assert f"dataflow/cascades/{y.name}" in names
    assert not any(n.startswith(("tests/", "designs/", "benchmarks/")) for n in names)


def test_wheel_console_script(wheel):
    z = zipfile.ZipFile(wheel)
    (ep,) = [n for n in z.namelist() if n.endswith(".dist-info/entry_points.txt")]
    text = z.read(ep).decode()
    section = text.split("[console_scripts]", 1)[1].split("\n[", 1)[0]
    entries = {k.strip(): v.strip() for k, _, v in
               (line.partition("=") for line in section.splitlines() if "=" in line)}
    assert entries == {"archsim": "archsim.cli:main"}


def test_wheel_metadata(wheel):
    z = zipfile.ZipFile(wheel)
    (meta,) = [n for n in z.namelist() if n.endswith(".dist-info/METADATA")]
    text = z.read(meta).decode()
    assert "Name: archsim" in text
    assert f"Version: {archsim.__version__}" in text
    requires = {line.split(":", 1)[1].strip().split(">")[0].split(";")[0].strip().lower()
                for line in text.splitlines() if line.startswith("Requires-Dist:")}
    assert {"numpy", "networkx", "pyyaml", "pydantic", "matplotlib", "tqdm"} <= requires


def _run_isolated(code: str, site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ARCHSIM_DEBUG")}
    env["PYTHONPATH"] = str(site)
    env["MPLBACKEND"] = "Agg"
    cmd = [sys.executable, "-c", code] if code else [sys.executable, *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


PROBE = """
import json, archsim, dataflow, mappers
from archsim.spec import builtin_designs, builtin_designs_dir
d = archsim.load_design("sa128")
c = dataflow.load_cascade("attention")
r = archsim.simulate(d, dataflow.Cascade.from_text(["Z[m,n] = A[m,k] * B[k,n]"],
                                                   {"m": 64, "n": 64, "k": 64}))
print(json.dumps({
    "archsim": archsim.__file__, "dataflow": dataflow.__file__, "mappers": mappers.__file__,
    "designs_dir": str(builtin_designs_dir()), "designs": builtin_designs(),
    "design": d.name, "hash": d.hash, "source": d.source,
    "cascade": c.name, "einsums": [e.output_tensor for e in c.einsums],
    "cycles": r.cycles,
}))
"""


def test_unzipped_wheel_works_without_the_checkout(unzipped, tmp_path):
    proc = _run_isolated(PROBE, unzipped, tmp_path)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    root = unzipped.resolve()
    for mod in ("archsim", "dataflow", "mappers"):
        assert Path(info[mod]).resolve().is_relative_to(root), (mod, info[mod])
    assert Path(info["designs_dir"]).resolve().is_relative_to(root)
    assert Path(info["source"]).resolve() == root / "archsim" / "designs" / "sa128.yaml"
    assert "sa128" in info["designs"]
    assert info["design"] == "sa128"
    assert info["hash"] == load_design("sa128").hash      # the same file as the checkout's
    assert info["cascade"] == "attention"
    assert info["einsums"] == ["QK", "GM", "SN", "SD", "A", "AV"]
    assert info["cycles"] > 0


def test_unzipped_wheel_cli(unzipped, tmp_path):
    proc = _run_isolated("", unzipped, tmp_path, "-m", "archsim.cli", "designs")
    assert proc.returncode == 0, proc.stderr
    listed = {line.split()[0] for line in proc.stdout.splitlines() if line.strip()}
    assert {"sa128", "npu", "neupims", "npu_pim_blocked", "a100"} <= listed
    proc = _run_isolated("", unzipped, tmp_path, "-m", "archsim.cli", "cascades", "show",
                         "attention")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("cascade attention: ranks m=1024")
