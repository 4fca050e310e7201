"""Reinforcement-learning memory mapper: the memory-mapping game as a gymnasium environment
(after mallocGame, ../shared/reference/mappers.md), trained with stable-baselines3.

The game (:class:`MemoryGameEnv`). A :class:`~mappers.problem.MappingProblem` runs in program
order. Its *buffers* -- each tensor's whole live range, from creation (or first use) to last use
-- are presented one at a time, most off-chip bytes saved per byte-step of fast memory first
(then earlier, then larger, then by name). For
each, the action either places it in fast memory (the scratchpad) at an offset where it fits
over its whole live range, or leaves it in the slow tier (action :data:`SLOW`). Offsets are
chosen by bin: action ``k < BINS`` puts the buffer at the lowest free offset in
``[k, k + 1) x budget / BINS``. A placement is invalid -- masked out in :meth:`action_masks` --
when it overlaps a placed buffer, leaves the budget, or leaves too few bytes at some step for
that step's operator to stage the tensors that are not in fast memory. A tensor left slow is
staged for each operator that uses it: created and spilled by its producer, reloaded for each
consumer (inputs: loaded for each consumer).

Observation (``float32``, :data:`OBS_SIZE` values): the fast-memory occupancy over the current
buffer's live range (``TIME_BINS`` time bins x ``BINS`` address bins, fraction occupied), eight
features of the current buffer and of each of the next :data:`LOOKAHEAD` buffers (size,
length, start, uses, input, output, traffic it saves in fast memory, staging room, saving per
byte-step, whether it fits), the
free capacity (least and mean free fraction over the range, share of the budget placed,
progress), and per offset bin whether it is valid and how tightly its free gap fits.

Reward: placing a buffer in fast memory earns the off-chip bytes it saves (per step); when the
last buffer is decided, the schedule is completed (staging buffers placed best-fit around the
chosen offsets; a repack, then demotions, when a step's staging does not fit), scored by
:meth:`MappingProblem.evaluate`, and the final reward makes the episode's return
``(XLA-style baseline bytes - our bytes) / norm`` (non-compulsory bytes; ``norm`` is the
baseline's bytes, at least 1% of the graph's tensor bytes).

Episodes draw problems from a seeded distribution (:func:`problem_pool`): decoder blocks of
sampled sizes, ResNet-, DenseNet- and Inception-like CNNs of sampled widths, random DAGs, each at a
budget between M_R and the spill-free peak.

Policies: :func:`train` (MaskablePPO from sb3-contrib -- PPO with invalid-action masking; the
``rl`` extra) writes ``policy.zip`` and a NumPy export ``policy.npz`` that :func:`rl_mapping`
runs without torch; a small trained policy ships in ``mappers/policies/rl_default.npz``.
"""
from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from archsim.errors import MappingError, UserError
from mappers.offsets import best_fit
from mappers.problem import MappingProblem
from mappers.schedule import Buffer, MemorySchedule

BINS = 16
TIME_BINS = 16
LOOKAHEAD = 4
FEATURES = 10
SLOW = BINS
OBS_SIZE = TIME_BINS * BINS + FEATURES * (1 + LOOKAHEAD) + 4 + 2 * BINS
DEFAULT_POLICY = "rl_default.npz"


# --------------------------------------------------------------------------- game state
@dataclass
class _Buf:
    tensor: str
    start: int
    end: int
    size: int
    uses: int
    is_input: bool
    is_output: bool
    saved: int


