"""Shared timing helper of the benchmark scripts."""
from __future__ import annotations

import statistics
import time


def timed(fn, repeat: int) -> tuple[float, object]:
    """Median wall time in seconds over ``repeat`` runs after one warm-up, and the last result."""
    out = fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def write_results(path: str | None, rows: list) -> None:
    """Write benchmark rows as JSON with the machine they ran on (nothing when ``path`` is None)."""
    import json
    import platform

    if not path:
        return
    meta = {"python": platform.python_version(), "machine": platform.machine()}
    with open(path, "w") as f:
        json.dump({"meta": meta, "results": rows}, f, indent=2)
