"""Request traces for serving simulation: who arrives when, with how many tokens.

A trace is a list of :class:`TraceRequest` (prompt length, number of tokens to generate,
arrival time in seconds). :func:`parse_dataset` turns the ``--dataset`` text into a
:class:`DatasetSpec` (reading and checking a trace file at once, so a bad file fails before any
simulation), and :func:`build_trace` draws the lengths and arrival times from it.

Datasets:

- ``sharegpt`` / ``alpaca``: synthetic lognormal lengths matching the mean prompt/output
  lengths the NeuPIMs paper reports for these datasets (see :func:`synthetic_lengths`);
- ``fixed:LIN,LOUT``: every request has LIN prompt tokens and generates LOUT tokens;
- a trace file: CSV with a header naming ``input_tokens,output_tokens`` (and optionally
  ``arrival_s``; other columns are ignored), or JSONL with one object per line having the same
  keys. Blank lines and lines starting with ``#`` are skipped.

Arrival times (:func:`build_trace`): a trace file's ``arrival_s`` column always wins; otherwise
with ``qps`` requests arrive as a Poisson process of that rate; otherwise the run is a
*closed loop*: all requests arrive at t=0, so a request is always waiting and the batch refills
as soon as a slot frees.
"""
from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from archsim.errors import UserError


class TraceError(UserError, ValueError):
    """A dataset name, ``fixed:`` spec or trace file is invalid (the message says where/why)."""


@dataclass(frozen=True)
class TraceRequest:
    """One request: arrives at ``arrival_s`` seconds with an ``input_tokens``-token prompt and
    generates ``output_tokens`` tokens (both >= 1). ``id`` is its index in the trace."""

    id: int
    arrival_s: float
    input_tokens: int
    output_tokens: int

    def __post_init__(self) -> None:
        if self.input_tokens < 1 or self.output_tokens < 1:
            raise ValueError(f"request {self.id}: input_tokens and output_tokens must be >= 1, "
                             f"got {self.input_tokens} and {self.output_tokens}")
        if not (math.isfinite(self.arrival_s) and self.arrival_s >= 0):
            raise ValueError(f"request {self.id}: arrival_s must be a finite number >= 0, "
                             f"got {self.arrival_s}")


@dataclass(frozen=True)
class _SyntheticStats:
    mean_input_tokens: float
    mean_output_tokens: float
    sigma: float          # lognormal shape parameter (std-dev of log length), our choice
    max_tokens: int       # lengths are clipped to [1, max_tokens]


# Mean prompt/output lengths from the NeuPIMs paper (Heo et al., ASPLOS'24), section
# "Workloads": ShareGPT mean input 80 / output 296 tokens, Alpaca mean 12 / 56
# (../shared/reference/neupims.md). The paper gives only the means; the lognormal shape
# (sigma) and the clipping range are our choice: ShareGPT conversations are long-tailed
# (sigma 1.0, clip [1, 2048]); Alpaca instructions are short and more uniform (sigma 0.6,
# clip [1, 512]).
DATASETS: dict[str, _SyntheticStats] = {
    "sharegpt": _SyntheticStats(80.0, 296.0, sigma=1.0, max_tokens=2048),
    "alpaca": _SyntheticStats(12.0, 56.0, sigma=0.6, max_tokens=512),
}

_CHOICES = "sharegpt, alpaca, fixed:LIN,LOUT, or a trace file (.csv or .jsonl)"


def _lognormal_with_mean(rng: np.random.Generator, mean: float, sigma: float, n: int,
                         max_tokens: int) -> np.ndarray:
    """``n`` integer lengths in [1, max_tokens], lognormal(sigma), sample mean = ``mean``
    up to rounding."""
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    mu = math.log(mean) - sigma * sigma / 2          # E[lognormal(mu, sigma)] = mean
    x = rng.lognormal(mu, sigma, n)
    # rescale so the sample mean hits the target; clipping moves it a little, so repeat
    for _ in range(20):
        x = np.clip(x * (mean / x.mean()), 1.0, float(max_tokens))
        if abs(x.mean() - mean) <= 1e-9 * mean:
            break
    return np.clip(np.rint(x), 1, max_tokens).astype(np.int64)


