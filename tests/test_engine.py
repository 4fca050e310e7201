"""Event-driven engine: sequencing, dependencies, bandwidth sharing."""
import pytest

from archsim.engine import EngineTask, _fill_rates, run
from archsim.errors import MappingError
from archsim.units.base import Phase

BW = {"hbm": 10.0, "spm": 100.0}


def t(name, unit, compute=0.0, nbytes=None, deps=()):
    return EngineTask(name, unit, [Phase("p", compute, nbytes or {})], tuple(deps))


def test_compute_only_and_memory_only():
    out = run([t("a", "u", compute=50)], BW)
    assert out["a"].end == pytest.approx(50)
    out = run([t("a", "u", nbytes={"hbm": 100})], BW)
    assert out["a"].end == pytest.approx(10)
    out = run([t("a", "u", compute=5, nbytes={"hbm": 100})], BW)  # memory-bound
    assert out["a"].end == pytest.approx(10)


def test_unit_runs_tasks_in_order():
    out = run([t("a", "u", 10), t("b", "u", 5), t("c", "v", 3)], BW)
    assert (out["a"].start, out["a"].end) == (0, 10)
    assert out["b"].start == pytest.approx(10) and out["b"].end == pytest.approx(15)
    assert out["c"].start == 0


def test_dependencies_across_units():
    out = run([t("a", "u", 10), t("b", "v", 5, deps=["a"])], BW)
    assert out["b"].start == pytest.approx(10)


def test_equal_tasks_share_bandwidth_equally():
    out = run([t("a", "u", nbytes={"hbm": 100}), t("b", "v", nbytes={"hbm": 100})], BW)
    assert out["a"].end == pytest.approx(20) and out["b"].end == pytest.approx(20)


def test_compute_bound_task_leaves_bandwidth_to_others():
    # a needs 100 B over 100 cycles (1 B/cycle); b is pure transfer and gets the other 9 B/cycle
    rates = _fill_rates([("a", Phase("p", 100, {"hbm": 100})), ("b", Phase("p", 0, {"hbm": 90}))], BW)
    assert rates["a"] == pytest.approx(1 / 100)
    assert rates["b"] * 90 == pytest.approx(9.0)


def test_levels_never_oversubscribed():
    phases = [(i, Phase("p", c, {"hbm": h, "spm": s}))
              for i, (c, h, s) in enumerate([(0, 50, 10), (10, 5, 500), (3, 80, 80), (0, 1, 900)])]
    rates = _fill_rates(phases, BW)
    for lvl in BW:
        used = sum(rates[i] * ph.bytes.get(lvl, 0) for i, ph in phases)
        assert used <= BW[lvl] * (1 + 1e-9)
    # somebody saturates something (work conserving)
    assert any(abs(sum(rates[i] * ph.bytes.get(l, 0) for i, ph in phases) - BW[l]) < 1e-6
               for l in BW) or all(rates[i] == pytest.approx(1 / ph.compute_cycles)
                                   for i, ph in phases if ph.compute_cycles)


def test_phases_run_in_sequence():
    task = EngineTask("a", "u", [Phase("load", 0, {"hbm": 50}), Phase("run", 20, {}),
                                 Phase("store", 0, {"hbm": 10})])
    out = run([task], BW)
    assert out["a"].end == pytest.approx(5 + 20 + 1)
    assert [p[0] for p in out["a"].phase_spans] == ["load", "run", "store"]


def test_zero_work_task_finishes_immediately():
    out = run([t("a", "u"), t("b", "u", 4, deps=["a"])], BW)
    assert out["a"].end == 0 and out["b"].end == pytest.approx(4)


def test_deadlocked_order_is_reported():
    # b (first on u) waits for c, which is queued behind a on v, which waits for b... impossible
    tasks = [t("b", "u", 1, deps=["c"]), t("a", "v", 1, deps=["b"]), t("c", "v", 1)]
    with pytest.raises(MappingError, match="cannot run"):
        run(tasks, BW)


def test_unknown_dependency_or_level():
    with pytest.raises(MappingError, match="unknown task"):
        run([t("a", "u", 1, deps=["zz"])], BW)
    with pytest.raises(MappingError, match="unknown memory level"):
        run([t("a", "u", 1, nbytes={"ddr": 4})], BW)
