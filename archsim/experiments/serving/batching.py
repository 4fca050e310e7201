"""Iteration-level (continuous) batching, Orca/vLLM style, independent of the hardware.

:func:`simulate_serving` runs a trace through an event loop; each loop turn is one model
*iteration*, whose cost (seconds, joules, per-unit busy time) comes from a :class:`StepModel`.
Per iteration:

1. **Preempt** (KV growth): every running request's KV cache grows by one token this
   iteration; while that would exceed ``kv_capacity_tokens``, the most recently admitted
   running request is preempted: its KV is freed and it goes back to the *head* of the waiting
   queue; when re-admitted it is re-prefilled (recomputed from scratch: its prompt plus the
   tokens it had generated, context 0) and continues without re-emitting tokens.
2. **Admit** arrived waiting requests in FCFS order (stopping at the first that does not fit)
   while fewer than ``max_batch`` run, the KV cache has room for the request's prompt (plus
   generated tokens, for a re-prefill) + 1, and the iteration's prefill tokens stay within
   ``max_prefill_tokens`` (that budget never blocks the first request admitted in an
   iteration, so a prompt longer than the budget still runs, alone).
3. **Run** the iteration: admitted requests are prefilled and produce their first (next)
   token; running requests decode one token. Every token of an iteration is emitted at the
   iteration's end, so TTFT = end of the prefill iteration - arrival.
4. A request that has produced ``output_tokens`` tokens leaves at the end of that iteration.
5. If nothing runs and nothing waits, time jumps to the next arrival.

KV accounting: a running request holds ``input + generated`` tokens of KV cache at the end of
each iteration (its prompt, and the generated tokens incl. the one whose KV the next iteration
writes), so a request needs at most ``input + output`` tokens; one that needs more than
``kv_capacity_tokens`` can never run and is rejected up front.
"""
from __future__ import annotations

import math
import sys
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from archsim.errors import UserError
from archsim.experiments.serving.trace import TraceRequest


@dataclass(frozen=True)
class StepCost:
    """Cost of one iteration: wall time (s), energy (J) and per-unit busy time (s)."""

    seconds: float                       # wall time of the iteration
    energy_j: float                      # energy of the iteration
    unit_busy_s: Mapping[str, float]     # unit name -> busy seconds, e.g. {"npu": .., "pim": ..}
    energy_breakdown_j: Mapping[str, float] = field(default_factory=dict)  # component -> J


@runtime_checkable
class StepModel(Protocol):
    """The hardware model: the cost of one batching iteration.

    ``prefill_tokens[i]``: tokens the i-th prefilled request processes this iteration (its
    prompt; prompt + generated tokens for a re-prefill after preemption);
    ``prefill_context[i]``: tokens already in its KV cache (always 0 here: re-prefill
    recomputes everything); ``decode_context[j]``: KV-cache length the j-th decoding request
    attends over (prompt + tokens generated so far). All int64 arrays, possibly empty.
    """

    def step(self, prefill_tokens: np.ndarray, prefill_context: np.ndarray,
             decode_context: np.ndarray) -> StepCost: ...


def _stats(values: np.ndarray) -> dict[str, float | None]:
    """{"p50","p90","p99","mean"} of ``values`` (linear-interpolated percentiles); all None
    when there are no values."""
    if values.size == 0:
        return {"p50": None, "p90": None, "p99": None, "mean": None}
    p50, p90, p99 = np.percentile(values, [50, 90, 99], method="linear")
    return {"p50": float(p50), "p90": float(p90), "p99": float(p99), "mean": float(values.mean())}


@dataclass
class ServingRequests:
    """Per-request outcome, one entry per trace request in the order of the given trace
    (times in seconds, lengths in tokens)."""

    id: np.ndarray
    arrival_s: np.ndarray
    first_token_s: np.ndarray
    finish_s: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    preemptions: np.ndarray

    @property
    def ttft_s(self) -> np.ndarray:
        """Time to first token of each request, in seconds."""
        return self.first_token_s - self.arrival_s

    def __len__(self) -> int:
        return int(self.id.size)


