"""Composition of Experts (Samba-CoE) on an RDU node against a DGX baseline.

A CoE serves many expert models (by default 150 Llama-2-7B experts, [sn40l] sn40l.md
"Results") behind a router. For every batch of requests:

1. **route**: the router model reads each prompt (a prefill of the batch) and picks an expert
   per request (seeded uniform routing over the experts; ``routing="batch"``: one expert for
   the whole batch);
2. **switch**: every expert the batch needs that is not in the HBM expert cache is copied in
   (RDU: DDR -> HBM at ``rdu.ddr_to_hbm_bytes_per_s`` per socket; DGX: host -> GPU at the
   node's host link), evicting the least recently used experts;
3. **run**: the expert's requests are prefilled together and then decode ``output_tokens``
   tokens, on the whole node with tensor parallelism.

Experts live in DDR (RDU) or host memory (DGX); the router, the KV cache and the expert cache
live in HBM. The expert cache holds what fits in the node's HBM beside the router and the KV
cache (or ``cache_experts``). The DGX baseline runs out of memory when the experts and the
router do not fit in its host memory. Run times come from the same models as everywhere else:
:mod:`archsim.families.rdu` for the RDU, the xPU roofline serving model
(:class:`archsim.experiments.serving.coprocessing.CoProcessingModel`) of the ``h100``/``a100`` designs for
the GPUs. Results are the mean over ``batches`` batches after a warm-up that fills the caches
(steady state).
"""
from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from archsim.errors import UserError


ROUTINGS = ("request", "batch")


@dataclass(frozen=True)
class DgxBaseline:
    """A GPU node: ``gpus`` x design ``design`` (with ``overrides``), host memory and the
    host -> GPU bandwidth of the whole node."""

    name: str
    design: str
    overrides: tuple[str, ...]
    gpus: int
    host_to_gpu_bytes_per_s: float
    host_memory_bytes: float
    source: str


#: DGX baselines. Host -> GPU bandwidth: [sn40l] "model switching ... (DGX host->GPU 64 / 32
#: GB/s)"; host memory: NVIDIA DGX H100 / DGX A100 datasheets (2 TB of DDR in 32 DIMMs for
#: the DGX H100 and the 640 GB DGX A100, 1 TB for the 320 GB DGX A100).
BASELINES: dict[str, DgxBaseline] = {
    "dgx-h100": DgxBaseline("dgx-h100", "h100", (), 8, 64e9, 2 * 2**40,
                            "8x H100 80 GB; host->GPU 64 GB/s [sn40l]; 2 TB host memory"),
    "dgx-a100": DgxBaseline("dgx-a100", "a100", (), 8, 32e9, 2 * 2**40,
                            "8x A100 80 GB; host->GPU 32 GB/s [sn40l]; 2 TB host memory"),
    "dgx-a100-40": DgxBaseline(
        "dgx-a100-40", "a100",
        ("memories.hbm.capacity_bytes=40000000000",
         "memories.hbm.bandwidth_bytes_per_s=1.555e+12"),   # A100 40 GB SXM4: 1555 GB/s
        8, 32e9, 2**40, "8x A100 40 GB; host->GPU 32 GB/s [sn40l]; 1 TB host memory"),
}