class MemoryGame:
    """The game on one problem (no gymnasium): buffers, placements, masks, completion."""

    def __init__(self, p: MappingProblem):
        self.p = p
        self.budget = int(p.budget_bytes)
        full = p.spill_free_buffers(range(p.n))
        bufs = []
        for b in full:
            info = p.tensors[b.tensor]
            uses = len(info.consumers)
            if info.producer is None:
                saved = info.size * max(uses - 1, 0)
            elif info.is_output:
                saved = info.size * uses
            else:
                saved = info.size * (1 + uses) if uses else 0
            bufs.append(_Buf(b.tensor, b.start, b.end, info.size, uses, info.producer is None,
                             info.is_output, saved))
        # most off-chip bytes saved per byte-step of fast memory first (then earlier, larger)
        self.bufs = sorted(bufs, key=lambda b: (-_density(b), b.start, -b.size, b.tensor))
        self.k = 0
        self.placed: dict[str, tuple[int, int, int, int]] = {}   # tensor -> start, end, off, size
        self.slow: set[str] = set()
        # staging need per step: bytes of the operator's tensors not (yet) in fast memory
        self.stage = np.array([p.working_set_bytes(t) for t in range(p.n)], dtype=np.int64)
        self.persist = np.zeros(p.n, dtype=np.int64)
        self.op_uses = [set(p.ops[t].uses) for t in range(p.n)]

    @property
    def done(self) -> bool:
        """All buffers decided."""
        return self.k >= len(self.bufs)

    def current(self) -> _Buf | None:
        """The buffer to decide now."""
        return None if self.done else self.bufs[self.k]

    def _gaps(self, b: _Buf) -> list[tuple[int, int]]:
        busy = sorted((o, o + s) for (a, e, o, s) in self.placed.values()
                      if a <= b.end and b.start <= e)
        gaps, cur = [], 0
        for lo, hi in busy:
            if lo > cur:
                gaps.append((cur, lo))
            cur = max(cur, hi)
        if cur < self.budget:
            gaps.append((cur, self.budget))
        return gaps

    def _room_ok(self, b: _Buf) -> bool:
        steps = slice(b.start, b.end + 1)
        need = self.persist[steps] + b.size + self.stage[steps]
        uses_here = np.array([b.tensor in self.op_uses[t] for t in range(b.start, b.end + 1)])
        need = need - np.where(uses_here, b.size, 0)
        return bool(np.all(need <= self.budget))

    def offsets(self) -> list[int | None]:
        """Per bin: the offset the action would use, or None when it is invalid."""
        b = self.current()
        out: list[int | None] = [None] * BINS
        if b is None or b.size > self.budget or not self._room_ok(b):
            return out
        width = self.budget / BINS
        for lo, hi in self._gaps(b):
            if hi - lo < b.size:
                continue
            first = int(math.floor(lo / width))
            last = int(math.floor((hi - b.size) / width))
            for k in range(max(first, 0), min(last, BINS - 1) + 1):
                if out[k] is None:
                    out[k] = max(lo, int(math.ceil(k * width)))
        return out

    def mask(self) -> np.ndarray:
        """Valid actions (the slow tier always is)."""
        m = np.array([o is not None for o in self.offsets()] + [True], dtype=bool)
        return m

    def step(self, action: int) -> int:
        """Decide the current buffer; returns the bytes it saves (0 when left slow)."""
        b = self.current()
        if b is None:
            raise MappingError("the game is over")
        if action == SLOW:
            self.slow.add(b.tensor)
            self.k += 1
            return 0
        off = self.offsets()[action] if 0 <= action < BINS else None
        if off is None:
            raise MappingError(f"action {action} is not valid for buffer {b.tensor!r}")
        self.placed[b.tensor] = (b.start, b.end, off, b.size)
        self.persist[b.start:b.end + 1] += b.size
        for t in range(b.start, b.end + 1):
            if b.tensor in self.op_uses[t]:
                self.stage[t] -= b.size
        self.k += 1
        return b.saved

    def schedule(self) -> MemorySchedule:
        """The completed schedule: placed buffers, staging buffers for the rest (best-fit
        around the placed ones). When the chosen offsets leave a step's staging no room, all
        buffers are repacked best-fit (the keep/slow decisions stay); when that fails too, the
        lowest-saving placed buffer spanning the step is demoted and it starts again."""
        p = self.p
        placed = dict(self.placed)
        while True:
            fixed = [Buffer(t, a, e, o, p.tensors[t].producer is None or a != p.tensors[t].producer)
                     for t, (a, e, o, _) in placed.items()]
            staged = []
            for t in range(p.n):
                for a in p.ops[t].uses:
                    if a not in placed:
                        staged.append(Buffer(a, t, t, None,
                                             not (p.tensors[a].producer == t)))
            fail = _place_around(p, fixed, staged, self.budget)
            if fail is None:
                break
            # the chosen offsets fragment a step's staging: repack everything best-fit,
            # keeping every keep/slow decision
            repacked = fixed + staged
            if not best_fit(p, repacked, self.budget):
                fixed, staged = repacked[:len(fixed)], repacked[len(fixed):]
                break
            span = [t for t, (a, e, _, _) in placed.items() if a <= fail <= e]
            if not span:
                raise MappingError(f"rl: the tensors of {p.ops[fail].name!r} do not fit")
            saved = {b.tensor: b.saved for b in self.bufs}
            del placed[min(span, key=lambda t: (saved[t], t))]
        for b in fixed:
            info = p.tensors[b.tensor]
            b.loaded = not (info.producer is not None and b.start == info.producer)
        buffers = fixed + staged
        spilled = {b.tensor for b in buffers if b.loaded and p.tensors[b.tensor].producer
                   is not None and not p.tensors[b.tensor].is_output}
        return MemorySchedule(p.names(range(p.n)), buffers, spilled, mapper="rl")


