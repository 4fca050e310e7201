"""Time whole-model mapping: `archsim map` on model graphs (see README.md here).

Measures (1) the CLI end to end in a fresh process, as a user runs it, and (2) the in-process
parts: building the model graph, greedy mapping, simulation. The target from issue 3:
`archsim map --design npu --model llama2-7b --phase decode --batch 32 --seq 1024` under 1 s.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time

import dataflow
from _timing import timed
from archsim import load_design, simulate
from mappers import get_mapper

CASES = [
    ("llama2-7b", "decode", 32, 1024, {}),
    ("llama2-70b", "decode", 32, 1024, {}),
    ("mixtral-8x7b", "decode", 32, 1024, {}),
    ("llama3-8b", "mixed", 16, 512, {"kv": [1024] * 8 + [2048] * 8}),
    ("gpt3-175b", "prefill", 4, 1024, {"tp": 8}),
]




def cli_wall(argv: list[str], repeat: int) -> float:
    """Median wall seconds of `archsim ARGV` in a fresh Python process (imports included)."""
    cmd = [sys.executable, "-m", "archsim.cli"] + argv + ["--quiet"]
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", metavar="OUT")
    args = ap.parse_args()
    design = load_design("npu")
    greedy = get_mapper("greedy")
    rows = []
    for model, phase, batch, seq, extra in CASES:
        kw = dict(extra)
        build_s, cascade = timed(
            lambda m=model, p=phase, b=batch, s=seq, k=kw: dataflow.model_graph(m, p, b, s, **k),
            args.repeat)
        map_s, mapping = timed(lambda c=cascade: greedy(c, design), args.repeat)
        sim_s, result = timed(lambda c=cascade, mp=mapping: simulate(design, c, mp), args.repeat)
        rows.append({"model": model, "phase": phase, "batch": batch, "seq": seq, **kw,
                     "einsums": len(cascade.einsums),
                     "layers": cascade.repeats[0].count if cascade.repeats else 1,
                     "build_s": build_s, "map_s": map_s, "simulate_s": sim_s,
                     "cycles": result.cycles})
    argv = ["map", "--design", "npu", "--model", "llama2-7b", "--phase", "decode", "--batch",
            "32", "--seq", "1024"]
    cli_s = cli_wall(argv, args.repeat)

    print(f"{'model':<14} {'phase':<8} {'batch':>5} {'seq':>5} {'einsums':>7} {'layers':>6} "
          f"{'build':>9} {'map':>9} {'simulate':>9} {'cycles':>16}")
    for r in rows:
        print(f"{r['model']:<14} {r['phase']:<8} {r['batch']:>5} {r['seq']:>5} "
              f"{r['einsums']:>7} {r['layers']:>6} {r['build_s'] * 1e3:>7.1f}ms "
              f"{r['map_s'] * 1e3:>7.1f}ms {r['simulate_s'] * 1e3:>7.1f}ms {r['cycles']:>16,}")
    print(f"\n`archsim {' '.join(argv)}`: {cli_s:.3f} s wall in a fresh process "
          f"(median of {args.repeat}; target < 1 s)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": platform.platform(), "python": platform.python_version(),
                       "rows": rows, "cli_map_llama2_7b_decode_s": cli_s}, f, indent=2)


if __name__ == "__main__":
    main()
