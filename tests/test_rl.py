"""The RL memory mapper: the gymnasium environment, a short training run, determinism, the
shipped policy and the CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest

from archsim import load_design, simulate
from archsim.cli import main
from archsim.errors import MappingError, UserError
from mappers import get_mapper, graphs, rl
from mappers.problem import MappingProblem


@pytest.fixture(scope="module")
def pool():
    return rl.problem_pool(12, seed=3)


@pytest.fixture(scope="module")
def held_out():
    return rl.problem_pool(16, seed=777)


def test_env_passes_check_env(pool):
    from gymnasium.utils.env_checker import check_env

    env = rl.make_env(pool)
    check_env(env, skip_render_check=True)
    obs, info = env.reset(seed=5)
    assert obs.shape == (rl.OBS_SIZE,) and env.action_space.n == rl.BINS + 1
    m = env.action_masks()
    assert m.dtype == bool and m[rl.SLOW]


def test_game_masks_and_return(pool):
    """Masked actions never overlap placed buffers or starve a step's staging, and the
    episode's return is (baseline - ours) / norm."""
    env = rl.make_env(pool)
    rng = np.random.default_rng(0)
    for ep in range(6):
        env.reset(seed=ep)
        total, done = 0.0, False
        while not done:
            valid = np.flatnonzero(env.action_masks())
            _, r, done, _, info = env.step(int(rng.choice(valid)))
            total += r
        g = env.game
        sched = g.schedule()
        cost = g.p.evaluate(sched, need_offsets=True)        # valid, with offsets
        assert info["non_compulsory_bytes"] == cost.non_compulsory_bytes
        assert total == pytest.approx((info["baseline_bytes"] - cost.non_compulsory_bytes)
                                      / env.norm)


def test_invalid_action_is_refused(pool):
    g = rl.MemoryGame(pool[0])
    offsets = g.offsets()
    bad = [k for k, o in enumerate(offsets) if o is None]
    if bad:
        with pytest.raises(MappingError, match="not valid"):
            g.step(bad[0])


@pytest.mark.slow
def test_short_training_beats_random_and_is_deterministic(tmp_path, held_out):
    """A few thousand steps already beat uniformly random placement on held-out graphs; the
    same seed gives the same policy and the same mappings."""
    a = rl.train(steps=4096, seed=11, problems=16, out=tmp_path / "a.zip", progress=False,
                 n_steps=512)
    b = rl.train(steps=4096, seed=11, problems=16, out=tmp_path / "b.zip", progress=False,
                 n_steps=512)
    pa, pb = rl.NumpyPolicy.load(a["numpy_policy"]), rl.NumpyPolicy.load(b["numpy_policy"])
    for (wa, ba), (wb, bb) in zip(pa.weights, pb.weights):
        np.testing.assert_array_equal(wa, wb)
        np.testing.assert_array_equal(ba, bb)
    rows = rl.evaluate_policy(held_out, pa)
    assert sum(r["rl"] for r in rows) < sum(r["random"] for r in rows)
    assert sum(r["rl"] < r["random"] for r in rows) > len(rows) / 2
    again = rl.evaluate_policy(held_out, pb)
    assert [r["rl"] for r in rows] == [r["rl"] for r in again]
    log = (tmp_path / "a.csv").read_text().splitlines()
    assert log[0] == "episode,step,non_compulsory_bytes,baseline_bytes,ratio" and len(log) > 10


def test_shipped_policy_maps_builtin_designs():
    pol = rl.NumpyPolicy.load(rl.default_policy_path())
    assert pol.meta["obs_size"] == rl.OBS_SIZE
    for design, cas in (("npu", graphs.decoder_block(128, 32)),
                        ("sa128", graphs.resnet_like(2))):
        d = load_design(design)
        m = get_mapper("rl")(cas, d, budget="MR")
        r = simulate(d, cas, m)
        assert r.memory[m.memory["backing"]].read_bytes > 0
        assert m.info["solver"]["solver"] == "rl"
        assert "seconds" not in m.info["solver"]          # no wall-clock time in results


def test_best_of_k_is_no_worse(held_out):
    pol = rl.NumpyPolicy.load(rl.default_policy_path())
    for p in held_out[:4]:
        one = p.evaluate(rl.rollout(p, pol)).non_compulsory_bytes
        four = p.evaluate(rl.rollout(p, pol, samples=4, seed=1)).non_compulsory_bytes
        assert four <= one


def test_policy_file_errors(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        rl.NumpyPolicy.load(tmp_path / "missing.npz")
    pol = rl.NumpyPolicy.load(rl.default_policy_path())
    pol.meta["obs_size"] = 3
    pol.save(tmp_path / "old.npz")
    with pytest.raises(UserError, match="trained for 3 inputs"):
        rl.NumpyPolicy.load(tmp_path / "old.npz")


def test_cli_map_rl_and_eval(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["map", "--design", "npu", "--cascade", "mlp", "--ranks", "m=256",
                 "--mapper", "rl", "--budget", "MR", "--samples", "2",
                 "--json", str(out)]) == 0
    d = json.loads(out.read_text())
    assert d["non_compulsory_bytes"] >= 0 and d["solver"]["status"] == "heuristic"
    assert main(["rl", "eval", "--problems", "decoder:3", "--seed", "5",
                 "--json", str(tmp_path / "e.json"), "--quiet"]) == 0
    rows = json.loads((tmp_path / "e.json").read_text())["rows"]
    assert len(rows) == 3 and {"rl", "xla", "belady", "random"} <= set(rows[0])
    capsys.readouterr()


@pytest.mark.parametrize("argv, message", [
    (["map", "--design", "npu", "--cascade", "mlp", "--policy", "x.npz"], "apply to --mapper rl"),
    (["map", "--design", "npu", "--cascade", "mlp", "--mapper", "rl", "--window", "3"],
     "the RL mapper keeps program order"),
    (["rl", "eval", "--problems", "cats:3"], "expected KINDS[:COUNT]"),
    (["rl", "train", "--steps", "0"], "--steps must be positive"),
])
def test_cli_rl_errors(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_problem_pool_is_seeded():
    a = rl.problem_pool(4, seed=9)
    b = rl.problem_pool(4, seed=9)
    assert [p.cascade.name for p in a] == [p.cascade.name for p in b]
    assert [p.budget_bytes for p in a] == [p.budget_bytes for p in b]
    assert all(p.min_budget_bytes() <= p.budget_bytes for p in a)
    assert isinstance(a[0], MappingProblem)