def _density(b: _Buf) -> float:
    """Off-chip bytes a buffer saves in fast memory per byte-step it occupies."""
    return b.saved / (b.size * (b.end - b.start + 1)) if b.size else 0.0


def _place_around(p: MappingProblem, fixed: Sequence[Buffer], new: Sequence[Buffer],
                  budget: int) -> int | None:
    """Best-fit offsets for ``new`` single-step buffers around ``fixed`` ones; returns the
    step where one did not fit (None when all fit)."""
    by_step: dict[int, list[Buffer]] = {}
    for b in new:
        by_step.setdefault(b.start, []).append(b)
    for step, bufs in sorted(by_step.items()):
        busy = [(c.offset, c.offset + p.tensors[c.tensor].size) for c in fixed
                if c.start <= step <= c.end]
        for b in sorted(bufs, key=lambda b: -p.tensors[b.tensor].size):
            size = p.tensors[b.tensor].size
            best, cur = None, 0
            for lo, hi in sorted(busy) + [(budget, budget)]:
                gap = lo - cur
                if gap >= size and (best is None or gap < best[1]):
                    best = (cur, gap)
                cur = max(cur, hi)
            if best is None:
                return step
            b.offset = best[0]
            busy.append((b.offset, b.offset + size))
    return None


# --------------------------------------------------------------------------- observations
def _features(g: MemoryGame, b: _Buf | None, norm: float) -> list[float]:
    if b is None:
        return [0.0] * FEATURES
    n = max(g.p.n, 1)
    steps = slice(b.start, b.end + 1)
    room = (g.budget - g.persist[steps] - g.stage[steps]).min() / g.budget
    length = b.end - b.start + 1
    density = _density(b)
    return [b.size / g.budget, length / n, b.start / n, min(b.uses, 8) / 8,
            float(b.is_input), float(b.is_output), min(b.saved / norm, 4.0) / 4, float(room),
            min(density, 4.0) / 4, float(b.size <= room * g.budget)]


