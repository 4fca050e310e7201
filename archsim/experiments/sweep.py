"""Design-space exploration: ``archsim sweep SPEC.yaml``.

A sweep file::

    design: neupims                 # built-in name or path
    set: []                         # base overrides (as --set), optional
    workload: {model: gpt3-7b, phase: decode, batch: 32, seq: 1024}
    mapper: greedy                  # optional (general designs)
    axes:                           # workload field or design key path -> values
      units.sa.rows: [64, 128, 256]
      units.sa.cols: [64, 128, 256]
      batch: [8, 32, 128]
    sample: {method: lhs, points: 20, seed: 0}   # optional; default: the full grid
    objectives: [cycles, seconds, energy_pj, throughput]

Workload fields: ``model phase batch seq kv tp dtype layers scope`` and, for RDU designs,
``sockets fusion orchestration``. Every other axis key is a design key path, applied like
``--set``. A value may also be a mapping that sets several keys together (keys that must agree,
such as HBM channels, capacity and bandwidth); its ``label`` names it in the results::

    axes:
      hbm:
        - {label: 512, memories.hbm.dram.organization.channels: 16,
           memories.hbm.capacity_bytes: 17179869184, memories.hbm.bandwidth_bytes_per_s: 5.12e+11}

Objectives are numeric fields of the simulate JSON (dotted paths such as
``memory.hbm.read_bytes`` or ``units.sa.utilization`` reach nested ones). ``throughput`` is
tokens per second: batch x seq tokens for a prefill, batch for a decode.

Every point is keyed by a hash of (the resolved design, the workload, the mapper, the model
version of the design's family, the archsim version). Results stream into one CSV as points
finish, one row per point (key, axes, objectives, model version, status, error), flushed row by
row. A re-run skips every point whose key already has a row, so a killed sweep resumes without
recomputing or losing finished points; a point whose model changed since (another model
version, so another key) runs again. A torn last line from a kill is dropped. A failing point
gets a row with its error, and the sweep goes on. When a sweep finishes, the file is rewritten
in the spec's point order, so the same spec gives the same bytes however the points were
scheduled; rows whose key is not a point of this spec (an older model version, another spec)
move to ``RESULTS.stale.csv`` beside it. No wall-clock time is written (timings belong to
``benchmarks/bench_sweep.py``). Points run in local worker processes (joblib/loky), or on a
Dask cluster (``scheduler="local"`` starts a LocalCluster, ``tcp://host:port`` connects to
one). A lost local worker is replaced and its points are run again.
"""
from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from archsim.errors import UserError

WORKLOAD_FIELDS = ("model", "phase", "batch", "seq", "kv", "tp", "dtype", "layers", "scope",
                   "sockets", "fusion", "orchestration")
SPEC_KEYS = {"design", "set", "workload", "mapper", "axes", "sample", "objectives",
             "description"}
BASE_COLUMNS = ("key", "model_version", "status", "error")


@dataclass
class SweepSpec:
    """A validated sweep file."""

    design: str
    overrides: list[str]
    workload: dict[str, Any]
    mapper: str
    axes: dict[str, list]
    objectives: list[str]
    sample: dict[str, Any] | None = None
    source: str = "<sweep>"
    description: str = ""

    def points(self) -> list[dict[str, Any]]:
        """Axis name -> value for every point: the grid, or ``sample`` points of it."""
        names = list(self.axes)
        values = [self.axes[n] for n in names]
        if not self.sample:
            return [dict(zip(names, combo)) for combo in itertools.product(*values)]
        method = self.sample["method"]
        n = int(self.sample["points"])
        rng = np.random.default_rng(int(self.sample.get("seed", 0)))
        if method == "random":
            idx = [rng.integers(len(v), size=n) for v in values]
        else:                                       # Latin hypercube over the value lists
            idx = []
            for v in values:
                strata = (rng.permutation(n) + rng.random(n)) / n
                idx.append(np.minimum((strata * len(v)).astype(int), len(v) - 1))
        return [{name: values[j][int(idx[j][i])] for j, name in enumerate(names)}
                for i in range(n)]

    @property
    def columns(self) -> list[str]:
        """CSV header."""
        return ["key", *self.axes, *self.objectives, "model_version", "status", "error"]


