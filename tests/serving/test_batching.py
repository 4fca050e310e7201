"""Iteration-level batching simulator, with a toy StepModel."""
from __future__ import annotations

import json

import numpy as np
import pytest

from archsim.errors import UserError
from archsim.experiments.serving.batching import StepCost, StepModel, plot_serving, simulate_serving
from archsim.experiments.serving.trace import TraceRequest, build_trace


class ToyModel:
    """seconds = a + b * sum(decode_context) + c * sum(prefill_tokens); records every call."""

    def __init__(self, a: float = 1e-3, b: float = 0.0, c: float = 0.0):
        self.a, self.b, self.c = a, b, c
        self.calls: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def step(self, prefill_tokens, prefill_context, decode_context) -> StepCost:
        self.calls.append((prefill_tokens, prefill_context, decode_context))
        s = self.a + self.b * int(decode_context.sum()) + self.c * int(prefill_tokens.sum())
        return StepCost(seconds=s, energy_j=2.0 * s, unit_busy_s={"npu": 0.75 * s, "pim": 0.25 * s})


class ConstModel:
    def __init__(self, seconds: float):
        self.cost = StepCost(seconds, seconds, {"npu": seconds})

    def step(self, prefill_tokens, prefill_context, decode_context) -> StepCost:
        return self.cost


def test_toy_model_is_a_step_model():
    assert isinstance(ToyModel(), StepModel)


def test_single_request_ttft_is_first_iteration():
    m = ToyModel(a=0.01, c=0.001)
    r = simulate_serving([TraceRequest(0, 0.25, 40, 3)], m, max_batch=4, kv_capacity_tokens=100)
    assert r.requests.first_token_s[0] == pytest.approx(0.25 + 0.01 + 0.040)
    assert r.ttft_s["p50"] == pytest.approx(0.05) and r.ttft_s["mean"] == pytest.approx(0.05)
    assert r.iterations == 3
    pt, pc, dc = m.calls[0]
    assert pt.tolist() == [40] and pc.tolist() == [0] and dc.size == 0
    assert [c[2].tolist() for c in m.calls[1:]] == [[41], [42]]
    assert all(a.dtype == np.int64 for c in m.calls for a in c)
    assert r.makespan_s == pytest.approx(0.05 + 0.02)


def test_tbt_hand_computed():
    # seconds = 1 + 0.5 * prefill tokens.  A (in 2, out 3) arrives at 0, B (in 4, out 2) at 0.5.
    # iter 1 [0, 2]: prefill A (1 + 1)            -> A tok1 @2
    # iter 2 [2, 5]: prefill B (1 + 2), decode A  -> A tok2 @5, B tok1 @5
    # iter 3 [5, 6]: decode A, B                   -> A tok3 @6, B tok2 @6 (both finish)
    trace = [TraceRequest(0, 0.0, 2, 3), TraceRequest(1, 0.5, 4, 2)]
    m = ToyModel(a=1.0, c=0.5)
    r = simulate_serving(trace, m, max_batch=2, kv_capacity_tokens=100)
    assert r.iterations == 3
    assert r.requests.first_token_s.tolist() == [2.0, 5.0]
    assert r.requests.finish_s.tolist() == [6.0, 6.0]
    assert sorted(r.tbt_gaps_s.tolist()) == [1.0, 1.0, 3.0]
    assert r.tbt_s == pytest.approx({"p50": 1.0, "p90": 2.6, "p99": 2.96, "mean": 5 / 3})
    assert r.ttft_s == pytest.approx({"p50": 3.25, "p90": 4.25, "p99": 4.475, "mean": 3.25})
    assert [c[2].tolist() for c in m.calls] == [[], [3], [4, 5]]
    assert [c[0].tolist() for c in m.calls] == [[2], [4], []]
    assert r.makespan_s == 6.0 and r.output_tokens_total == 5
    assert r.throughput_tokens_per_s == pytest.approx(5 / 6)
    assert r.energy_j == pytest.approx(12.0) and r.energy_per_token_j == pytest.approx(12 / 5)
    assert r.unit_busy_s == pytest.approx({"npu": 4.5, "pim": 1.5})
    assert r.units.keys() == {"npu", "pim"}
    assert r.units["npu"]["utilization"] == pytest.approx(0.75)
    assert r.units["pim"]["utilization"] == pytest.approx(0.25)
    assert r.mean_batch == pytest.approx(5 / 3)
    tl = r.timeline
    assert tl.start_s.tolist() == [0.0, 2.0, 5.0] and tl.seconds.tolist() == [2.0, 3.0, 1.0]
    assert tl.n_prefill.tolist() == [1, 1, 0] and tl.n_decode.tolist() == [0, 1, 2]
    assert tl.kv_tokens.tolist() == [3, 3 + 1 + 5, 5 + 6]
    assert tl.unit_busy_s["npu"].tolist() == pytest.approx([1.5, 2.25, 0.75])