def observe(g: MemoryGame, norm: float) -> np.ndarray:
    """The observation vector (see module docstring)."""
    obs = np.zeros(OBS_SIZE, dtype=np.float32)
    b = g.current()
    if b is not None:
        grid = np.zeros((TIME_BINS, BINS), dtype=np.float32)
        length = b.end - b.start + 1
        width = g.budget / BINS
        for (a, e, o, s) in g.placed.values():
            if a > b.end or e < b.start:
                continue
            t0 = int((max(a, b.start) - b.start) * TIME_BINS / length)
            t1 = int(math.ceil((min(e, b.end) - b.start + 1) * TIME_BINS / length))
            lo, hi = o / width, (o + s) / width
            for k in range(int(lo), min(int(math.ceil(hi)), BINS)):
                cover = min(hi, k + 1) - max(lo, k)
                grid[t0:max(t1, t0 + 1), k] += cover
        obs[:TIME_BINS * BINS] = np.clip(grid, 0, 1).ravel()
    pos = TIME_BINS * BINS
    for j in range(1 + LOOKAHEAD):
        nb = g.bufs[g.k + j] if g.k + j < len(g.bufs) else None
        obs[pos:pos + FEATURES] = _features(g, nb, norm)
        pos += FEATURES
    if b is not None:
        steps = slice(b.start, b.end + 1)
        free = (g.budget - g.persist[steps]) / g.budget
        obs[pos:pos + 2] = [free.min(), free.mean()]
    obs[pos + 2] = float(g.persist.max(initial=0)) / g.budget
    obs[pos + 3] = g.k / max(len(g.bufs), 1)
    pos += 4
    if b is not None:                    # per bin: valid, and how tightly its gap fits
        offs = g.offsets()
        gaps = g._gaps(b)
        for k, off in enumerate(offs):
            if off is None:
                continue
            gap = next(hi - lo for lo, hi in gaps if lo <= off < hi)
            obs[pos + k] = 1.0
            obs[pos + BINS + k] = 1.0 - (gap - b.size) / g.budget
    return obs