def load_spec(path: str | Path) -> SweepSpec:
    """Read and check a sweep file; errors name the file, the key and what was expected."""
    from dataflow.yamlio import FormatError, load_yaml_strict

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: sweep file not found")
    try:
        data = load_yaml_strict(path, filename=str(path))
    except FormatError as exc:
        raise UserError(str(exc)) from None
    src = str(path)
    if not isinstance(data, dict):
        raise UserError(f"{src}: expected a mapping with keys design, workload, axes, "
                        f"objectives")
    unknown = set(data) - SPEC_KEYS
    if unknown:
        raise UserError(f"{src}: unknown key {sorted(unknown)[0]!r}; expected one of "
                        f"{', '.join(sorted(SPEC_KEYS))}")
    for key in ("design", "axes", "objectives"):
        if key not in data:
            raise UserError(f"{src}: missing required key {key!r}")
    if not isinstance(data["design"], str):
        raise UserError(f"{src}: design: expected a design name or path")
    workload = data.get("workload") or {}
    if not isinstance(workload, dict):
        raise UserError(f"{src}: workload: expected a mapping of {', '.join(WORKLOAD_FIELDS)}")
    bad = set(workload) - set(WORKLOAD_FIELDS)
    if bad:
        raise UserError(f"{src}: workload.{sorted(bad)[0]}: unknown field; expected one of "
                        f"{', '.join(WORKLOAD_FIELDS)}")
    axes = data["axes"]
    if not isinstance(axes, dict) or not axes:
        raise UserError(f"{src}: axes: expected a mapping of at least one axis to a list of "
                        f"values")
    for name, vals in axes.items():
        if not isinstance(vals, list) or not vals:
            raise UserError(f"{src}: axes.{name}: expected a non-empty list of values, found "
                            f"{vals!r}")
    objectives = data["objectives"]
    if isinstance(objectives, str):
        objectives = [objectives]
    if not isinstance(objectives, list) or not objectives or \
            not all(isinstance(o, str) for o in objectives):
        raise UserError(f"{src}: objectives: expected a list of result fields, e.g. "
                        f"[cycles, seconds, energy_pj, throughput]")
    sample = data.get("sample")
    if sample is not None:
        if not isinstance(sample, dict) or sample.get("method") not in ("random", "lhs") or \
                not isinstance(sample.get("points"), int) or sample["points"] < 1:
            raise UserError(f"{src}: sample: expected {{method: random|lhs, points: N, "
                            f"seed: S}}, found {sample!r}")
        extra = set(sample) - {"method", "points", "seed"}
        if extra:
            raise UserError(f"{src}: sample.{sorted(extra)[0]}: unknown key; expected method, "
                            f"points, seed")
    overrides = data.get("set") or []
    if not isinstance(overrides, list):
        raise UserError(f"{src}: set: expected a list of path=value overrides")
    mapper = data.get("mapper", "greedy")
    if not isinstance(mapper, str):
        raise UserError(f"{src}: mapper: expected a mapper name")
    clash = set(axes) & set(objectives)
    if clash:
        raise UserError(f"{src}: {sorted(clash)[0]!r} is both an axis and an objective")
    spec = SweepSpec(data["design"], [str(o) for o in overrides], dict(workload), mapper,
                     {k: list(v) for k, v in axes.items()}, list(objectives), sample, src,
                     str(data.get("description", "")))
    # fail early on a design that does not load (before any worker starts)
    from archsim.spec import load_design

    load_design(spec.design, spec.overrides)
    return spec


# --------------------------------------------------------------------------- one point
def _format_override(path: str, value: Any) -> str:
    return f"{path}={json.dumps(value) if not isinstance(value, str) else value}"


