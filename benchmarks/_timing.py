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


def print_rows(rows: list, width: int = 44) -> None:
    """Print benchmark rows (``case``, ``wall_s`` and an optional ``result``) as a table."""
    extra = any("result" in r for r in rows)
    print(f"{'case':<{width}} {'wall':>11}" + ("  result" if extra else ""))
    for r in rows:
        print(f"{r['case']:<{width}} {r['wall_s'] * 1e3:>9.2f}ms"
              + (f"  {r.get('result', '')}" if extra else ""))


def bench_args(doc: str, repeat: int = 5):
    """Parse the common benchmark flags ``--repeat N`` and ``--json OUT``."""
    import argparse

    ap = argparse.ArgumentParser(description=doc,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=repeat)
    ap.add_argument("--json", metavar="OUT")
    return ap.parse_args()
