"""RL memory mapper on held-out graphs: the shipped policy against the XLA-style and Belady
baselines, random placement and the ILP -- non-compulsory bytes and wall time per mapping --
and the training learning curve.

The held-out problems are :func:`mappers.rl.problem_pool` with seed 12345 (training uses seed
0, so no graph or budget is shared). Criteria of the RL issue: beat the XLA-style baseline on
>= 60% of graphs, close >= 50% of the average XLA-ILP gap, map each graph in < 1 s. The table
is the mapper as shipped (best of 8 rollouts); the deterministic rollout alone is summarised
too.

    python benchmarks/bench_rl.py [--problems 40] [--ilp-node-limit N] [--samples 1]
        [--policy FILE] [--curve CSV] [--plot OUT.png] [--json OUT]
"""
from __future__ import annotations

import argparse
import csv

from _timing import write_results
from mappers import rl


def plot_curve(csv_path: str, out: str, window: int = 100) -> None:
    """Learning curve: rolling median of non-compulsory bytes / baseline bytes per episode,
    and the rolling share of episodes that beat the baseline (a few episodes with a tiny
    baseline make the mean meaningless)."""
    import matplotlib.pyplot as plt
    import numpy as np

    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    steps = np.array([int(r["step"]) for r in rows])
    ratio = np.array([float(r["ratio"]) for r in rows])
    k = max(1, min(window, len(ratio)))
    med = np.array([np.median(ratio[i - k:i]) for i in range(k, len(ratio) + 1)])
    wins = np.convolve((ratio < 1).astype(float), np.ones(k) / k, mode="valid")
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(steps[k - 1:], med, label=f"median of {k} episodes (left)")
    ax.axhline(1.0, color="gray", linestyle="--", label="XLA-style baseline")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("non-compulsory bytes / baseline")
    ax2 = ax.twinx()
    ax2.plot(steps[k - 1:], wins, color="tab:green", alpha=0.7,
             label="share of episodes below the baseline (right)")
    ax2.set_ylim(0, 1)
    ax2.set_ylabel("share beating the baseline")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, loc="upper right", fontsize=8)
    ax.set_title("RL memory mapper: training curve")
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problems", type=int, default=40)
    ap.add_argument("--ilp-node-limit", type=int, default=None,
                    help="branch-and-bound nodes per ILP solve (default: the solver facade's)")
    ap.add_argument("--samples", type=int, default=8,
                    help="best of K rollouts, as --mapper rl (default 8); the deterministic "
                         "rollout alone is reported too")
    ap.add_argument("--policy", help="default: the shipped policy")
    ap.add_argument("--curve", help="training CSV (default: the shipped policy's)")
    ap.add_argument("--plot", default="rl_learning_curve.png")
    ap.add_argument("--json", metavar="OUT")
    args = ap.parse_args()
    pool = rl.problem_pool(args.problems, seed=12345)
    policy = rl.NumpyPolicy.load(args.policy) if args.policy else None
    from archsim.core.solve import limits_from

    rows = rl.evaluate_policy(pool, policy, samples=args.samples, ilp=True,
                              ilp_limits=limits_from(args.ilp_node_limit), timings=True)
    print(f"{'graph':<28} {'ops':>4} {'rl':>10} {'xla':>10} {'belady':>10} {'random':>10} "
          f"{'ilp':>10} {'rl ms':>7} {'ilp s':>6}")
    for r in rows:
        print(f"{r['graph'][:28]:<28} {r['operators']:>4} {r['rl']:>10,} {r['xla']:>10,} "
              f"{r['belady']:>10,} {r['random']:>10,} {r['ilp']:>10,} "
              f"{r['rl_seconds'] * 1e3:>7.1f} {r['ilp_seconds']:>6.2f}")
    s = rl.summarize(rows)
    print(f"best of {args.samples}: " + ", ".join(f"{k} {v:.3f}" for k, v in s.items()))
    det = rl.evaluate_policy(pool, policy, samples=1, timings=True)
    for r, d in zip(det, rows):
        r["ilp"] = d["ilp"]
    s1 = rl.summarize(det)
    print("deterministic rollout: " + ", ".join(f"{k} {v:.3f}" for k, v in s1.items()))
    s = {"best_of_k": s, "deterministic": s1, "samples": args.samples}
    curve = args.curve or str(rl.default_policy_path().with_suffix(".csv"))
    try:
        plot_curve(curve, args.plot)
        print(f"learning curve: {args.plot}")
    except FileNotFoundError:
        print(f"no learning-curve CSV at {curve}")
    write_results(args.json, rows + [{"summary": s}])


if __name__ == "__main__":
    main()
