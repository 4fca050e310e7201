"""Time serving simulation end to end: `archsim.experiments.serving.run.serve` on closed-loop ShareGPT traces.

Each case is one whole `serve(...)` call (design loading, the iteration model, trace generation
and the continuous-batching loop), timed as the median of ``--repeat`` runs after a warm-up run
(`_timing.timed`). Reported per case: wall seconds, simulated iterations, iterations per wall
second, and the throughput (tokens/s) the run computed.

Target: 1000 ShareGPT requests of GPT-3 13B on `neupims` (TP 4, batch 256) under 30 s wall.

    python benchmarks/bench_serve.py               # --repeat N, --json OUT, --no-command
"""
from __future__ import annotations

import argparse
import json
import platform
import time

from _timing import timed
from archsim.experiments.serving.run import serve

MODEL = "gpt3-13b"
TP = 4
TARGET_S = 30.0
# (design, batch, requests, fidelity)
CASES = [
    ("neupims", 256, 1000, "analytical"),
    ("neupims", 512, 1000, "analytical"),
    ("npu", 256, 1000, "analytical"),
    ("npu", 512, 1000, "analytical"),
    ("a100", 256, 1000, "analytical"),
    ("a100", 512, 1000, "analytical"),
]
COMMAND_CASES = [
    ("neupims", 256, 100, "command"),
]


def run_case(design: str, batch: int, requests: int, fidelity: str):
    return serve(design, MODEL, dataset="sharegpt", batch=batch, requests=requests,
                 devices=TP, tp=TP, seed=0, fidelity=fidelity)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=1,
                    help="timed runs per case after one warm-up run (median reported)")
    ap.add_argument("--no-command", action="store_true",
                    help="skip the fidelity=command case(s)")
    ap.add_argument("--json", metavar="OUT")
    args = ap.parse_args()
    cases = CASES + ([] if args.no_command else COMMAND_CASES)
    rows = []
    for design, batch, requests, fidelity in cases:
        t0 = time.perf_counter()
        wall, run = timed(lambda d=design, b=batch, n=requests, f=fidelity: run_case(d, b, n, f),
                          args.repeat)
        total = time.perf_counter() - t0
        res = run.result
        rows.append({"design": design, "model": MODEL, "tp": TP, "batch": batch,
                     "requests": requests, "fidelity": fidelity, "wall_s": wall,
                     "iterations": res.iterations, "iterations_per_s": res.iterations / wall,
                     "throughput_tokens_per_s": res.throughput_tokens_per_s,
                     "case_total_s": total})
        print(f"  {design} batch {batch} {requests} req {fidelity}: {wall:.2f} s", flush=True)

    print(f"\n{MODEL}, TP {TP}, ShareGPT, closed loop (median of {args.repeat} after a warm-up)")
    print(f"{'design':<16} {'batch':>5} {'requests':>8} {'fidelity':<10} {'wall':>8} "
          f"{'iterations':>10} {'iter/s':>9} {'tokens/s (sim)':>15}")
    for r in rows:
        print(f"{r['design']:<16} {r['batch']:>5} {r['requests']:>8} {r['fidelity']:<10} "
              f"{r['wall_s']:>7.2f}s {r['iterations']:>10,} {r['iterations_per_s']:>9,.0f} "
              f"{r['throughput_tokens_per_s']:>15,.0f}")
    target = next(r for r in rows if (r["design"], r["batch"], r["requests"], r["fidelity"])
                  == ("neupims", 256, 1000, "analytical"))
    verdict = "OK" if target["wall_s"] < TARGET_S else "MISSED"
    print(f"\ntarget: 1000-request {MODEL} on neupims (TP {TP}, batch 256) < {TARGET_S:.0f} s wall: "
          f"{target['wall_s']:.2f} s -> {verdict}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": platform.platform(), "python": platform.python_version(),
                       "repeat": args.repeat, "target_s": TARGET_S, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