def point_setup(spec: SweepSpec, point: dict[str, Any]):
    """(design, workload dict) of a point; raises on a bad design or value."""
    from archsim.spec import load_design

    workload = dict(spec.workload)
    overrides = list(spec.overrides)
    for name, value in point.items():
        # a mapping value sets several keys together (``label`` names it in the results)
        items = ({k: v for k, v in value.items() if k != "label"}.items()
                 if isinstance(value, dict) else [(name, value)])
        for key, val in items:
            if key in WORKLOAD_FIELDS:
                workload[key] = val
            else:
                overrides.append(_format_override(key, val))
    return load_design(spec.design, overrides), workload


def axis_cell(value: Any) -> Any:
    """How an axis value appears in the results: a linked value by its ``label`` (or as
    JSON), a plain value as itself."""
    if isinstance(value, dict):
        return value.get("label", json.dumps(value, sort_keys=True))
    return value


def _model_version(spec: SweepSpec, design=None) -> str:
    """``family-N`` of the model that answers for ``design`` (None: a point whose design
    does not load; the sweep's base design, which :func:`load_spec` checked, decides)."""
    from archsim.core.identity import model_version
    from archsim.families import family_for
    from archsim.spec import load_design

    return model_version(family_for(design or load_design(spec.design, spec.overrides)).name)