def test_idle_gap_jumps_to_next_arrival():
    trace = [TraceRequest(0, 0.0, 1, 1), TraceRequest(1, 10.0, 1, 2)]
    r = simulate_serving(trace, ConstModel(1.0), max_batch=4, kv_capacity_tokens=100)
    assert r.requests.first_token_s.tolist() == [1.0, 11.0]
    assert r.requests.finish_s.tolist() == [1.0, 12.0]
    assert r.iterations == 3 and r.makespan_s == 12.0
    assert r.units["npu"]["utilization"] == pytest.approx(3 / 12)


def test_results_in_trace_order_when_unsorted():
    trace = [TraceRequest(0, 5.0, 1, 1), TraceRequest(1, 0.0, 1, 1)]
    r = simulate_serving(trace, ConstModel(1.0), max_batch=1, kv_capacity_tokens=10)
    assert r.requests.id.tolist() == [0, 1]
    assert r.requests.arrival_s.tolist() == [5.0, 0.0]
    assert r.requests.first_token_s.tolist() == [6.0, 1.0]


def test_closed_loop_batch_full_while_waiting_and_all_tokens_produced():
    trace = build_trace("sharegpt", 150, None, 0)
    m = ToyModel(a=1e-3, b=1e-7)
    r = simulate_serving(trace, m, max_batch=16, kv_capacity_tokens=10**7)
    tl = r.timeline
    waiting = tl.n_waiting > 0
    assert waiting.sum() > 100
    assert np.all((tl.n_prefill + tl.n_decode)[waiting] == 16)
    total = sum(t.output_tokens for t in trace)
    assert r.output_tokens_total == total
    # one token per request per iteration it takes part in
    assert sum(c[0].size + c[2].size for c in m.calls) == total
    assert int((tl.n_prefill + tl.n_decode).sum()) == total
    assert r.preemptions == 0
    assert np.all(r.requests.finish_s >= r.requests.first_token_s)
    assert r.tbt_gaps_s.size == total - len(trace)


def test_kv_capacity_preemption():
    cap = 1000
    trace = build_trace("fixed:100,200", 40, None, 0)
    m = ToyModel(a=1e-3)
    r = simulate_serving(trace, m, max_batch=16, kv_capacity_tokens=cap)
    assert r.preemptions > 0 and r.requests.preemptions.sum() == r.preemptions
    assert r.timeline.kv_tokens.max() <= cap and r.peak_kv_tokens <= cap
    # every iteration's KV after growth fits
    for pt, _, dc in m.calls:
        assert int(pt.sum() + pt.size + dc.sum() + dc.size) <= cap
    # preempted requests are re-prefilled with input + generated tokens, and not re-emitted
    assert max(int(c[0].max()) for c in m.calls if c[0].size) > 100
    assert sum(c[0].size + c[2].size for c in m.calls) == 40 * 200
    assert r.output_tokens_total == 40 * 200
    assert np.all(np.isfinite(r.requests.finish_s))
    # a request's TBT gaps include the wait while it was preempted
    assert r.tbt_s["p99"] > 1e-3


def test_max_prefill_tokens_budget():
    trace = build_trace("fixed:100,3", 10, None, 0)
    m = ToyModel()
    simulate_serving(trace, m, max_batch=10, kv_capacity_tokens=10**6, max_prefill_tokens=250)
    assert max(int(c[0].sum()) for c in m.calls) <= 250
    # a prompt longer than the budget still runs (alone)
    m = ToyModel()
    r = simulate_serving(build_trace("fixed:300,2", 3, None, 0), m, max_batch=4,
                         kv_capacity_tokens=10**6, max_prefill_tokens=250)
    assert r.output_tokens_total == 6 and max(c[0].size for c in m.calls) == 1


