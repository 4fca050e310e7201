"""Request traces: synthetic lengths, fixed lengths, trace files, arrivals."""
from __future__ import annotations

import json

import numpy as np
import pytest

from archsim.errors import UserError
from archsim.experiments.serving.trace import (
    DATASETS,
    DatasetSpec,
    TraceRequest,
    build_trace,
    parse_dataset,
    synthetic_lengths,
)


@pytest.mark.parametrize("dataset,mean_in,mean_out", [("sharegpt", 80, 296), ("alpaca", 12, 56)])
@pytest.mark.parametrize("seed", [0, 1, 7])
def test_synthetic_means_within_2_percent(dataset, mean_in, mean_out, seed):
    inp, out = synthetic_lengths(dataset, 1000, seed)
    assert inp.dtype == np.int64 and out.dtype == np.int64 and len(inp) == len(out) == 1000
    assert abs(inp.mean() - mean_in) <= 0.02 * mean_in
    assert abs(out.mean() - mean_out) <= 0.02 * mean_out
    cap = DATASETS[dataset].max_tokens
    assert inp.min() >= 1 and out.min() >= 1 and inp.max() <= cap and out.max() <= cap
    assert len(np.unique(out)) > 50  # a distribution, not a constant


def test_synthetic_deterministic_by_seed():
    a = synthetic_lengths("sharegpt", 200, 3)
    b = synthetic_lengths("sharegpt", 200, 3)
    c = synthetic_lengths("sharegpt", 200, 4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[1], c[1])
    assert build_trace("alpaca", 50, 2.0, 9) == build_trace("alpaca", 50, 2.0, 9)
    assert build_trace("alpaca", 50, 2.0, 9) != build_trace("alpaca", 50, 2.0, 10)


def test_synthetic_unknown_dataset_lists_choices():
    with pytest.raises(UserError, match="sharegpt, alpaca"):
        synthetic_lengths("dolly", 10, 0)


def test_fixed_lengths_closed_loop():
    spec = parse_dataset("fixed:128,256")
    assert spec == DatasetSpec("fixed", "fixed:128,256", (128,), (256,))
    trace = build_trace(spec, 5, None, 0)
    assert trace == [TraceRequest(i, 0.0, 128, 256) for i in range(5)]
    assert build_trace("FIXED: 3, 4", 2, None, 0)[1] == TraceRequest(1, 0.0, 3, 4)


@pytest.mark.parametrize("bad", ["fixed:0,4", "fixed:3", "fixed:a,b", "fixed:1,2,3"])
def test_fixed_bad(bad):
    with pytest.raises(UserError, match="fixed:LIN,LOUT"):
        parse_dataset(bad)


def test_unknown_dataset_lists_choices():
    with pytest.raises(UserError) as e:
        parse_dataset("dolly")
    msg = str(e.value)
    assert "dolly" in msg and "sharegpt" in msg and "alpaca" in msg and "fixed:LIN,LOUT" in msg
    assert "\n" not in msg


def test_missing_file_names_path(tmp_path):
    p = tmp_path / "nope.csv"
    with pytest.raises(UserError, match="not found: .*nope.csv"):
        parse_dataset(str(p))


def test_poisson_arrivals_mean_interarrival():
    qps = 5.0
    trace = build_trace("fixed:10,10", 20000, qps, 42)
    arr = np.array([r.arrival_s for r in trace])
    assert arr[0] > 0 and np.all(np.diff(arr) >= 0)
    gaps = np.diff(np.concatenate(([0.0], arr)))
    assert gaps.mean() == pytest.approx(1 / qps, rel=0.03)
    assert gaps.std() == pytest.approx(1 / qps, rel=0.05)  # exponential: std = mean


def test_closed_loop_all_at_zero():
    trace = build_trace("sharegpt", 30, None, 0)
    assert [r.id for r in trace] == list(range(30))
    assert all(r.arrival_s == 0.0 for r in trace)


def test_synthetic_needs_count():
    with pytest.raises(UserError, match="number of requests"):
        build_trace("sharegpt", None, None, 0)


def test_csv_trace(tmp_path):
    p = tmp_path / "trace.csv"
    p.write_text("# a comment\nid,input_tokens,output_tokens,arrival_s\n"
                 "0,10,20,0.5\n\n1,11,21,0.25\n2, 12 ,22,1.0\n")
    spec = parse_dataset(str(p))
    assert spec.kind == "file" and spec.input_tokens == (10, 11, 12)
    assert spec.output_tokens == (20, 21, 22) and spec.arrival_s == (0.5, 0.25, 1.0)
    trace = build_trace(spec, None, None, 0)
    assert trace == [TraceRequest(0, 0.5, 10, 20), TraceRequest(1, 0.25, 11, 21),
                     TraceRequest(2, 1.0, 12, 22)]
    # the file's arrival times win over qps; n_requests takes the first n
    assert build_trace(str(p), 2, 100.0, 0) == trace[:2]
    with pytest.raises(UserError, match="has 3 requests"):
        build_trace(spec, 4, None, 0)