@dataclass
class CoeResult:
    """CoE serving on an RDU node and on a DGX baseline (seconds per batch, steady state)."""

    config: dict
    seconds: float
    baseline_seconds: float | None
    switch_seconds: float
    baseline_switch_seconds: float
    hit_rate: float
    baseline_hit_rate: float
    cache_experts: int
    baseline_cache_experts: int
    baseline_oom: bool
    oom: bool
    breakdown: dict
    baseline_breakdown: dict
    identity: dict = field(default_factory=dict)

    @property
    def speedup(self) -> float | None:
        """DGX seconds / RDU seconds per batch (None when the DGX runs out of memory)."""
        if self.baseline_seconds is None or self.oom:
            return None
        return self.baseline_seconds / self.seconds

    @property
    def switch_speedup(self) -> float:
        """How much faster one expert switch (copy into HBM) is on the RDU node."""
        return self.baseline_switch_seconds / self.switch_seconds

    def to_dict(self) -> dict:
        """JSON-ready result (``seconds``, ``baseline_seconds``, ``speedup``,
        ``switch_seconds``, ``baseline_switch_seconds``, ``baseline_oom`` ...)."""
        return {**self.config, "seconds": self.seconds,
                "baseline_seconds": self.baseline_seconds, "speedup": self.speedup,
                "switch_seconds": self.switch_seconds,
                "baseline_switch_seconds": self.baseline_switch_seconds,
                "switch_speedup": self.switch_speedup, "hit_rate": self.hit_rate,
                "baseline_hit_rate": self.baseline_hit_rate,
                "cache_experts": self.cache_experts,
                "baseline_cache_experts": self.baseline_cache_experts,
                "baseline_oom": self.baseline_oom, "oom": self.oom,
                "breakdown": self.breakdown, "baseline_breakdown": self.baseline_breakdown,
                "identity": dict(self.identity)}

    def summary(self) -> str:
        """Human-readable summary."""
        c = self.config
        lines = [f"CoE: {c['experts']} x {c['expert']} experts + router {c['router']}, batch "
                 f"{c['batch']}, {c['prompt_tokens']} prompt + {c['output_tokens']} output "
                 f"tokens; {c['design']} x{c['sockets']} vs {c['baseline']}"]
        b = self.breakdown
        lines.append(f"{c['design']}: {self.seconds * 1e3:.2f} ms per batch (route "
                     f"{b['route_s'] * 1e3:.2f}, switch {b['switch_s'] * 1e3:.2f}, run "
                     f"{b['run_s'] * 1e3:.2f} ms); cache {self.cache_experts} experts, hit "
                     f"rate {self.hit_rate:.0%}" + ("; OUT OF MEMORY" if self.oom else ""))
        if self.baseline_oom:
            lines.append(f"{c['baseline']}: out of memory ({c['experts']} experts + router "
                         f"exceed {BASELINES[c['baseline']].host_memory_bytes / 2**40:.0f} TiB "
                         f"of host memory)")
        else:
            bb = self.baseline_breakdown
            lines.append(f"{c['baseline']}: {self.baseline_seconds * 1e3:.2f} ms per batch "
                         f"(route {bb['route_s'] * 1e3:.2f}, switch {bb['switch_s'] * 1e3:.2f}"
                         f", run {bb['run_s'] * 1e3:.2f} ms); cache "
                         f"{self.baseline_cache_experts} experts, hit rate "
                         f"{self.baseline_hit_rate:.0%}")
            lines.append(f"speedup {self.speedup:.2f}x")
        lines.append(f"one model switch: {self.switch_seconds * 1e3:.2f} ms vs "
                     f"{self.baseline_switch_seconds * 1e3:.2f} ms ({self.switch_speedup:.1f}x "
                     f"faster)")
        return "\n".join(lines)


