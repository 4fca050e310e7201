"""A 1000-point analytical sweep on neupims: 10 systolic-array sizes x 10 HBM configurations
(channels, capacity and bandwidth together) x 10 batch sizes of a GPT-3 7B decode step, run
with ``archsim.experiments.sweep`` on local worker processes (the RDU issue's target: <= 2 minutes on 2
cores), then resumed (nothing to run) to show the cache.

    python benchmarks/bench_sweep.py [--workers 2] [--scheduler local] [--json OUT]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import yaml

from _timing import write_results
from archsim.experiments import sweep


def spec_text() -> str:
    """The sweep file."""
    hbm = []
    for ch in (8, 12, 16, 20, 24, 28, 32, 40, 48, 64):
        hbm.append({"label": ch * 32, "memories.hbm.dram.organization.channels": ch,
                    "memories.hbm.capacity_bytes": ch * 2**30,
                    "memories.hbm.bandwidth_bytes_per_s": ch * 3.2e10})
    return yaml.safe_dump({
        "design": "neupims",
        "workload": {"model": "gpt3-7b", "phase": "decode", "batch": 32, "seq": 1024,
                     "tp": 4},
        "axes": {"units.sa.rows": [16, 32, 48, 64, 96, 128, 160, 192, 224, 256],
                 "hbm": hbm,
                 "batch": [1, 2, 4, 8, 16, 32, 64, 96, 128, 256]},
        "objectives": ["cycles", "seconds", "energy_pj", "throughput"]}, sort_keys=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--scheduler")
    ap.add_argument("--json", metavar="OUT")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "neupims.yaml"
        spec.write_text(spec_text())
        out = Path(tmp) / "neupims.csv"
        t0 = time.perf_counter()
        rep = sweep.run_sweep(sweep.load_spec(spec), out, workers=args.workers,
                              scheduler=args.scheduler, progress=True)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = sweep.run_sweep(sweep.load_spec(spec), out, workers=args.workers,
                                scheduler=args.scheduler, progress=False)
        resume = time.perf_counter() - t0
        rows = sweep.load_results(out, as_frame=False)
        front = sweep.pareto(rows, {"seconds": "min", "energy_pj": "min"})
    print(f"{rep.total} points on {rep.scheduler}: {first:.1f} s ({rep.failed} failed); "
          f"re-run skipped {again.skipped} and ran {again.ran} in {resume:.2f} s; "
          f"{len(front)} points on the seconds/energy Pareto front")
    write_results(args.json, [{"points": rep.total, "seconds": first, "failed": rep.failed,
                               "resume_seconds": resume, "workers": args.workers,
                               "scheduler": rep.scheduler}])


if __name__ == "__main__":
    main()