# --------------------------------------------------------------------------- problems
def problem_pool(count: int = 48, seed: int = 0, design: str = "npu", *,
                 kinds: Sequence[str] = ("decoder", "cnn", "random")) -> list[MappingProblem]:
    """``count`` problems drawn (seeded) from decoder blocks of sampled sizes, small CNNs and
    random DAGs, each with a budget between M_R and the spill-free program-order peak."""
    from archsim.spec import load_design
    from mappers import graphs

    d = load_design(design, ["memories.spm.capacity_bytes=4294967296"])
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < count:
        kind = kinds[int(rng.integers(len(kinds)))]
        s = int(rng.integers(1 << 30))
        if kind == "decoder":
            h = int(rng.choice([64, 96, 128, 192]))
            cas = graphs.decoder_block(h, int(rng.choice([16, 32, 64])),
                                       heads=int(rng.choice([2, 4])), name=f"dec{h}-{s}")
        elif kind == "cnn":
            which = int(rng.integers(3))
            ch = int(rng.choice([8, 12, 16]))
            hw = int(rng.choice([8, 12, 16]))
            if which == 0:
                cas = graphs.resnet_like(int(rng.integers(2, 4)), ch, hw, seed=s)
            elif which == 1:
                cas = graphs.densenet_like(int(rng.integers(2, 4)), ch // 2, ch // 2, hw, seed=s)
            else:
                cas = graphs.inception_like(1, ch, hw, seed=s)
        else:
            cas = graphs.random_dag(int(rng.integers(20, 61)), s)
        p = MappingProblem(cas, d, window=0)
        mr, peak = p.min_budget_bytes(), p.peak_bytes(range(p.n))
        if peak <= mr:
            continue
        p.set_budget(int(mr + rng.uniform(0.0, 0.6) * (peak - mr)))
        out.append(p)
    return out


def baseline_bytes(p: MappingProblem) -> int:
    """Non-compulsory bytes of the XLA-style baseline (the reward's reference)."""
    from mappers.greedy import xla_schedule

    key = ("_xla_bytes", p.budget_bytes)
    cache = p.__dict__.setdefault("_rl_cache", {})
    if key not in cache:
        cache[key] = p.evaluate(xla_schedule(p)).non_compulsory_bytes
    return cache[key]


def _norm(p: MappingProblem) -> float:
    total = sum(i.size for i in p.tensors.values())
    return float(max(baseline_bytes(p), 0.01 * total, 1.0))


# --------------------------------------------------------------------------- gymnasium env
def make_env(problems: Sequence[MappingProblem] | None = None, seed: int = 0):
    """A :class:`MemoryGameEnv` over ``problems`` (default: :func:`problem_pool`)."""
    return MemoryGameEnv(problems if problems is not None else problem_pool(seed=seed))


class MemoryGameEnv(gym.Env):
    """The memory-mapping game (see module docstring). Each episode is one problem of
    ``problems``, drawn with the environment's seeded generator (or ``options={"problem":
    i}``)."""

    metadata = {"render_modes": []}

    def __init__(self, problems: Sequence[MappingProblem]):
        if not problems:
            raise UserError("the RL environment needs at least one problem")
        self.problems = list(problems)
        self.observation_space = spaces.Box(0.0, 1.0, (OBS_SIZE,), dtype=np.float32)
        self.action_space = spaces.Discrete(BINS + 1)
        self.game: MemoryGame | None = None
        self.norm = 1.0
        self.shaped = 0.0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        idx = (options or {}).get("problem")
        if idx is None:
            idx = int(self.np_random.integers(len(self.problems)))
        p = self.problems[idx]
        self.game = MemoryGame(p)
        self.norm = _norm(p)
        self.shaped = 0.0
        return observe(self.game, self.norm), {"problem": idx}

    def action_masks(self) -> np.ndarray:
        """Valid actions for the current buffer."""
        return self.game.mask()

    def step(self, action):
        g = self.game
        action = int(action)
        if not g.mask()[action]:
            action = SLOW                           # an invalid placement leaves it slow
        reward = g.step(action) / self.norm
        self.shaped += reward
        info = {}
        if g.done:
            cost = g.p.evaluate(g.schedule()).non_compulsory_bytes
            reward += (baseline_bytes(g.p) - cost) / self.norm - self.shaped
            info = {"non_compulsory_bytes": cost, "baseline_bytes": baseline_bytes(g.p)}
        return observe(g, self.norm), float(reward), g.done, False, info


# --------------------------------------------------------------------------- NumPy policy
@dataclass
class NumpyPolicy:
    """A MaskablePPO actor exported to NumPy: tanh MLP layers, then action logits."""

    weights: list[tuple[np.ndarray, np.ndarray]]
    meta: dict[str, Any]

    @classmethod
    def load(cls, path: str | Path) -> "NumpyPolicy":
        """Read a policy ``.npz`` (from :func:`train`) or a MaskablePPO ``.zip``."""
        path = Path(path)
        if path.suffix == ".zip":
            return cls.from_sb3(path)
        if not path.is_file():
            raise UserError(f"--policy {path}: no such file")
        with np.load(path, allow_pickle=False) as z:
            n = int(z["layers"])
            weights = [(z[f"W{i}"], z[f"b{i}"]) for i in range(n)]
            meta = json.loads(str(z["meta"]))
        if meta.get("obs_size") != OBS_SIZE or meta.get("actions") != BINS + 1:
            raise UserError(f"{path}: policy was trained for {meta.get('obs_size')} inputs and "
                            f"{meta.get('actions')} actions; this archsim uses {OBS_SIZE} and "
                            f"{BINS + 1}")
        return cls(weights, meta)

    @classmethod
    def from_sb3(cls, path: str | Path) -> "NumpyPolicy":
        """Export the actor of a saved MaskablePPO model."""
        try:
            from sb3_contrib import MaskablePPO
        except ImportError:
            raise UserError("loading a .zip policy needs the rl extra (pip install "
                            "'archsim[rl]'); a .npz policy does not") from None
        model = MaskablePPO.load(str(path), device="cpu")
        pol = model.policy
        layers = [m for m in pol.mlp_extractor.policy_net if hasattr(m, "weight")]
        weights = [(m.weight.detach().numpy().T.copy(), m.bias.detach().numpy().copy())
                   for m in layers]
        weights.append((pol.action_net.weight.detach().numpy().T.copy(),
                        pol.action_net.bias.detach().numpy().copy()))
        return cls(weights, {"obs_size": OBS_SIZE, "actions": BINS + 1, "source": str(path)})

    def save(self, path: str | Path) -> None:
        """Write as ``.npz``."""
        arrays = {"layers": np.array(len(self.weights)),
                  "meta": np.array(json.dumps(self.meta))}
        for i, (w, b) in enumerate(self.weights):
            arrays[f"W{i}"], arrays[f"b{i}"] = w, b
        np.savez(path, **arrays)

    def logits(self, obs: np.ndarray) -> np.ndarray:
        """Action logits for one observation."""
        h = obs.astype(np.float64)
        for w, b in self.weights[:-1]:
            h = np.tanh(h @ w + b)
        w, b = self.weights[-1]
        return h @ w + b


class TightFit:
    """The hand-written policy the RL mapper starts from (behaviour cloning): the valid
    offset bin whose free gap fits the buffer most tightly, else the slow tier."""

    meta = {"source": "tight-fit heuristic"}

    def logits(self, obs: np.ndarray) -> np.ndarray:
        """Scores: gap tightness for valid bins, -1 for invalid ones, -0.5 for slow."""
        valid, tight = obs[-2 * BINS:-BINS], obs[-BINS:]
        return np.concatenate([np.where(valid > 0, tight, -1.0), [-0.5]])


def default_policy_path() -> Path:
    """The policy shipped with archsim."""
    return Path(str(resources.files("mappers") / "policies" / DEFAULT_POLICY))


def rollout(p: MappingProblem, policy: NumpyPolicy, *, samples: int = 1,
            seed: int = 0) -> MemorySchedule:
    """Map ``p`` with ``policy``: a deterministic (argmax over valid actions) rollout, and with
    ``samples`` > 1 also ``samples - 1`` seeded sampled rollouts; the schedule with the fewest
    non-compulsory bytes wins."""
    norm = _norm(p)
    rng = np.random.default_rng(seed)
    best = None
    for k in range(max(samples, 1)):
        g = MemoryGame(p)
        while not g.done:
            z = policy.logits(observe(g, norm))
            m = g.mask()
            z = np.where(m, z, -np.inf)
            if k == 0:
                a = int(np.argmax(z))
            else:
                e = np.exp(z - z[m].max())
                a = int(rng.choice(len(z), p=e / e.sum()))
            g.step(a)
        s = g.schedule()
        cost = p.evaluate(s).non_compulsory_bytes
        if best is None or cost < best[0]:
            best = (cost, s)
    s = best[1]
    s.solver = {"status": "heuristic", "limit": None, "objective": best[0], "bound": None,
                "gap": None, "solver": "rl", "policy": policy.meta.get("source", "shipped"),
                "samples": samples, "estimate": {"non_compulsory_bytes": best[0]}}
    return s


def random_rollout(p: MappingProblem, seed: int = 0) -> MemorySchedule:
    """A uniformly random valid placement of every buffer (the floor a policy must beat)."""
    rng = np.random.default_rng(seed)
    g = MemoryGame(p)
    while not g.done:
        valid = np.flatnonzero(g.mask())
        g.step(int(rng.choice(valid)))
    return g.schedule()


def rl_mapping(cascade, design, *, policy: str | None = None, samples: int = 8,
               seed: int = 0, budget=None, **_):
    """The RL mapper for ``archsim map --mapper rl``: a Mapping with a memory plan."""
    p = MappingProblem(cascade, design, budget_bytes=budget, window=0)
    pol = NumpyPolicy.load(policy or default_policy_path())
    sched = rollout(p, pol, samples=samples, seed=seed)
    mapping = p.to_mapping(sched)
    mapping.info["solver"] = dict(sched.solver)
    return mapping


# --------------------------------------------------------------------------- training
def train(*, steps: int = 500_000, seed: int = 0, problems: int = 128,
          kinds: Sequence[str] = ("decoder", "cnn", "random"),
          out: str | Path = "policy.zip", log: str | Path | None = None,
          progress: bool = True, n_steps: int = 1024,
          clone_episodes: int = 256, learning_rate: float = 3e-4,
          ent_coef: float = 0.01) -> dict[str, Any]:
    """Train a MaskablePPO policy (two tanh layers of 64) on ``problems`` problems from
    :func:`problem_pool` (seed ``seed``) for ``steps`` environment steps on the CPU; writes
    ``out`` (the sb3 model) and ``out`` with ``.npz`` (the NumPy export), and a CSV learning
    curve (episode, step, bytes, baseline bytes, ratio) to ``log``. The actor first imitates
    :class:`TightFit` on ``clone_episodes`` episodes (behaviour cloning: cross-entropy over
    the valid actions), then PPO improves on it. Same seed, same policy."""
    try:
        import torch
        from sb3_contrib import MaskablePPO
        from stable_baselines3.common.callbacks import BaseCallback
    except ImportError:
        raise UserError("training needs the rl extra: pip install torch==2.13.0 (CPU) then "
                        "pip install 'archsim[rl]'") from None
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    out = Path(out)
    log = Path(log) if log else out.with_suffix(".csv")
    env = make_env(problem_pool(problems, seed=seed, kinds=kinds), seed=seed)
    env.reset(seed=seed)
    rows: list[dict] = []

    class _Log(BaseCallback):
        def __init__(self):
            super().__init__()
            self.bar = None
            if progress:
                from tqdm import tqdm

                self.bar = tqdm(total=steps, unit="step", desc="rl train")

        def _on_step(self) -> bool:
            if self.bar is not None:
                self.bar.update(1)
            for info, done in zip(self.locals["infos"], self.locals["dones"]):
                if done and "non_compulsory_bytes" in info:
                    rows.append({"episode": len(rows), "step": self.num_timesteps,
                                 "non_compulsory_bytes": info["non_compulsory_bytes"],
                                 "baseline_bytes": info["baseline_bytes"]})
            return True

        def _on_training_end(self) -> None:
            if self.bar is not None:
                self.bar.close()

    t0 = time.perf_counter()
    model = MaskablePPO("MlpPolicy", env, seed=seed, n_steps=n_steps, batch_size=256,
                        gamma=1.0, gae_lambda=0.95, learning_rate=learning_rate,
                        ent_coef=ent_coef,
                        policy_kwargs={"net_arch": dict(pi=[64, 64], vf=[64, 64])},
                        device="cpu", verbose=0)
    if clone_episodes:
        _clone(model, env, clone_episodes, seed)
    model.learn(total_timesteps=steps, callback=_Log())
    seconds = time.perf_counter() - t0
    model.save(str(out))
    npz = out.with_suffix(".npz")
    pol = NumpyPolicy.from_sb3(out)
    # no wall-clock figure in the policy file: the same seed gives the same bytes
    pol.meta.update({"seed": seed, "steps": steps, "problems": problems,
                     "source": npz.name})
    pol.save(npz)
    with open(log, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["episode", "step", "non_compulsory_bytes",
                                          "baseline_bytes", "ratio"])
        w.writeheader()
        for r in rows:
            base = max(r["baseline_bytes"], 1)
            w.writerow({"episode": r["episode"], "step": r["step"],
                        "non_compulsory_bytes": r["non_compulsory_bytes"],
                        "baseline_bytes": r["baseline_bytes"],
                        "ratio": round(r["non_compulsory_bytes"] / base, 6)})
    return {"policy": str(out), "numpy_policy": str(npz), "log": str(log),
            "steps": steps, "seconds": seconds, "episodes": len(rows)}


def _clone(model, env, episodes: int, seed: int, epochs: int = 20) -> None:
    """Behaviour cloning of :class:`TightFit` into the PPO actor."""
    import torch

    teacher = TightFit()
    obs_l, act_l, mask_l = [], [], []
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed * 100_003 + ep)
        done = False
        while not done:
            m = env.action_masks()
            z = np.where(m, teacher.logits(obs), -np.inf)
            a = int(np.argmax(z))
            obs_l.append(obs)
            act_l.append(a)
            mask_l.append(m)
            obs, _, done, _, _ = env.step(a)
    pol = model.policy
    x = torch.as_tensor(np.array(obs_l), dtype=torch.float32)
    y = torch.as_tensor(np.array(act_l), dtype=torch.int64)
    mask = torch.as_tensor(np.array(mask_l), dtype=torch.bool)
    params = list(pol.mlp_extractor.policy_net.parameters()) + \
        list(pol.action_net.parameters())
    opt = torch.optim.Adam(params, lr=1e-3)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(len(y), generator=gen)
        for i in range(0, len(y), 256):
            idx = perm[i:i + 256]
            z = pol.action_net(pol.mlp_extractor.policy_net(x[idx]))
            z = z.masked_fill(~mask[idx], -1e9)
            loss = torch.nn.functional.cross_entropy(z, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()


def evaluate_policy(problems: Sequence[MappingProblem], policy: NumpyPolicy | None = None, *,
                    samples: int = 1, ilp: bool = False, ilp_limits=None,
                    seed: int = 0, timings: bool = False) -> list[dict[str, Any]]:
    """Per problem: non-compulsory bytes of the policy, the XLA-style and Belady baselines,
    random placement, and (with ``ilp``, within ``ilp_limits``) the ILP. With ``timings``
    each also gets its wall time (``<mapper>_seconds``; for benchmarks: the other figures
    are reproducible, these are not)."""
    from mappers.greedy import belady_schedule, xla_schedule
    from mappers.ilp import memory_schedule

    policy = policy or NumpyPolicy.load(default_policy_path())
    rows = []
    for i, p in enumerate(problems):
        row: dict[str, Any] = {"graph": p.cascade.name, "operators": p.n,
                               "budget_bytes": int(p.budget_bytes)}
        for label, fn, kw in (("rl", rollout, {"policy": policy, "samples": samples,
                                               "seed": seed}),
                              ("xla", xla_schedule, {}),
                              ("belady", belady_schedule, {}),
                              ("random", random_rollout, {"seed": seed + i})):
            t0 = time.perf_counter()
            s = fn(p, **kw)
            if timings:
                row[f"{label}_seconds"] = time.perf_counter() - t0
            row[label] = p.evaluate(s).non_compulsory_bytes
        if ilp or ilp_limits is not None:
            t0 = time.perf_counter()
            q = MappingProblem(p.cascade, p.design, budget_bytes=p.budget_bytes)
            s = memory_schedule(q, limits=ilp_limits)
            if timings:
                row["ilp_seconds"] = time.perf_counter() - t0
            row["ilp"] = q.evaluate(s).non_compulsory_bytes
            row["ilp_status"] = s.solver["status"]
        rows.append(row)
    return rows


def summarize(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Share of graphs where RL beats the XLA-style baseline, the share of the average
    greedy-ILP gap it closes, and (for rows with timings) its slowest mapping time."""
    beats = sum(r["rl"] < r["xla"] for r in rows) / max(len(rows), 1)
    out = {"beats_xla_fraction": beats,
           "beats_random_fraction": sum(r["rl"] < r["random"] for r in rows) / max(len(rows), 1)}
    if rows and "rl_seconds" in rows[0]:
        out["max_rl_seconds"] = max(r["rl_seconds"] for r in rows)
    if rows and "ilp" in rows[0]:
        gap = sum(r["xla"] - r["ilp"] for r in rows)
        closed = sum(r["xla"] - r["rl"] for r in rows)
        out["gap_closed_fraction"] = closed / gap if gap > 0 else float("nan")
    return out
