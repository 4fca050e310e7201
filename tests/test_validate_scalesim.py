"""SCALE-Sim v3 reference rows through the full evaluator (not just the closed form)."""
import pytest

from archsim.validation import scalesim as validate
from testpaths import SCALESIM_CSV as REF_CSV
from testpaths import SHARED_SCALESIM_CSV


def test_vendored_copy_matches_the_shared_reference():
    if not SHARED_SCALESIM_CSV.is_file():
        pytest.skip(f"{SHARED_SCALESIM_CSV} is not next to this clone; the vendored copy is used")
    assert REF_CSV.read_bytes() == SHARED_SCALESIM_CSV.read_bytes()


def test_every_row_within_one_percent_and_in_fact_exact():
    rows = validate.scalesim_rows(REF_CSV)
    assert len(rows) == 24
    assert {r["dataflow"] for r in rows} == {"os", "ws", "is"}
    for r in rows:
        assert abs(r["error_pct"]) <= 1.0, r
        assert r["ours_compute_cycles"] == r["ref_compute_cycles"], r
        assert r["ours_sram_ifmap_reads"] == r["ref_sram_ifmap_reads"], r
        assert r["ours_sram_filter_reads"] == r["ref_sram_filter_reads"], r


def test_table_flags_rows_over_tolerance(tmp_path):
    bad = tmp_path / "bad.csv"
    lines = REF_CSV.read_text().splitlines()
    head, first = lines[0], lines[1].split(",")
    cols = head.split(",")
    first[cols.index("compute_cycles")] = str(int(first[cols.index("compute_cycles")]) * 2)
    bad.write_text(head + "\n" + ",".join(first) + "\n")
    rows = validate.scalesim_rows(bad)
    assert rows[0]["error_pct"] == pytest.approx(-50.0, abs=0.2)
    assert "over tolerance" in validate.format_scalesim(rows, 1.0)