@dataclass
class ServingTimeline:
    """One entry per iteration: ``start_s`` and ``seconds`` (duration), the number of requests
    prefilled / decoded, ``n_waiting`` (arrived requests still waiting after admission),
    ``kv_tokens`` (KV tokens held at the end of the iteration, before finished requests release
    theirs: the iteration's peak), and ``unit_busy_s`` {unit: busy seconds per iteration}."""

    start_s: np.ndarray
    seconds: np.ndarray
    n_prefill: np.ndarray
    n_decode: np.ndarray
    n_waiting: np.ndarray
    kv_tokens: np.ndarray
    unit_busy_s: dict[str, np.ndarray]


@dataclass
class ServingResult:
    """What :func:`simulate_serving` returns.

    ``makespan_s``: first arrival to last finish (s); ``throughput_tokens_per_s``: generated
    tokens / makespan; ``ttft_s`` / ``tbt_s``: {"p50","p90","p99","mean"} in seconds (TBT =
    gap between consecutive tokens of the same request, including gaps across a preemption;
    None when there is no gap); ``energy_j`` total, ``energy_breakdown_j`` by component (as
    the step model reports it) and ``energy_per_token_j`` per generated
    token; ``unit_busy_s`` total busy seconds per unit and ``units`` {unit: {"utilization":
    busy / makespan}}; ``mean_batch``: requests per iteration (prefill + decode), averaged over
    iterations; ``peak_kv_tokens``: the most KV tokens held at once; ``tbt_gaps_s``: every
    token gap (s); ``timeline``: per-iteration record (None unless ``record_timeline``).
    """

    requests: ServingRequests
    iterations: int
    makespan_s: float
    output_tokens_total: int
    throughput_tokens_per_s: float
    ttft_s: dict[str, float | None]
    tbt_s: dict[str, float | None]
    energy_j: float
    energy_per_token_j: float
    energy_breakdown_j: dict[str, float]
    unit_busy_s: dict[str, float]
    units: dict[str, dict[str, float]]
    preemptions: int
    mean_batch: float
    peak_kv_tokens: int
    tbt_gaps_s: np.ndarray
    timeline: ServingTimeline | None = None

    @property
    def steady_throughput_tokens_per_s(self) -> float | None:
        """Generated tokens per second over the iterations run while requests were waiting
        (the batch limited by ``max_batch`` or the KV cache, not by a draining trace); None
        without a timeline or when no request ever waited."""
        tl = self.timeline
        if tl is None:
            return None
        busy = tl.n_waiting > 0
        if not busy.any():
            return None
        # a prefilled request emits its first token, a decoding one its next
        tokens = (tl.n_prefill + tl.n_decode)[busy].sum()
        return float(tokens / tl.seconds[busy].sum())

    def to_dict(self) -> dict:
        """The JSON form: headline figures only (no per-request or per-iteration arrays)."""
        return {
            "throughput_tokens_per_s": self.throughput_tokens_per_s,
            "steady_throughput_tokens_per_s": self.steady_throughput_tokens_per_s,
            "ttft_s": dict(self.ttft_s),
            "tbt_s": dict(self.tbt_s),
            "units": {u: dict(v) for u, v in self.units.items()},
            "energy_per_token_j": self.energy_per_token_j,
            "requests": len(self.requests),
            "output_tokens": self.output_tokens_total,
            "makespan_s": self.makespan_s,
            "iterations": self.iterations,
            "preemptions": self.preemptions,
            "mean_batch": self.mean_batch,
            "energy_j": self.energy_j,
            "energy_breakdown_j": dict(self.energy_breakdown_j),
        }


_EMPTY_I = np.zeros(0, dtype=np.int64)


