"""``archsim rl``: train or evaluate the RL memory mapper."""
from __future__ import annotations

from pathlib import Path

from archsim.cli.common import add_limit_args, solve_limits
from archsim.errors import UserError


def _parse_problem_spec(text: str) -> tuple[tuple[str, ...], int]:
    kinds_text, _, count = text.partition(":")
    kinds = tuple(k.strip() for k in kinds_text.split(",") if k.strip())
    bad = [k for k in kinds if k not in ("decoder", "cnn", "random")]
    if not kinds or bad:
        raise UserError(f"--problems {text!r}: expected KINDS[:COUNT] with kinds from decoder, "
                        f"cnn, random, e.g. decoder,cnn,random:128")
    try:
        n = int(count) if count else 128
    except ValueError:
        raise UserError(f"--problems {text!r}: COUNT must be an integer") from None
    if n < 1:
        raise UserError(f"--problems {text!r}: COUNT must be positive")
    return kinds, n


def run(args) -> int:
    import json

    from mappers import rl

    kinds, count = _parse_problem_spec(args.problems)
    for attr in ("out", "log", "json"):
        out = getattr(args, attr, None)
        if out and not Path(out).parent.is_dir():
            raise UserError(f"--{attr} {out}: directory {Path(out).parent} does not exist")
    if args.action == "train":
        if args.steps < 1:
            raise UserError(f"--steps must be positive, found {args.steps}")
        res = rl.train(steps=args.steps, seed=args.seed, problems=count, kinds=kinds,
                       out=args.out, log=args.log, progress=not args.quiet)
        if not args.quiet:
            print(f"trained {res['steps']:,} steps in {res['seconds']:.1f} s "
                  f"({res['episodes']} episodes): {res['policy']}, {res['numpy_policy']}; "
                  f"learning curve {res['log']}")
        return 0
    pool = rl.problem_pool(count, seed=args.seed, kinds=kinds)
    policy = rl.NumpyPolicy.load(args.policy) if args.policy else None
    with_ilp = args.ilp or args.time_limit is not None or args.node_limit is not None
    rows = rl.evaluate_policy(pool, policy, samples=args.samples, ilp=with_ilp,
                              ilp_limits=solve_limits(args), seed=args.seed)
    summary = rl.summarize(rows)
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "summary": summary}, indent=2))
    if not args.quiet:
        cols = ["rl", "xla", "belady", "random"] + (["ilp"] if with_ilp else [])
        print(f"{'graph':<28} {'ops':>4} " + " ".join(f"{c:>12}" for c in cols))
        for r in rows:
            print(f"{r['graph'][:28]:<28} {r['operators']:>4} "
                  + " ".join(f"{r[c]:>12,}" for c in cols))
        print("non-compulsory bytes per mapper; " + ", ".join(
            f"{k} {v:.2f}" for k, v in summary.items()))
    return 0


def register(sub) -> None:
    """Add the ``rl`` subcommand to ``sub``."""
    rl = sub.add_parser("rl", help="train or evaluate the RL memory mapper")
    rl.add_argument("action", choices=["train", "eval"])
    rl.add_argument("--problems", default="decoder,cnn,random:128", metavar="SPEC",
                    help="KINDS[:COUNT]: graph kinds (decoder, cnn, random) and how many "
                         "problems to draw (default decoder,cnn,random:128)")
    rl.add_argument("--steps", type=int, default=500_000, help="train: environment steps "
                                                               "(default 500000)")
    rl.add_argument("--seed", type=int, default=0, help="seed of problems and training")
    rl.add_argument("--out", default="policy.zip", metavar="FILE",
                    help="train: the model (.zip; a NumPy .npz is written beside it)")
    rl.add_argument("--log", metavar="CSV", help="train: learning curve (default OUT.csv)")
    rl.add_argument("--policy", metavar="FILE", help="eval: policy (default: the shipped one)")
    rl.add_argument("--samples", type=int, default=8,
                    help="eval: best of K rollouts (default 8, as --mapper rl)")
    rl.add_argument("--ilp", action="store_true",
                    help="eval: also map every problem with the memory ILP")
    add_limit_args(rl, "eval --ilp")
    rl.add_argument("--json", metavar="OUT", help="eval: write the rows as JSON")
    rl.add_argument("--quiet", action="store_true", help="no progress bar or table")
    rl.set_defaults(func=run)
