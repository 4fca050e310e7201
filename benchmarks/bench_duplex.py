"""Time the Duplex models: 1000-request ShareGPT serving runs on `h100`, `duplex` and `bank_pim`
(Mixtral and Llama-3-70B, 4 devices, batch 128) and the whole `archsim validate duplex` sweep.

Each serving case is one `serve(...)` call timed as the median of ``--repeat`` runs after a
warm-up (`_timing.timed`); reported: wall seconds, simulated iterations and the throughput the
run computed.

    python benchmarks/bench_duplex.py              # --repeat N, --json OUT
"""
from __future__ import annotations

import time

from _timing import bench_args, timed, write_results
from archsim.experiments.serving.run import serve

CASES = [(d, m) for m in ("mixtral-8x7b", "llama3-70b") for d in ("h100", "duplex", "bank_pim")]


def main() -> None:
    args = bench_args(__doc__, repeat=1)
    rows = []
    for design, model in CASES:
        wall, run = timed(lambda d=design, m=model: serve(d, m, dataset="sharegpt", batch=128,
                                                          requests=1000, devices=4, seed=0),
                          args.repeat)
        r = run.result
        rows.append({"case": f"serve {design} {model}", "wall_s": wall,
                     "iterations": r.iterations,
                     "throughput_tokens_per_s": r.throughput_tokens_per_s})
    from archsim.validation import duplex as vd

    t0 = time.perf_counter()
    vd.duplex_figures()
    rows.append({"case": "validate duplex (18 configurations x 3 runs)",
                 "wall_s": time.perf_counter() - t0})
    print(f"{'case':<48} {'wall':>8} {'iterations':>10} {'tokens/s (sim)':>15}")
    for r in rows:
        it = f"{r['iterations']:>10,}" if "iterations" in r else f"{'-':>10}"
        tp = f"{r['throughput_tokens_per_s']:>15,.0f}" if "iterations" in r else f"{'-':>15}"
        print(f"{r['case']:<48} {r['wall_s']:>7.2f}s {it} {tp}")
    write_results(args.json, rows)


if __name__ == "__main__":
    main()
