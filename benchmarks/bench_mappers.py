"""Memory-mapping benchmark: the ILP against the TFLite-style (Belady) and XLA-style baselines.

Graphs (built in-process, :mod:`mappers.graphs`): decoder blocks of three sizes, ResNet-,
DenseNet- and Inception-like CNNs written as ONNX and imported, and random DAGs of 50, 100 and
200 einsums. Budgets M_R, M_H and M_P as in COSMA (../shared/reference/mappers.md). For every
graph and budget it reports the non-compulsory off-chip bytes of ``belady`` (program order),
``belady`` on the peak-optimal order, ``xla`` and ``ilp`` (traffic objective), the ILP's
status, gap and solve time, and at the end the mean reduction against the best baseline at
each budget.

    python benchmarks/bench_mappers.py [--time-limit S] [--json OUT] [--quick]
"""
from __future__ import annotations

import argparse
import time

from _timing import write_results
from archsim import load_design
from archsim.core.solve import limits_from
from mappers import graphs
from mappers.greedy import belady_schedule, xla_schedule
from mappers.ilp import memory_schedule
from mappers.problem import MappingProblem

DESIGN = ("npu", ["memories.spm.capacity_bytes=4294967296"])


def suite(quick: bool = False):
    """(name, cascade) of the benchmark graphs."""
    out = [("decoder h128 s32", graphs.decoder_block(128, 32, heads=4)),
           ("decoder h256 s64", graphs.decoder_block(256, 64, heads=4)),
           ("resnet-like 4 blocks", graphs.resnet_like(4)),
           ("densenet-like 4 layers", graphs.densenet_like(4)),
           ("inception-like 2 modules", graphs.inception_like(2)),
           ("random 50", graphs.random_dag(50, 1))]
    if not quick:
        out += [("decoder h384 s32", graphs.decoder_block(384, 32, heads=6)),
                ("random 100", graphs.random_dag(100, 2)),
                ("random 200", graphs.random_dag(200, 3))]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--node-limit", type=int, default=None,
                    help="branch-and-bound nodes per solve (default: the facade's 20000)")
    ap.add_argument("--time-limit", type=float, default=None,
                    help="also a wall-clock limit per solve (default none: reproducible)")
    ap.add_argument("--json", metavar="OUT")
    ap.add_argument("--quick", action="store_true", help="the six smaller graphs only")
    args = ap.parse_args()
    design = load_design(*DESIGN)
    rows = []
    print(f"{'graph':<26} {'ops':>4} {'budget':>6} {'bytes':>10} {'belady':>10} "
          f"{'belady-P':>10} {'xla':>10} {'ilp':>10} {'vs best':>8} {'status':>10} "
          f"{'gap':>6} {'ilp s':>7}")
    for name, cas in suite(args.quick):
        base = MappingProblem(cas, design)
        peak_order = None
        for budget in ("MR", "MH", "MP"):
            p = MappingProblem(cas, design, window=base.window)
            if peak_order is None:
                peak_order = [p.index[e] for e in p.peak_optimal_schedule().order]
            p.set_budget(budget)
            cost = {}
            for label, sched in (("belady", belady_schedule(p)),
                                 ("belady-P", belady_schedule(p, peak_order)),
                                 ("xla", xla_schedule(p))):
                cost[label] = p.evaluate(sched).non_compulsory_bytes
            t0 = time.perf_counter()
            s = memory_schedule(p, limits=limits_from(args.node_limit, args.time_limit))
            secs = time.perf_counter() - t0
            cost["ilp"] = p.evaluate(s).non_compulsory_bytes
            best = min(cost["belady"], cost["belady-P"], cost["xla"])
            red = (1 - cost["ilp"] / best) if best else (0.0 if cost["ilp"] == 0 else -1.0)
            gap = s.solver.get("gap")
            rows.append({"graph": name, "operators": p.n, "budget": budget,
                         "budget_bytes": p.budget_bytes, **cost, "best_baseline": best,
                         "reduction_vs_best": red, "status": s.solver["status"],
                         "gap": gap, "nodes": s.solver.get("nodes"), "ilp_seconds": secs})
            print(f"{name:<26} {p.n:>4} {budget:>6} {p.budget_bytes:>10,} {cost['belady']:>10,} "
                  f"{cost['belady-P']:>10,} {cost['xla']:>10,} {cost['ilp']:>10,} "
                  f"{red:>8.1%} {s.solver['status']:>10} "
                  f"{(f'{gap:.1%}' if gap is not None else '-'):>6} {secs:>7.2f}")
    for budget in ("MR", "MH", "MP"):
        rs = [r for r in rows if r["budget"] == budget and r["best_baseline"] > 0]
        if rs:
            mean = sum(r["reduction_vs_best"] for r in rs) / len(rs)
            print(f"{budget}: mean reduction vs the best baseline over {len(rs)} graphs where "
                  f"it spills: {mean:.1%}")
    zero = [r for r in rows if r["budget"] == "MP"]
    print(f"MP: ILP zero on {sum(r['ilp'] == 0 for r in zero)}/{len(zero)} graphs; baselines "
          f"non-zero on {sum(r['best_baseline'] > 0 for r in zero)}")
    write_results(args.json, rows)


if __name__ == "__main__":
    main()