def simulate_serving(trace: list[TraceRequest], model: StepModel, *, max_batch: int,
                     kv_capacity_tokens: int, max_prefill_tokens: int | None = None,
                     progress: bool = False, record_timeline: bool = True) -> ServingResult:
    """Simulate iteration-level batching of ``trace`` on ``model`` (see the module docstring
    for the per-iteration rules).

    ``max_batch``: most requests running at once; ``kv_capacity_tokens``: KV-cache size in
    tokens (summed over running requests); ``max_prefill_tokens``: optional cap on the prompt
    tokens prefilled per iteration; ``progress``: tqdm bar over finished requests on stderr;
    ``record_timeline``: keep the per-iteration record (for :func:`plot_serving`).
    Returns a :class:`ServingResult` (seconds, joules, tokens). Raises
    :class:`~archsim.errors.UserError` for an empty trace, bad limits, or a request whose
    prompt + output tokens exceed the KV capacity.
    """
    if not trace:
        raise UserError("the trace has no requests")
    if max_batch < 1:
        raise UserError(f"max batch must be >= 1, got {max_batch}")
    if kv_capacity_tokens < 1:
        raise UserError(f"KV capacity must be >= 1 token, got {kv_capacity_tokens}")
    if max_prefill_tokens is not None and max_prefill_tokens < 1:
        raise UserError(f"max prefill tokens must be >= 1, got {max_prefill_tokens}")
    cap = int(kv_capacity_tokens)
    for r in trace:
        if r.input_tokens + r.output_tokens > cap:
            raise UserError(
                f"request {r.id} needs {r.input_tokens} + {r.output_tokens} = "
                f"{r.input_tokens + r.output_tokens} KV tokens (prompt + output), more than the "
                f"KV capacity of {cap} tokens: it can never run")

    n = len(trace)
    # simulate in arrival order (stable), report in the given order
    order = sorted(range(n), key=lambda i: trace[i].arrival_s)
    arrival_l = [trace[i].arrival_s for i in order]
    inp_l = [trace[i].input_tokens for i in order]
    out_l = [trace[i].output_tokens for i in order]
    gen_l = [0] * n                       # tokens generated (valid while not running)
    last_tok_l = [0.0] * n                # time of the last token (valid while not running)
    preempt_l = [0] * n
    first_tok = np.full(n, np.nan)
    finish = np.full(n, np.nan)

    # running set, in admission order (the last one is the most recently admitted)
    run_req = _EMPTY_I
    run_kv = _EMPTY_I                     # KV tokens held = input + generated
    run_gen = _EMPTY_I
    run_out = _EMPTY_I
    run_last = np.zeros(0)                # time of each request's last token
    kv_sum = 0

    waiting: deque[int] = deque()
    nxt = 0
    now = 0.0
    done = 0
    iterations = 0
    preemptions = 0
    batch_sum = 0
    peak_kv = 0
    energy_j = 0.0
    energy_parts: dict[str, float] = {}
    busy_tot: dict[str, float] = {}
    gap_chunks: list[np.ndarray] = []
    tl_start: list[float] = []
    tl_sec: list[float] = []
    tl_npre: list[int] = []
    tl_ndec: list[int] = []
    tl_wait: list[int] = []
    tl_kv: list[int] = []
    tl_busy: list[Mapping[str, float]] = []
    budget = max_prefill_tokens

    from tqdm import tqdm

    bar = tqdm(total=n, unit="req", desc="serving", file=sys.stderr, disable=not progress,
               leave=False)
    try:
        while done < n:
            while nxt < n and arrival_l[nxt] <= now:
                waiting.append(nxt)
                nxt += 1
            n_run = run_req.size
            if n_run == 0 and not waiting:
                now = arrival_l[nxt]
                continue

            # (1) KV growth of the running requests: preempt the newest while it does not fit
            if kv_sum + n_run > cap:
                keep = n_run
                while kv_sum + keep > cap:
                    keep -= 1
                    r = int(run_req[keep])
                    kv_sum -= int(run_kv[keep])
                    gen_l[r] = int(run_gen[keep])
                    last_tok_l[r] = float(run_last[keep])
                    preempt_l[r] += 1
                    waiting.appendleft(r)
                    preemptions += 1
                run_req, run_kv = run_req[:keep], run_kv[:keep]
                run_gen, run_out, run_last = run_gen[:keep], run_out[:keep], run_last[:keep]
                n_run = keep

            # (2) admission, FCFS
            free_kv = cap - kv_sum - n_run
            adm: list[int] = []
            adm_tok: list[int] = []
            used = 0
            while waiting and n_run + len(adm) < max_batch:
                r = waiting[0]
                toks = inp_l[r] + gen_l[r]
                if toks + 1 > free_kv:
                    break
                if budget is not None and adm and used + toks > budget:
                    break
                waiting.popleft()
                adm.append(r)
                adm_tok.append(toks)
                free_kv -= toks + 1
                used += toks
            n_adm = len(adm)
            if n_run == 0 and n_adm == 0:  # cannot happen: input + output <= cap was checked
                raise RuntimeError("serving simulation stalled with an empty batch")

            # (3) run the iteration
            pre_tok = np.array(adm_tok, dtype=np.int64) if n_adm else _EMPTY_I
            cost = model.step(pre_tok, np.zeros(n_adm, dtype=np.int64), run_kv.copy())
            sec = float(cost.seconds)
            if not (sec >= 0 and math.isfinite(sec)):
                raise ValueError(f"StepModel returned an invalid iteration time {cost.seconds!r}")
            end = now + sec
            energy_j += float(cost.energy_j)
            for k, v in cost.energy_breakdown_j.items():
                energy_parts[k] = energy_parts.get(k, 0.0) + float(v)
            for u, b in cost.unit_busy_s.items():
                busy_tot[u] = busy_tot.get(u, 0.0) + float(b)
            iterations += 1
            batch_sum += n_run + n_adm

            if n_run:
                gap_chunks.append(end - run_last)
                run_last = np.full(n_run, end)
                run_kv = run_kv + 1
                run_gen = run_gen + 1
                kv_sum += n_run
            if n_adm:
                a_gen = [gen_l[r] + 1 for r in adm]
                regaps = [end - last_tok_l[r] for r in adm if gen_l[r] > 0]
                if regaps:
                    gap_chunks.append(np.array(regaps))
                fresh = [r for r in adm if gen_l[r] == 0]
                if fresh:
                    first_tok[fresh] = end
                a_kv = [t + 1 for t in adm_tok]
                kv_sum += sum(a_kv)
                run_req = np.concatenate((run_req, np.array(adm, dtype=np.int64)))
                run_kv = np.concatenate((run_kv, np.array(a_kv, dtype=np.int64)))
                run_gen = np.concatenate((run_gen, np.array(a_gen, dtype=np.int64)))
                run_out = np.concatenate((run_out, np.array([out_l[r] for r in adm],
                                                            dtype=np.int64)))
                run_last = np.concatenate((run_last, np.full(n_adm, end)))
            peak_kv = max(peak_kv, kv_sum)
            if record_timeline:
                tl_start.append(now)
                tl_sec.append(sec)
                tl_npre.append(n_adm)
                tl_ndec.append(n_run)
                tl_wait.append(len(waiting))
                tl_kv.append(kv_sum)
                tl_busy.append(cost.unit_busy_s)

            # (4) finished requests leave
            fin = run_gen >= run_out
            if fin.any():
                fin_req = run_req[fin]
                finish[fin_req] = end
                kv_sum -= int(run_kv[fin].sum())
                k = ~fin
                run_req, run_kv, run_gen = run_req[k], run_kv[k], run_gen[k]
                run_out, run_last = run_out[k], run_last[k]
                done += int(fin_req.size)
                bar.update(int(fin_req.size))
            now = end
    finally:
        bar.close()

    # back to the caller's order
    inv = np.empty(n, dtype=np.int64)
    inv[np.asarray(order, dtype=np.int64)] = np.arange(n)
    arrival = np.asarray(arrival_l)[inv]
    requests = ServingRequests(
        id=np.asarray([r.id for r in trace], dtype=np.int64),
        arrival_s=arrival,
        first_token_s=first_tok[inv],
        finish_s=finish[inv],
        input_tokens=np.asarray(inp_l, dtype=np.int64)[inv],
        output_tokens=np.asarray(out_l, dtype=np.int64)[inv],
        preemptions=np.asarray(preempt_l, dtype=np.int64)[inv],
    )
    makespan = float(np.max(finish) - np.min(arrival))
    out_total = int(sum(out_l))
    gaps = np.concatenate(gap_chunks) if gap_chunks else np.zeros(0)
    units = {u: {"utilization": (b / makespan if makespan > 0 else 0.0)}
             for u, b in busy_tot.items()}
    timeline = None
    if record_timeline:
        names = list(busy_tot)
        timeline = ServingTimeline(
            start_s=np.asarray(tl_start), seconds=np.asarray(tl_sec),
            n_prefill=np.asarray(tl_npre, dtype=np.int64),
            n_decode=np.asarray(tl_ndec, dtype=np.int64),
            n_waiting=np.asarray(tl_wait, dtype=np.int64),
            kv_tokens=np.asarray(tl_kv, dtype=np.int64),
            unit_busy_s={u: np.asarray([float(b.get(u, 0.0)) for b in tl_busy]) for u in names},
        )
    return ServingResult(
        requests=requests,
        iterations=iterations,
        makespan_s=makespan,
        output_tokens_total=out_total,
        throughput_tokens_per_s=out_total / makespan if makespan > 0 else 0.0,
        ttft_s=_stats(requests.ttft_s),
        tbt_s=_stats(gaps),
        energy_j=energy_j,
        energy_per_token_j=energy_j / out_total,
        energy_breakdown_j=energy_parts,
        unit_busy_s=busy_tot,
        units=units,
        preemptions=preemptions,
        mean_batch=batch_sum / iterations if iterations else 0.0,
        peak_kv_tokens=peak_kv,
        tbt_gaps_s=gaps,
        timeline=timeline,
    )