def expert_bytes(model: str, dtype: str = "bf16") -> float:
    """Bytes of one expert's weights."""
    from dataflow import DTYPES, load_model

    return float(load_model(model).params() * DTYPES[dtype] // 8)


def kv_bytes_per_token(model: str, dtype: str = "bf16") -> float:
    """KV-cache bytes per token of ``model`` (all layers)."""
    from dataflow import DTYPES, load_model

    cfg = load_model(model)
    return 2.0 * cfg.layers * cfg.kv_heads * cfg.head_dim * DTYPES[dtype] / 8


def lru_misses(requests: np.ndarray, capacity: int) -> tuple[list[int], list[list[int]]]:
    """Replay batches of expert ids (``requests``: batches x batch) through an LRU cache of
    ``capacity`` experts. Returns (misses per batch, distinct experts per batch in order)."""
    cache: OrderedDict[int, None] = OrderedDict()
    misses, distinct = [], []
    for batch in requests:
        order = list(dict.fromkeys(int(e) for e in batch))
        hits = [e for e in order if e in cache]
        for e in hits:                       # the batch's cached experts are used first
            cache.move_to_end(e)
        miss = len(order) - len(hits)
        for e in order:
            if e not in cache:
                cache[e] = None
                while len(cache) > max(capacity, len(order)):
                    cache.popitem(last=False)
        while len(cache) > capacity:         # the batch done, the cache keeps what fits
            cache.popitem(last=False)
        misses.append(miss)
        distinct.append(order)
    return misses, distinct


@lru_cache(maxsize=256)
def _rdu_run_s(design: str, model: str, phase: str, batch: int, seq: int, sockets: int,
               dtype: str, overrides: tuple[str, ...]) -> float:
    from archsim.dispatch import simulate
    from archsim.spec import load_design

    d = load_design(design, overrides)
    return simulate(d, model, phase=phase, batch=batch, seq=seq, sockets=sockets,
                    dtype=dtype).seconds


def _xpu_design(design: str, overrides: tuple[str, ...]):
    """The GPU design with a serving policy that runs everything on its roofline unit."""
    from archsim.spec import design_from_data, load_design

    d = load_design(design, overrides)
    if d.serving is not None:
        return d
    gpu = [n for n, u in d.units.items() if u.kind == "gpu_roofline"]
    if len(gpu) != 1:
        raise UserError(f"baseline design {design!r} needs one gpu_roofline unit")
    data = dict(d.resolved)
    data["serving"] = {"xpu": gpu[0]}
    return design_from_data(data, d.source)


@lru_cache(maxsize=256)
def _gpu_run_s(design: str, overrides: tuple[str, ...], model: str, phase: str, batch: int,
               seq: int, gpus: int) -> float:
    from archsim.experiments.serving.coprocessing import CoProcessingModel

    m = CoProcessingModel(_xpu_design(design, overrides), model, tp=gpus)
    if phase == "prefill":
        return m.step([seq] * batch, [seq] * batch, []).seconds
    return m.step([], [], [seq] * batch).seconds


def simulate_coe(design: str = "sn40l", *, experts: int = 150, batch: int = 8,
                 output_tokens: int = 20, prompt_tokens: int = 128,
                 baseline: str = "dgx-h100", expert: str = "llama2-7b",
                 router: str = "llama2-7b", sockets: int = 8,
                 cache_experts: int | None = None, baseline_cache_experts: int | None = None,
                 batches: int = 64, seed: int = 0, dtype: str = "bf16",
                 routing: str = "request", overrides: tuple[str, ...] = ()) -> CoeResult:
    """Serve ``batches`` batches of ``batch`` requests on a CoE of ``experts`` experts, on
    ``sockets`` sockets of RDU ``design`` and on the DGX ``baseline`` (see module docstring).
    ``routing``: ``request`` (every request picks its expert uniformly at random) or ``batch``
    (the router sends a whole batch to one expert, drawn uniformly). Times in seconds per
    batch."""
    from archsim.core.identity import identity, model_version
    from archsim.spec import load_design

    for name, v in (("experts", experts), ("batch", batch), ("output_tokens", output_tokens),
                    ("prompt_tokens", prompt_tokens), ("sockets", sockets),
                    ("batches", batches)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise UserError(f"--{name.replace('_', '-')} must be a positive integer, found {v!r}")
    if routing not in ROUTINGS:
        raise UserError(f"unknown routing {routing!r}; expected one of {', '.join(ROUTINGS)}")
    if baseline not in BASELINES:
        raise UserError(f"unknown baseline {baseline!r}; expected one of "
                        f"{', '.join(BASELINES)}")
    base = BASELINES[baseline]
    d = load_design(design, overrides)
    if d.rdu is None or d.rdu.ddr is None:
        raise UserError(f"design {design!r} is not an RDU with a DDR tier (e.g. sn40l)")
    e_bytes = expert_bytes(expert, dtype)
    r_bytes = expert_bytes(router, dtype)
    ctx = prompt_tokens + output_tokens
    kv = kv_bytes_per_token(expert, dtype) * batch * ctx + \
        kv_bytes_per_token(router, dtype) * batch * prompt_tokens
    # capacities
    ddr_total = sockets * d.memories[d.rdu.ddr].capacity_bytes
    hbm_total = sockets * d.memories[d.rdu.hbm].capacity_bytes
    oom = experts * e_bytes > ddr_total
    auto = int((hbm_total - r_bytes - kv) // e_bytes)
    cap = auto if cache_experts is None else cache_experts
    gpu = load_design(base.design, base.overrides)
    gpu_hbm = base.gpus * gpu.memories["hbm"].capacity_bytes
    b_auto = int((gpu_hbm - r_bytes - kv) // e_bytes)
    b_cap = b_auto if baseline_cache_experts is None else baseline_cache_experts
    if cap < 0 or b_cap < 0:
        raise UserError("--cache-experts must be >= 0")
    if cap > auto:
        raise UserError(f"--cache-experts {cap}: only {auto} experts fit in the HBM of "
                        f"{sockets} sockets beside the router and the KV cache")
    baseline_oom = (experts * e_bytes + r_bytes) > base.host_memory_bytes
    # routing: warm-up fills the caches, then the measured batches
    rng = np.random.default_rng(seed)
    warm = 4 * math.ceil(max(cap, b_cap, 1) / batch) + 4
    if routing == "request":
        reqs = rng.integers(0, experts, size=(warm + batches, batch))
    else:
        reqs = np.repeat(rng.integers(0, experts, size=(warm + batches, 1)), batch, axis=1)
    miss, distinct = lru_misses(reqs, cap)
    b_miss, _ = lru_misses(reqs, b_cap)
    miss, b_miss, distinct = miss[warm:], b_miss[warm:], distinct[warm:]
    counts = [[int(np.sum(r == e)) for e in order] for r, order in
              zip(reqs[warm:], distinct)]
    # switch times
    switch_s = e_bytes / (sockets * d.rdu.ddr_to_hbm_bytes_per_s)
    b_switch_s = e_bytes / base.host_to_gpu_bytes_per_s

    def run_rdu(n: int) -> float:
        pre = _rdu_run_s(design, expert, "prefill", n, prompt_tokens, sockets, dtype, overrides)
        dec = _rdu_run_s(design, expert, "decode", n, prompt_tokens + output_tokens // 2,
                         sockets, dtype, overrides)
        return pre + output_tokens * dec

    def run_gpu(n: int) -> float:
        pre = _gpu_run_s(base.design, base.overrides, expert, "prefill", n, prompt_tokens,
                         base.gpus)
        dec = _gpu_run_s(base.design, base.overrides, expert, "decode", n,
                         prompt_tokens + output_tokens // 2, base.gpus)
        return pre + output_tokens * dec

    route = _rdu_run_s(design, router, "prefill", batch, prompt_tokens, sockets, dtype,
                       overrides)
    b_route = _gpu_run_s(base.design, base.overrides, router, "prefill", batch, prompt_tokens,
                         base.gpus)
    run = float(np.mean([sum(run_rdu(n) for n in c) for c in counts]))
    b_run = float(np.mean([sum(run_gpu(n) for n in c) for c in counts]))
    sw = float(np.mean(miss)) * switch_s
    b_sw = float(np.mean(b_miss)) * b_switch_s
    seconds = route + sw + run
    b_seconds = None if baseline_oom else b_route + b_sw + b_run
    n_distinct = float(np.mean([len(o) for o in distinct]))
    cfg = {"design": d.name, "baseline": baseline, "experts": experts, "expert": expert,
           "router": router, "batch": batch, "prompt_tokens": prompt_tokens,
           "output_tokens": output_tokens, "sockets": sockets, "batches": batches,
           "seed": seed, "dtype": dtype, "routing": routing, "expert_bytes": e_bytes}
    return CoeResult(
        cfg, seconds, b_seconds, switch_s, b_switch_s,
        1 - float(np.sum(miss)) / max(1.0, n_distinct * batches),
        1 - float(np.sum(b_miss)) / max(1.0, n_distinct * batches), cap, b_cap,
        baseline_oom, oom,
        {"route_s": route, "switch_s": sw, "run_s": run, "distinct_experts": n_distinct},
        {"route_s": b_route, "switch_s": b_sw, "run_s": b_run,
         "distinct_experts": n_distinct},
        identity(d, family="rdu", baseline_model_version=model_version("graph"),
                 workload_hash=_workload_hash(cfg)))


def _workload_hash(cfg: dict) -> str:
    """The CoE workload: the expert and router models (their configurations), how many
    experts, the batches and lengths, routing and seed; not the node that runs it."""
    from dataclasses import asdict

    from archsim.core.identity import data_hash
    from dataflow.models import load_model

    work = {k: v for k, v in cfg.items() if k not in ("design", "baseline", "sockets")}
    work.update(expert=asdict(load_model(cfg["expert"])), router=asdict(load_model(cfg["router"])))
    return data_hash(work)


def max_experts(design: str = "sn40l", *, baseline: str | None = None, sockets: int = 8,
                expert: str = "llama2-7b", router: str = "llama2-7b",
                dtype: str = "bf16") -> int:
    """Most experts a node holds: the RDU's DDR over ``sockets`` sockets, or (with
    ``baseline``) the DGX host memory beside the router."""
    from archsim.spec import load_design

    e = expert_bytes(expert, dtype)
    if baseline is not None:
        return int((BASELINES[baseline].host_memory_bytes - expert_bytes(router, dtype)) // e)
    d = load_design(design)
    return int(sockets * d.memories[d.rdu.ddr].capacity_bytes // e)
