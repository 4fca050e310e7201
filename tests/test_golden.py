"""Golden cycle-count regression: tests/golden/*.json must reproduce exactly.

If a change moves these numbers on purpose, run `archsim regress --update`, read the diff it
prints, and say why in the commit message.
"""
import json
import shutil
from pathlib import Path

import pytest

from archsim.validation import regress

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(GOLDEN.glob("*.json"))


def test_golden_cases_exist_for_every_builtin_design():
    from archsim.spec import builtin_designs

    designs = {json.loads(p.read_text())["design"] for p in CASES}
    assert set(builtin_designs()) <= designs


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_golden_case_reproduces(path):
    case = json.loads(path.read_text())
    assert "expected" in case, f"{path.name}: run `archsim regress --update` to record it"
    result = regress.run_case(case, str(path))
    new = regress.figures(result)
    assert regress.diff(case["expected"], new) == []
    assert result.identity["family"] == regress.case_family(case)
    assert case.get("model_version") == regress.result_model_version(result), \
        f"{path.name}: recorded by another model version; run `archsim regress --update`"


def test_serve_and_coe_have_golden_cases():
    kinds = {k for p in CASES for k in json.loads(p.read_text())["workload"]}
    assert {"serve", "coe"} <= kinds


def test_regress_reports_a_changed_figure(tmp_path, monkeypatch):
    """A changed figure shows as a diff; --update refuses it while the family's model
    version is the recorded one, and records it once the version is bumped."""
    from archsim.core import identity

    src = GOLDEN / "sa128_mlp.json"
    dst = tmp_path / src.name
    shutil.copy(src, dst)
    case = json.loads(dst.read_text())
    case["expected"]["cycles"] += 10
    dst.write_text(json.dumps(case))
    out = regress.check(tmp_path)
    assert out["sa128_mlp"] == [f"cycles: {case['expected']['cycles']:,} -> "
                              f"{case['expected']['cycles'] - 10:,} "
                              f"({-1000 / case['expected']['cycles']:+.3f}%)"]
    assert regress.main(tmp_path) == 1
    assert regress.main(tmp_path, update=True) == 1            # refused: no version bump
    assert json.loads(dst.read_text()) == case                 # nothing written
    monkeypatch.setitem(identity.MODEL_VERSIONS, "graph", identity.MODEL_VERSIONS["graph"] + 1)
    assert regress.main(tmp_path, update=True) == 0
    assert regress.check(tmp_path)["sa128_mlp"] == []
    assert json.loads(dst.read_text())["model_version"] == identity.model_version("graph")