def plot_serving(result: ServingResult, path) -> None:
    """Save a serving summary figure to ``path`` (format from the suffix: .png, .svg or .pdf):
    (a) decode/prefill batch size and KV tokens over time, (b) per-unit utilization per
    iteration (busy / iteration time) over time, (c) TTFT and TBT histograms (ms)."""
    path = Path(path)
    if path.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise UserError(f"cannot write plot {path}: expected a .png, .svg or .pdf file name")
    tl = result.timeline
    if tl is None:
        raise UserError("plot_serving needs the per-iteration timeline "
                        "(simulate_serving(..., record_timeline=True))")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(12, 7))
    (ax_b, ax_u), (ax_ttft, ax_tbt) = axes
    t = tl.start_s
    ax_b.step(t, tl.n_decode, where="post", label="decode", color="tab:blue")
    ax_b.step(t, tl.n_prefill, where="post", label="prefill", color="tab:orange")
    ax_b.set_xlabel("time (s)")
    ax_b.set_ylabel("requests in iteration")
    ax_k = ax_b.twinx()
    ax_k.plot(t, tl.kv_tokens, color="tab:green", alpha=0.6, label="KV tokens")
    ax_k.set_ylabel("KV tokens")
    h1, l1 = ax_b.get_legend_handles_labels()
    h2, l2 = ax_k.get_legend_handles_labels()
    ax_b.legend(h1 + h2, l1 + l2, loc="upper right", fontsize=8)
    ax_b.set_title(f"(a) batch and KV cache ({result.preemptions} preemptions)")

    with np.errstate(divide="ignore", invalid="ignore"):
        for u, busy in tl.unit_busy_s.items():
            util = np.where(tl.seconds > 0, busy / np.where(tl.seconds > 0, tl.seconds, 1), 0.0)
            ax_u.plot(t, util, label=f"{u} ({result.units[u]['utilization']:.0%} overall)",
                      lw=0.8)
    ax_u.set_ylim(0, 1.05)
    ax_u.set_xlabel("time (s)")
    ax_u.set_ylabel("busy / iteration time")
    if tl.unit_busy_s:
        ax_u.legend(loc="lower right", fontsize=8)
    ax_u.set_title("(b) unit utilization per iteration")

    ttft_ms = result.requests.ttft_s * 1e3
    ax_ttft.hist(ttft_ms, bins=50, color="tab:purple")
    ax_ttft.set_xlabel("TTFT (ms)")
    ax_ttft.set_ylabel("requests")
    ax_ttft.set_title("(c) time to first token")
    if result.tbt_gaps_s.size:
        ax_tbt.hist(result.tbt_gaps_s * 1e3, bins=50, color="tab:red", log=True)
    ax_tbt.set_xlabel("TBT (ms)")
    ax_tbt.set_ylabel("token gaps (log)")
    ax_tbt.set_title("(c) time between tokens")
    fig.suptitle(f"{len(result.requests)} requests, "
                 f"{result.throughput_tokens_per_s:,.0f} tokens/s, "
                 f"mean batch {result.mean_batch:.1f}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