def test_csv_without_arrivals_uses_qps_or_closed_loop(tmp_path):
    p = tmp_path / "t.csv"
    rows = "".join(f"{i + 1},{i + 2}\n" for i in range(10))
    p.write_text("input_tokens,output_tokens\n" + rows)
    closed = build_trace(str(p), None, None, 0)
    assert [r.arrival_s for r in closed] == [0.0] * 10
    lengths = [(r.input_tokens, r.output_tokens) for r in closed]
    assert lengths == [(i + 1, i + 2) for i in range(10)]
    timed = build_trace(str(p), None, 2.0, 0)
    assert timed[0].arrival_s > 0 and timed == build_trace(str(p), None, 2.0, 0)


def test_jsonl_trace(tmp_path):
    p = tmp_path / "trace.jsonl"
    recs = [{"input_tokens": 5, "output_tokens": 7, "arrival_s": 0},
            {"input_tokens": 6.0, "output_tokens": 8, "arrival_s": 1.5, "text": "ignored"}]
    p.write_text("\n".join(json.dumps(r) for r in recs) + "\n\n")
    trace = build_trace(str(p), None, None, 0)
    assert trace == [TraceRequest(0, 0.0, 5, 7), TraceRequest(1, 1.5, 6, 8)]


def test_jsonl_sniffed_without_suffix(tmp_path):
    p = tmp_path / "trace"
    p.write_text('{"input_tokens": 3, "output_tokens": 4}\n')
    assert build_trace(str(p), None, None, 0) == [TraceRequest(0, 0.0, 3, 4)]


@pytest.mark.parametrize("content,expected", [
    ("input_tokens,output_tokens\n1,2\n3,x\n",
     "trace.csv:3: output_tokens: expected a positive integer, found 'x'"),
    ("input_tokens,output_tokens\n1,2\n0,5\n",
     "trace.csv:3: input_tokens: expected a positive integer, found '0'"),
    ("input_tokens,output_tokens,arrival_s\n1,2,-1\n",
     "trace.csv:2: arrival_s: expected a number of seconds >= 0, found '-1'"),
    ("input,output\n1,2\n",
     "trace.csv:1: header: expected columns input_tokens,output_tokens"),
    ("input_tokens,output_tokens\n1,2,3\n",
     "trace.csv:2: expected 2 comma-separated fields"),
    ("input_tokens,output_tokens\n", "trace.csv: no requests"),
])
def test_csv_errors(tmp_path, monkeypatch, content, expected):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "trace.csv").write_text(content)
    with pytest.raises(UserError) as e:
        parse_dataset("trace.csv")
    assert str(e.value).startswith(expected), str(e.value)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("lines,expected", [
    (['{"input_tokens": 1, "output_tokens": 2}', '{"input_tokens": 1, "output_tokens": "x"}'],
     "trace.jsonl:2: output_tokens: expected a positive integer, found 'x'"),
    (['{"input_tokens": 1, "output_tokens": 2}', '', '{"input_tokens": 1}'],
     "trace.jsonl:3: output_tokens: expected a positive integer, found no 'output_tokens' key"),
    (['{"input_tokens": 1, "output_tokens": 2', ], "trace.jsonl:1: expected a JSON object"),
    (['[1, 2]'], "trace.jsonl:1: expected a JSON object"),
    (['{"input_tokens": 1, "output_tokens": 2.5}'],
     "trace.jsonl:1: output_tokens: expected a positive integer, found 2.5"),
    (['{"input_tokens": 1, "output_tokens": 2, "arrival_s": 0}',
      '{"input_tokens": 1, "output_tokens": 2}'],
     "trace.jsonl:2: arrival_s: expected a number of seconds"),
])
def test_jsonl_errors(tmp_path, monkeypatch, lines, expected):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "trace.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError) as e:
        parse_dataset("trace.jsonl")
    assert str(e.value).startswith(expected), str(e.value)
    assert "\n" not in str(e.value)


def test_trace_request_validation():
    with pytest.raises(ValueError):
        TraceRequest(0, 0.0, 0, 5)
    with pytest.raises(ValueError):
        TraceRequest(0, 0.0, 5, 0)


def test_describe():
    assert "80/296" in parse_dataset("sharegpt").describe()
    assert "128 prompt" in parse_dataset("fixed:128,256").describe()