def synthetic_lengths(dataset: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` synthetic (input_tokens, output_tokens) pairs for ``dataset``.

    Returns two int64 arrays of length ``n`` (token counts). Distribution: independent
    lognormals for prompt and output length, with shape ``sigma`` (std-dev of the log length:
    1.0 for ``sharegpt``, 0.6 for ``alpaca``) and location chosen so the expected value is the
    dataset's mean (ShareGPT 80 / 296 tokens, Alpaca 12 / 56, from the NeuPIMs paper); the
    draws are clipped to [1, 2048] (ShareGPT) or [1, 512] (Alpaca), then rescaled so the
    *sample* mean equals the stated mean exactly before rounding to integers (>= 1). Seeded with
    ``numpy.random.default_rng(seed)`` (prompt lengths drawn first): same seed, same lengths.
    """
    stats = DATASETS.get(dataset.lower())
    if stats is None:
        raise TraceError(f"unknown synthetic dataset '{dataset}': expected one of "
                         f"{', '.join(DATASETS)}")
    if n < 0:
        raise TraceError(f"number of requests must be >= 0, got {n}")
    rng = np.random.default_rng(seed)
    inp = _lognormal_with_mean(rng, stats.mean_input_tokens, stats.sigma, n, stats.max_tokens)
    out = _lognormal_with_mean(rng, stats.mean_output_tokens, stats.sigma, n, stats.max_tokens)
    return inp, out


@dataclass(frozen=True)
class DatasetSpec:
    """Where request lengths come from (what :func:`parse_dataset` returns).

    ``kind``: ``"synthetic"`` (``name`` is ``sharegpt``/``alpaca``), ``"fixed"`` (``name`` is
    ``fixed:LIN,LOUT``; ``input_tokens``/``output_tokens`` hold the one value each) or
    ``"file"`` (``name`` is the path as given; ``input_tokens``/``output_tokens`` hold one
    value per record in file order, ``arrival_s`` the arrival times in seconds if the file has
    them, else None).
    """

    kind: Literal["synthetic", "fixed", "file"]
    name: str
    input_tokens: tuple[int, ...] = ()
    output_tokens: tuple[int, ...] = ()
    arrival_s: tuple[float, ...] | None = None

    def describe(self) -> str:
        """One-line human description, e.g. ``sharegpt (synthetic, mean 80/296 tokens)``."""
        if self.kind == "synthetic":
            s = DATASETS[self.name]
            return (f"{self.name} (synthetic lognormal, mean {s.mean_input_tokens:g}/"
                    f"{s.mean_output_tokens:g} tokens)")
        if self.kind == "fixed":
            return (f"{self.name} ({self.input_tokens[0]} prompt / {self.output_tokens[0]} "
                    f"output tokens)")
        timed = "with arrival times" if self.arrival_s is not None else "no arrival times"
        return f"{self.name} ({len(self.input_tokens)} requests, {timed})"


# ---------------------------------------------------------------------------------- parsing

def _positive_int(value, where: str, field: str) -> int:
    """``value`` (a CSV string or a JSON value) as an int >= 1, else a TraceError at ``where``."""
    v = value.strip() if isinstance(value, str) else value
    out = None
    if isinstance(v, bool):
        out = None
    elif isinstance(v, int):
        out = v
    elif isinstance(v, float) and math.isfinite(v) and v.is_integer():
        out = int(v)
    elif isinstance(v, str):
        try:
            out = int(v)
        except ValueError:
            try:
                f = float(v)
                out = int(f) if math.isfinite(f) and f.is_integer() else None
            except ValueError:
                out = None
    if out is None or out < 1:
        raise TraceError(f"{where}: {field}: expected a positive integer, found {value!r}")
    return out


def _arrival(value, where: str) -> float:
    v = value.strip() if isinstance(value, str) else value
    out = None
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        out = float(v)
    elif isinstance(v, str):
        try:
            out = float(v)
        except ValueError:
            out = None
    if out is None or not math.isfinite(out) or out < 0:
        raise TraceError(f"{where}: arrival_s: expected a number of seconds >= 0, "
                         f"found {value!r}")
    return out


def _content_lines(text: str):
    """(1-based line number, line) for lines that are neither blank nor ``#`` comments."""
    for ln, line in enumerate(text.splitlines(), start=1):
        s = line.strip()
        if s and not s.startswith("#"):
            yield ln, line


def _parse_csv(text: str, name: str):
    lines = _content_lines(text)
    first = next(lines, None)
    if first is None:
        raise TraceError(f"{name}: no requests (expected a CSV header "
                         f"input_tokens,output_tokens[,arrival_s] and one line per request)")
    hdr_ln, hdr_line = first
    header = [h.strip() for h in next(csv.reader([hdr_line]))]
    if "input_tokens" not in header or "output_tokens" not in header:
        raise TraceError(f"{name}:{hdr_ln}: header: expected columns input_tokens,output_tokens "
                         f"(and optionally arrival_s), found {hdr_line.strip()!r}")
    i_in, i_out = header.index("input_tokens"), header.index("output_tokens")
    i_arr = header.index("arrival_s") if "arrival_s" in header else None
    inp, out, arr = [], [], []
    for ln, line in lines:
        row = next(csv.reader([line]))
        where = f"{name}:{ln}"
        if len(row) != len(header):
            raise TraceError(f"{where}: expected {len(header)} comma-separated fields "
                             f"({','.join(header)}), found {len(row)}")
        inp.append(_positive_int(row[i_in], where, "input_tokens"))
        out.append(_positive_int(row[i_out], where, "output_tokens"))
        if i_arr is not None:
            arr.append(_arrival(row[i_arr], where))
    return inp, out, (arr if i_arr is not None else None)


def _parse_jsonl(text: str, name: str):
    inp, out, arr = [], [], []
    has_arrival = None
    for ln, line in _content_lines(text):
        where = f"{name}:{ln}"
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise TraceError(f"{where}: expected a JSON object, found invalid JSON ({e.msg})") \
                from None
        if not isinstance(rec, dict):
            raise TraceError(f"{where}: expected a JSON object with input_tokens and "
                             f"output_tokens, found {type(rec).__name__}")
        for key in ("input_tokens", "output_tokens"):
            if key not in rec:
                raise TraceError(f"{where}: {key}: expected a positive integer, found no "
                                 f"'{key}' key")
        inp.append(_positive_int(rec["input_tokens"], where, "input_tokens"))
        out.append(_positive_int(rec["output_tokens"], where, "output_tokens"))
        if has_arrival is None:
            has_arrival = "arrival_s" in rec
        if has_arrival:
            if "arrival_s" not in rec:
                raise TraceError(f"{where}: arrival_s: expected a number of seconds (the first "
                                 f"record has one, so every record needs one), found no "
                                 f"'arrival_s' key")
            arr.append(_arrival(rec["arrival_s"], where))
    if not inp:
        raise TraceError(f"{name}: no requests (expected one JSON object per line with "
                         f"input_tokens and output_tokens)")
    return inp, out, (arr if has_arrival else None)


def _load_trace_file(text_path: str) -> DatasetSpec:
    path = Path(text_path)
    if not path.exists():
        raise TraceError(f"trace file not found: {text_path}")
    if not path.is_file():
        raise TraceError(f"trace file is not a file: {text_path}")
    try:
        content = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise TraceError(f"cannot read trace file {text_path}: {e}") from None
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        is_json = True
    elif suffix == ".csv":
        is_json = False
    else:  # sniff: JSONL lines start with '{'
        first = next(_content_lines(content), (0, ""))[1].lstrip()
        is_json = first.startswith("{")
    inp, out, arr = (_parse_jsonl if is_json else _parse_csv)(content, text_path)
    if not inp:
        raise TraceError(f"{text_path}: no requests (only a header)")
    return DatasetSpec("file", text_path, tuple(inp), tuple(out),
                       tuple(arr) if arr is not None else None)


def parse_dataset(text: str) -> DatasetSpec:
    """Parse a ``--dataset`` value into a :class:`DatasetSpec`.

    Accepts ``sharegpt``, ``alpaca`` (case-insensitive; these names win over a file of the same
    name), ``fixed:LIN,LOUT`` (two positive integers: prompt and output tokens), or the path of
    a CSV/JSONL trace file, which is read and checked now. Raises :class:`TraceError` (a
    :class:`~archsim.errors.UserError`) with a one-line message: ``FILE:LINE: FIELD: expected
    ..., found ...`` for a bad record, the path for a missing file, and the choices for an
    unknown name.
    """
    s = text.strip()
    low = s.lower()
    if low in DATASETS:
        return DatasetSpec("synthetic", low)
    if low.startswith("fixed:"):
        parts = s[len("fixed:"):].split(",")
        try:
            vals = [int(p.strip()) for p in parts]
        except ValueError:
            vals = []
        if len(vals) != 2 or min(vals) < 1:
            raise TraceError(f"bad dataset '{text}': expected fixed:LIN,LOUT with two positive "
                             f"integers (prompt and output tokens), e.g. fixed:128,256")
        return DatasetSpec("fixed", f"fixed:{vals[0]},{vals[1]}", (vals[0],), (vals[1],))
    looks_like_path = (os.sep in s or "/" in s or Path(s).suffix.lower()
                       in (".csv", ".jsonl", ".json", ".ndjson", ".txt"))
    if Path(s).exists() or looks_like_path:
        return _load_trace_file(s)
    raise TraceError(f"unknown dataset '{text}': expected {_CHOICES}")


# ------------------------------------------------------------------------------ build_trace

def build_trace(dataset: str | DatasetSpec, n_requests: int | None, qps: float | None,
                seed: int) -> list[TraceRequest]:
    """Build the request list (ordered by id; ``arrival_s`` in seconds).

    ``dataset``: a :class:`DatasetSpec` or text for :func:`parse_dataset`. ``n_requests``:
    how many requests (required for synthetic/fixed datasets; for a trace file the default is
    every record and ``n_requests`` takes the first n). Arrivals: a trace file's ``arrival_s``
    always wins; else with ``qps`` (requests/s) a Poisson process: exponential inter-arrival
    times of mean 1/qps, the first request at its own draw (not at 0), drawn from
    ``default_rng((seed, 1))`` so they are independent of the length draws; else (``qps`` None)
    closed loop: every request arrives at t=0 -- a request is always waiting and the batch
    refills as soon as a slot frees. Deterministic for a given seed.
    """
    spec = dataset if isinstance(dataset, DatasetSpec) else parse_dataset(dataset)
    if n_requests is not None and n_requests < 1:
        raise TraceError(f"number of requests must be >= 1, got {n_requests}")
    if qps is not None and not (math.isfinite(qps) and qps > 0):
        raise TraceError(f"qps must be a positive number of requests per second, got {qps}")
    arrivals: np.ndarray | None = None
    if spec.kind == "file":
        total = len(spec.input_tokens)
        n = total if n_requests is None else n_requests
        if n > total:
            raise TraceError(f"{spec.name} has {total} requests, fewer than the {n} requested")
        inp = np.asarray(spec.input_tokens[:n], dtype=np.int64)
        out = np.asarray(spec.output_tokens[:n], dtype=np.int64)
        if spec.arrival_s is not None:
            arrivals = np.asarray(spec.arrival_s[:n], dtype=float)
    else:
        if n_requests is None:
            raise TraceError(f"dataset {spec.name} needs a number of requests")
        n = n_requests
        if spec.kind == "synthetic":
            inp, out = synthetic_lengths(spec.name, n, seed)
        else:
            inp = np.full(n, spec.input_tokens[0], dtype=np.int64)
            out = np.full(n, spec.output_tokens[0], dtype=np.int64)
    if arrivals is None:
        if qps is not None:
            rng = np.random.default_rng((seed, 1))
            arrivals = np.cumsum(rng.exponential(1.0 / qps, n))
        else:
            arrivals = np.zeros(n)
    return [TraceRequest(i, float(a), int(x), int(y))
            for i, (a, x, y) in enumerate(zip(arrivals.tolist(), inp.tolist(), out.tolist()))]
