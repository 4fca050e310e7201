"""RL memory mapper on held-out graphs: the shipped policy against the XLA-style and Belady
baselines, random placement and the ILP -- non-compulsory bytes and wall time per mapping --
and the training learning curve.

The held-out problems are :func:`mappers.rl.problem_pool` with seed 12345 (training uses seed
0, so no graph or budget is shared). Criteria of the RL issue: beat the XLA-style baseline on
>= 60% of graphs, close >= 50% of the average XLA-ILP gap, map each graph in < 1 s.

    python benchmarks/bench_rl.py [--problems 40] [--ilp-time-limit 30] [--samples 1]
        [--policy FILE] [--curve CSV] [--plot OUT.png] [--json OUT]
"""
from __future__ import annotations

import argparse
import csv

from _timing import write_results
from mappers import rl


def plot_curve(csv_path: str, out: str, window: int = 200) -> None:
    """Learning curve: rolling mean of non-compulsory bytes / baseline bytes per episode."""
    import matplotlib.pyplot as plt
    import numpy as np

    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    steps = np.array([int(r["step"]) for r in rows])
    ratio = np.array([float(r["ratio"]) for r in rows])
    k = max(1, min(window, len(ratio)))
    smooth = np.convolve(ratio, np.ones(k) / k, mode="valid")
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(steps[k - 1:], smooth, label=f"rolling mean of {k} episodes")
    ax.axhline(1.0, color="gray", linestyle="--", label="XLA-style baseline")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("non-compulsory bytes / baseline")
    ax.set_title("RL memory mapper: training curve")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problems", type=int, default=40)
    ap.add_argument("--ilp-time-limit", type=float, default=30.0)
    ap.add_argument("--samples", type=int, default=1)
    ap.add_argument("--policy", help="default: the shipped policy")
    ap.add_argument("--curve", help="training CSV (default: the shipped policy's)")
    ap.add_argument("--plot", default="rl_learning_curve.png")
    ap.add_argument("--json", metavar="OUT")
    args = ap.parse_args()
    pool = rl.problem_pool(args.problems, seed=12345)
    policy = rl.NumpyPolicy.load(args.policy) if args.policy else None
    rows = rl.evaluate_policy(pool, policy, samples=args.samples,
                              ilp_time_limit_s=args.ilp_time_limit)
    print(f"{'graph':<28} {'ops':>4} {'rl':>10} {'xla':>10} {'belady':>10} {'random':>10} "
          f"{'ilp':>10} {'rl ms':>7} {'ilp s':>6}")
    for r in rows:
        print(f"{r['graph'][:28]:<28} {r['operators']:>4} {r['rl']:>10,} {r['xla']:>10,} "
              f"{r['belady']:>10,} {r['random']:>10,} {r['ilp']:>10,} "
              f"{r['rl_seconds'] * 1e3:>7.1f} {r['ilp_seconds']:>6.2f}")
    s = rl.summarize(rows)
    print(", ".join(f"{k} {v:.3f}" for k, v in s.items()))
    curve = args.curve or str(rl.default_policy_path().with_suffix(".csv"))
    try:
        plot_curve(curve, args.plot)
        print(f"learning curve: {args.plot}")
    except FileNotFoundError:
        print(f"no learning-curve CSV at {curve}")
    write_results(args.json, rows + [{"summary": s}])


if __name__ == "__main__":
    main()