def point_key(spec: SweepSpec, point: dict[str, Any]) -> str:
    """Hash of (resolved design, workload, mapper, model version, archsim version); a point
    whose design does not load hashes its raw overrides instead."""
    from archsim import __version__

    try:
        design, workload = point_setup(spec, point)
        ident = design.hash
    except Exception:                              # noqa: BLE001 - recorded as an error row
        design = None
        workload = dict(spec.workload, **{k: v for k, v in point.items()
                                         if k in WORKLOAD_FIELDS})
        ident = json.dumps([spec.design, spec.overrides, sorted(
            (k, v) for k, v in point.items() if k not in WORKLOAD_FIELDS)], default=str)
    text = json.dumps({"design": ident, "workload": workload, "mapper": spec.mapper,
                       "model_version": _model_version(spec, design),
                       "version": __version__}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def simulate_point(design, workload: dict[str, Any], mapper: str = "greedy") -> dict[str, Any]:
    """The simulate JSON of a workload on a design (through :func:`archsim.api.simulate`,
    whichever family answers), plus ``throughput`` (tokens/s)."""
    import dataflow

    from archsim import api

    wl = dict(workload)
    model = wl.pop("model", None)
    if model is None:
        raise UserError("workload.model is required")
    phase = wl.get("phase")
    batch = int(wl.get("batch", 1))
    seq = int(wl.get("seq", 1024))
    family = api.family_for(design, model).name
    if family == "rdu":
        kw = {k: wl[k] for k in ("sockets", "fusion", "orchestration", "dtype", "layers",
                                 "scope", "kv") if k in wl}
        d = api.simulate(design, model, phase=phase, batch=batch, seq=seq, **kw).to_dict()
    elif family == "spatial":
        d = api.simulate(design, model, seq=seq, batch=batch,
                         scope=wl.get("scope", "model")).to_dict()
    else:
        cas = dataflow.model_graph(model, phase, batch, seq, wl.get("kv"),
                                   tp=int(wl.get("tp", 1)), dtype=wl.get("dtype", "fp16"),
                                   layers=wl.get("layers"), scope=wl.get("scope", "model"))
        d = api.simulate(design, cas, mapper=mapper).to_dict(timeline=False)
        phase = phase or ("decode" if "decode" in cas.name else "prefill")
    tokens = batch * (seq if phase == "prefill" else 1)
    secs = d.get("seconds") or 0.0
    d.setdefault("throughput", tokens / secs if secs else 0.0)
    return d


def _lookup(d: dict, path: str):
    node: Any = d
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(path)
        node = node[part]
    return node


def run_point(spec: SweepSpec, point: dict[str, Any], key: str) -> dict[str, Any]:
    """Evaluate one point; never raises: failures become a row with ``status: error``."""
    row: dict[str, Any] = {"key": key, **{n: axis_cell(v) for n, v in point.items()}}
    try:
        design, workload = point_setup(spec, point)
        row["model_version"] = _model_version(spec, design)
        d = simulate_point(design, workload, spec.mapper)
        for obj in spec.objectives:
            try:
                value = _lookup(d, obj)
            except KeyError:
                raise UserError(f"objective {obj!r} is not a field of the result (fields: "
                                f"{', '.join(k for k, v in d.items() if isinstance(v, (int, float)))})"
                                ) from None
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise UserError(f"objective {obj!r} is not numeric ({value!r})")
            row[obj] = value
        row["status"], row["error"] = "ok", ""
    except Exception as exc:                       # noqa: BLE001 - recorded, sweep goes on
        row["status"] = "error"
        row["error"] = " ".join(f"{type(exc).__name__}: {exc}".split())[:500]
        row.setdefault("model_version", _model_version(spec))
    return row


def _run_chunk(spec: SweepSpec, items: Sequence[tuple[dict, str]]) -> list[dict[str, Any]]:
    return [run_point(spec, p, k) for p, k in items]


# --------------------------------------------------------------------------- results file
def read_rows(path: str | Path, repair: bool = False) -> list[dict[str, str]]:
    """Rows of a results CSV (strings). A torn last line (from a killed sweep) is dropped;
    with ``repair`` the file is rewritten without it."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        return []
    text = path.read_text()
    lines = text.splitlines(keepends=True)
    if not lines:
        return []
    header = next(csv.reader([lines[0]]))
    good, dropped = [lines[0]], 0
    for line in lines[1:]:
        complete = line.endswith("\n")
        fields = next(csv.reader([line])) if line.strip() else []
        if not complete or len(fields) != len(header) or \
                fields[header.index("status")] not in ("ok", "error"):
            dropped += 1
            continue
        good.append(line)
    if dropped and repair:
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text("".join(good))
        os.replace(tmp, path)
    return list(csv.DictReader(io.StringIO("".join(good))))


@dataclass
class SweepReport:
    """What a sweep did: points in total, skipped (already in the file), run, failed."""

    path: str
    total: int
    skipped: int
    ran: int
    failed: int
    seconds: float
    scheduler: str
    keys_run: list[str] = field(default_factory=list)
    stale: int = 0                   # rows moved to the .stale.csv file (not this spec's)
    stale_path: str | None = None


def run_sweep(spec: SweepSpec | str | Path, out: str | Path, *, workers: int = 2,
              scheduler: str | None = None, progress: bool = True,
              retry_errors: bool = False, chunk: int | None = None) -> SweepReport:
    """Run (or resume) a sweep; rows are appended to ``out`` as points finish."""
    if not isinstance(spec, SweepSpec):
        spec = load_spec(spec)
    if workers < 1:
        raise UserError(f"--workers must be positive, found {workers}")
    out = Path(out)
    if not out.parent.is_dir():
        raise UserError(f"--out {out}: directory {out.parent} does not exist")
    points = spec.points()
    keyed = []
    seen = set()
    for p in points:
        k = point_key(spec, p)
        if k not in seen:                         # a sampled duplicate is one point
            seen.add(k)
            keyed.append((p, k))
    existing = read_rows(out, repair=True)
    if existing:
        header = list(existing[0].keys())
        if header != spec.columns:
            raise UserError(f"{out}: its columns ({', '.join(header)}) are not this sweep's "
                            f"({', '.join(spec.columns)}); write to another file")
    if retry_errors and any(r["status"] == "error" for r in existing):
        keep = [r for r in existing if r["status"] == "ok"]
        _rewrite(out, spec.columns, keep)
        existing = keep
    done = {r["key"] for r in existing}
    pending = [(p, k) for p, k in keyed if k not in done]
    t0 = time.perf_counter()
    new_file = not out.exists() or out.stat().st_size == 0
    f = open(out, "a", newline="")
    writer = csv.DictWriter(f, fieldnames=spec.columns, extrasaction="ignore")
    if new_file:
        writer.writeheader()
        f.flush()
    bar = None
    if progress and pending:
        from tqdm import tqdm

        bar = tqdm(total=len(pending), unit="point", desc="sweep")
    failed, keys_run = 0, []

    def emit(row: dict[str, Any]) -> None:
        nonlocal failed
        writer.writerow({c: _cell(row.get(c, "")) for c in spec.columns})
        f.flush()
        os.fsync(f.fileno())
        keys_run.append(row["key"])
        failed += row["status"] == "error"
        if bar is not None:
            bar.update(1)

    sched = "local"
    try:
        if scheduler:
            sched = _run_dask(spec, pending, workers, scheduler, emit)
        else:
            _run_local(spec, pending, workers, emit, chunk)
    finally:
        f.close()
        if bar is not None:
            bar.close()
    stale, stale_path = canonicalize(out, spec.columns, [k for _, k in keyed])
    return SweepReport(str(out), len(keyed), len(keyed) - len(pending), len(keys_run), failed,
                       time.perf_counter() - t0, sched, keys_run, stale, stale_path)


def stale_path_of(out: str | Path) -> Path:
    """Where rows that are not points of the current spec go: ``RESULTS.stale.csv``."""
    out = Path(out)
    return out.with_name(out.stem + ".stale" + out.suffix)


def canonicalize(out: str | Path, columns: Sequence[str],
                 keys: Sequence[str]) -> tuple[int, str | None]:
    """Rewrite ``out`` with one row per key of ``keys``, in that order (the first row of a
    key wins); rows of other keys are appended to the stale file. Returns (rows moved, stale
    file or None). The rewrite is atomic (a temporary file, then a rename)."""
    out = Path(out)
    rows = read_rows(out)
    by_key: dict[str, dict] = {}
    stale = []
    wanted = set(keys)
    for r in rows:
        if r["key"] in wanted:
            by_key.setdefault(r["key"], r)
        else:
            stale.append(r)
    _rewrite(out, columns, [by_key[k] for k in keys if k in by_key])
    if not stale:
        return 0, None
    sp = stale_path_of(out)
    new = not sp.exists() or sp.stat().st_size == 0
    with open(sp, "a", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="ignore")
        if new:
            w.writeheader()
        for r in stale:
            w.writerow(r)
        fh.flush()
        os.fsync(fh.fileno())
    return len(stale), str(sp)


def _cell(v: Any) -> Any:
    if isinstance(v, float):
        return repr(v)
    return v


def _rewrite(path: Path, columns: Sequence[str], rows: Iterable[dict]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(columns))
        w.writeheader()
        for r in rows:
            w.writerow(r)
    os.replace(tmp, path)


def _run_local(spec: SweepSpec, pending, workers: int, emit, chunk: int | None) -> None:
    """joblib/loky worker processes; results arrive as chunks finish. A lost worker
    (killed process) breaks the pool: the points not yet written run again on a new pool."""
    if not pending:
        return
    if workers == 1:
        for p, k in pending:
            emit(run_point(spec, p, k))
        return
    from joblib import Parallel, delayed

    size = chunk or max(1, min(16, math.ceil(len(pending) / (workers * 8))))
    todo = list(pending)
    for _attempt in range(3):
        written = set()
        chunks = [todo[i:i + size] for i in range(0, len(todo), size)]
        try:
            par = Parallel(n_jobs=workers, backend="loky", return_as="generator_unordered")
            for rows in par(delayed(_run_chunk)(spec, c) for c in chunks):
                for row in rows:
                    emit(row)
                    written.add(row["key"])
            return
        except Exception as exc:                   # a worker died: resume the rest
            if type(exc).__name__ not in ("TerminatedWorkerError", "BrokenProcessPool"):
                raise
            todo = [(p, k) for p, k in todo if k not in written]
    raise UserError("sweep: worker processes kept dying; the finished points are saved, run "
                    "the sweep again to resume")


def _run_dask(spec: SweepSpec, pending, workers: int, scheduler: str, emit) -> str:
    """Run the points on a Dask cluster (``local``: a LocalCluster of ``workers`` processes;
    else the address of a scheduler). Dask reschedules the tasks of a lost worker."""
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise UserError("--scheduler needs dask[distributed] (pip install 'archsim[dask]')"
                        ) from None
    if scheduler == "local":
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
        name = f"dask LocalCluster ({workers} workers)"
    elif scheduler.startswith("tcp://"):
        cluster = None
        try:
            client = Client(scheduler, timeout="10s")
        except OSError as exc:
            raise UserError(f"--scheduler {scheduler}: cannot connect ({exc})") from None
        name = f"dask {scheduler}"
    else:
        raise UserError(f"--scheduler {scheduler!r}: expected local or tcp://HOST:PORT")
    try:
        if pending:
            futures = [client.submit(run_point, spec, p, k, key=f"point-{k}", pure=False)
                       for p, k in pending]
            for fut in as_completed(futures):
                emit(fut.result())
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return name


# --------------------------------------------------------------------------- analysis
def load_results(path: str | Path, as_frame: bool | None = None):
    """Rows of a results CSV with numbers parsed: a pandas DataFrame when pandas is installed
    (or ``as_frame=True``), else a list of dicts."""
    rows = []
    for r in read_rows(path):
        rows.append({k: _parse(v) if k not in ("key", "status", "error") else v
                     for k, v in r.items()})
    if as_frame is None:
        try:
            import pandas  # noqa: F401
            as_frame = True
        except ImportError:
            as_frame = False
    if as_frame:
        import pandas as pd

        return pd.DataFrame(rows)
    return rows


def _parse(v: str):
    if v == "":
        return None
    for conv in (int, float):
        try:
            return conv(v)
        except ValueError:
            continue
    return v


def pareto(rows: Sequence[dict], objectives: dict[str, str]) -> list[dict]:
    """The non-dominated rows (status ok) for ``objectives``: name -> ``min`` or ``max``."""
    ok = [r for r in rows if r.get("status") == "ok" and
          all(isinstance(r.get(o), (int, float)) for o in objectives)]
    if not ok:
        return []
    sign = np.array([1.0 if d == "min" else -1.0 for d in objectives.values()])
    vals = np.array([[float(r[o]) for o in objectives] for r in ok]) * sign
    keep = []
    for i, v in enumerate(vals):
        dominated = np.any(np.all(vals <= v, axis=1) & np.any(vals < v, axis=1))
        if not dominated:
            keep.append(ok[i])
    return keep


def plot(path: str | Path, x: str, y: str, out: str | Path, color: str | None = None,
         maximize: Sequence[str] = ()) -> int:
    """Scatter ``y`` against ``x`` (colored by ``color``) with the Pareto front; returns the
    number of front points."""
    import matplotlib.pyplot as plt

    rows = load_results(path, as_frame=False)
    if not rows:
        raise UserError(f"{path}: no results")
    for col in (x, y) + ((color,) if color else ()):
        if col not in rows[0]:
            raise UserError(f"{path}: no column {col!r}; columns: {', '.join(rows[0])}")
    ok = [r for r in rows if r["status"] == "ok"]
    if not ok:
        raise UserError(f"{path}: no successful points to plot")
    fig, ax = plt.subplots(figsize=(7, 5))
    xs = [r[x] for r in ok]
    ys = [r[y] for r in ok]
    if color:
        cs = [r[color] for r in ok]
        numeric = all(isinstance(c, (int, float)) for c in cs)
        if numeric:
            sc = ax.scatter(xs, ys, c=cs, cmap="viridis", s=18)
            fig.colorbar(sc, ax=ax, label=color)
        else:
            for val in sorted(set(map(str, cs))):
                sel = [i for i, c in enumerate(cs) if str(c) == val]
                ax.scatter([xs[i] for i in sel], [ys[i] for i in sel], s=18,
                           label=f"{color}={val}")
            ax.legend(fontsize=8)
    else:
        ax.scatter(xs, ys, s=18)
    front = pareto(ok, {x: "max" if x in maximize else "min",
                        y: "max" if y in maximize else "min"})
    front.sort(key=lambda r: r[x])
    ax.plot([r[x] for r in front], [r[y] for r in front], "r-o", markersize=4,
            label="Pareto front")
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.legend(fontsize=8)
    ax.set_title(f"{Path(path).name}: {len(ok)} points, {len(front)} on the front")
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return len(front)