def test_too_long_request_raises():
    trace = [TraceRequest(0, 0.0, 10, 10), TraceRequest(1, 0.0, 100, 200)]
    with pytest.raises(UserError, match=r"request 1 needs 100 \+ 200 = 300 KV tokens.*250"):
        simulate_serving(trace, ToyModel(), max_batch=4, kv_capacity_tokens=250)
    # exactly at capacity is fine
    r = simulate_serving(trace[1:], ToyModel(), max_batch=4, kv_capacity_tokens=300)
    assert r.output_tokens_total == 200 and r.peak_kv_tokens == 300


def test_bad_arguments():
    trace = [TraceRequest(0, 0.0, 1, 1)]
    with pytest.raises(UserError):
        simulate_serving([], ToyModel(), max_batch=1, kv_capacity_tokens=10)
    with pytest.raises(UserError):
        simulate_serving(trace, ToyModel(), max_batch=0, kv_capacity_tokens=10)


def test_throughput_constant_step_closed_loop():
    step = 0.01
    batch = 16
    trace = build_trace("fixed:16,10", 64, None, 0)
    r = simulate_serving(trace, ConstModel(step), max_batch=batch, kv_capacity_tokens=10**6)
    assert r.iterations == 4 * 10
    assert abs(r.throughput_tokens_per_s - batch / step) <= 1e-9 * (batch / step)
    assert r.mean_batch == batch
    assert r.tbt_s["p50"] == pytest.approx(step) and r.tbt_s["p99"] == pytest.approx(step)


def test_to_dict_keys_and_json():
    r = simulate_serving(build_trace("alpaca", 20, 10.0, 0), ToyModel(), max_batch=8,
                         kv_capacity_tokens=10**5)
    d = r.to_dict()
    assert set(d) == {"throughput_tokens_per_s", "ttft_s", "tbt_s", "units", "energy_per_token_j",
                      "requests", "output_tokens", "makespan_s", "iterations", "preemptions",
                      "mean_batch", "energy_j", "steady_throughput_tokens_per_s",
                      "energy_breakdown_j"}
    assert set(d["ttft_s"]) == set(d["tbt_s"]) == {"p50", "p90", "p99", "mean"}
    assert d["units"].keys() == {"npu", "pim"} and d["requests"] == 20
    json.loads(json.dumps(d))


def test_no_timeline():
    r = simulate_serving(build_trace("alpaca", 20, None, 0), ToyModel(), max_batch=8,
                         kv_capacity_tokens=10**5, record_timeline=False)
    assert r.timeline is None and r.iterations > 0


def test_progress_bar_on_stderr(capsys):
    simulate_serving(build_trace("alpaca", 20, None, 0), ToyModel(), max_batch=8,
                     kv_capacity_tokens=10**5, progress=True)
    cap = capsys.readouterr()
    assert cap.out == "" and "req" in cap.err


def test_1000_requests_batch_256_all_served():
    """The loop's speed is measured by benchmarks/bench_serve.py; here: every token served."""
    trace = build_trace("sharegpt", 1000, None, 0)
    r = simulate_serving(trace, ConstModel(1e-3), max_batch=256, kv_capacity_tokens=10**9)
    assert r.iterations > 1500 and r.output_tokens_total == sum(t.output_tokens for t in trace)


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_plot_serving(tmp_path, suffix):
    r = simulate_serving(build_trace("fixed:100,50", 40, None, 0), ToyModel(), max_batch=16,
                         kv_capacity_tokens=1500)
    assert r.preemptions > 0
    path = tmp_path / f"serve{suffix}"
    plot_serving(r, path)
    assert path.stat().st_size > 1000
    with pytest.raises(UserError):
        plot_serving(r, tmp_path / "serve.txt")


def test_steady_throughput_counts_only_iterations_with_waiting_requests():
    """Closed loop, constant step time: while requests wait the batch is full, so the steady
    throughput is exactly batch / step time, above the overall figure that includes the drain."""
    r = simulate_serving(build_trace("fixed:4,10", 40, None, 0), ToyModel(), max_batch=8,
                         kv_capacity_tokens=10**5)
    tl = r.timeline
    busy = tl.n_waiting > 0
    want = (tl.n_prefill + tl.n_decode)[busy].sum() / tl.seconds[busy].sum()
    assert r.steady_throughput_tokens_per_s == pytest.approx(want)
    assert r.steady_throughput_tokens_per_s >= r.throughput_tokens_per_s
