"""The validation Figure contract: every figure is a check (tolerance and/or range) or is
reported with a reason; reported figures never count as passing; the CLI's tables and JSON
say which is which."""
from __future__ import annotations

import json

import pytest

from archsim.cli import main
from archsim.validation.neupims import Figure, format_figures, tally, write_json


def test_a_figure_is_a_check_or_reported_with_a_reason():
    with pytest.raises(ValueError, match="neither a tolerance nor bounds"):
        Figure("x", "d", 1.0, 1.0, None)
    with pytest.raises(ValueError, match="cannot also be reported"):
        Figure("x", "d", 1.0, 1.0, 5.0, reported="why")
    with pytest.raises(ValueError, match="needs the paper's value"):
        Figure("x", "d", None, 1.0, 5.0)
    with pytest.raises(ValueError, match="without a low or a high end"):
        Figure("x", "d", None, 1.0, None, bounds=(None, None))


def test_statuses_and_tally():
    figs = [Figure("tol ok", "d", 2.0, 2.1, 10.0),
            Figure("tol off", "d", 2.0, 3.0, 10.0),
            Figure("range ok", "d", None, 0.5, None, bounds=(None, 1.0)),
            Figure("range off", "d", None, 1.5, None, bounds=(None, 1.0)),
            Figure("both, range off", "d", 2.0, 2.1, 10.0, bounds=(2.5, None)),
            Figure("shown", "d", 2.0, 9.0, None, reported="stated only approximately")]
    assert [f.status for f in figs] == ["pass", "fail", "pass", "fail", "fail", "reported"]
    assert [f.ok for f in figs] == [True, False, True, False, False, None]
    assert tally(figs) == {"pass": 2, "fail": 3, "reported": 1}
    text = format_figures(figs, "footer")
    assert "checks: 2 pass, 3 fail; 1 reported (shown, not checked)" in text
    assert "reported, not checked: stated only approximately" in text
    assert "required range: - .. 1" in text


def test_json_carries_kind_and_status(tmp_path):
    figs = [Figure("a", "d", 2.0, 2.1, 10.0), Figure("b", "d", 2.0, 9.0, None, reported="r")]
    write_json(figs, tmp_path / "f.json")
    rows = json.loads((tmp_path / "f.json").read_text())
    assert [(r["kind"], r["status"], r["ok"]) for r in rows] == \
        [("check", "pass", True), ("reported", "reported", None)]


@pytest.mark.parametrize("target", ["fusemax", "sn40l"])
def test_every_shipped_figure_is_a_check_or_says_why_not(target, tmp_path):
    """The validation commands build only figures that obey the contract (construction
    would raise otherwise); their JSON names a status for each, and the exit code counts
    only failed checks."""
    out = tmp_path / "v.json"
    rc = main(["validate", target, "--json", str(out)])
    rows = json.loads(out.read_text())
    assert rows and all(r["status"] in ("pass", "fail", "reported") for r in rows)
    assert all(r["reported"] for r in rows if r["status"] == "reported")
    assert rc == (1 if any(r["status"] == "fail" for r in rows) else 0)
