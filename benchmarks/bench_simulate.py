"""Time the simulator: one big GEMM and a random 1000-einsum cascade (see README.md here)."""
from __future__ import annotations

import argparse

import dataflow
from _timing import timed, write_results
from archsim import load_design, simulate

SCALESIM_WALL_S = {"ws": 211.07, "os": 301.74, "is": 205.87}  # reference CSV, same GEMM, 128x128




def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--json", metavar="OUT")
    args = ap.parse_args()

    rows = []
    design = load_design("sa128")
    gemm = dataflow.Cascade.from_text(["Z[m,n] = A[m,k] * B[k,n]"],
                                      {"m": 1024, "n": 4096, "k": 1024}, name="gemm")
    t, res = timed(lambda: simulate(design, gemm), args.repeat)
    rows.append({"benchmark": "gemm_1024x4096x1024", "seconds": t, "cycles": res.cycles,
                 "speedup_vs_scalesim_ws": SCALESIM_WALL_S["ws"] / t})

    def with_load():
        d = load_design("sa128")
        c = dataflow.Cascade.from_text(["Z[m,n] = A[m,k] * B[k,n]"],
                                       {"m": 1024, "n": 4096, "k": 1024}, name="gemm")
        return simulate(d, c)

    t, res = timed(with_load, args.repeat)
    rows.append({"benchmark": "gemm_1024x4096x1024_with_load", "seconds": t, "cycles": res.cycles})

    big = dataflow.random_cascade(1000, seed=0, max_rank_size=256)
    t, res = timed(lambda: simulate(design, big), max(3, args.repeat // 5))
    rows.append({"benchmark": "random_1000_einsums", "seconds": t, "cycles": res.cycles,
                 "einsums": len(big.einsums)})

    print(f"{'benchmark':<32} {'median':>12} {'cycles':>14}  note")
    for r in rows:
        note = ""
        if "speedup_vs_scalesim_ws" in r:
            note = f"{r['speedup_vs_scalesim_ws']:,.0f}x faster than SCALE-Sim v3 (211 s)"
        print(f"{r['benchmark']:<32} {r['seconds'] * 1e3:>9.2f} ms {r['cycles']:>14,}  {note}")
    write_results(args.json, rows)


if __name__ == "__main__":
    main()
