"""``archsim sweep``: design-space sweeps and their Pareto plots."""
from __future__ import annotations

from pathlib import Path

from archsim.cli.common import PLOT_FORMATS
from archsim.errors import UserError


def run(args) -> int:
    from archsim.experiments import sweep

    if args.target == "plot":
        if not args.results or not args.x or not args.y:
            raise UserError("sweep plot needs RESULTS, --x and --y")
        out = args.out or str(Path(args.results).with_suffix(".png"))
        if Path(out).suffix.lower() not in PLOT_FORMATS:
            raise UserError(f"--out {out}: unsupported figure format")
        if not Path(out).parent.is_dir():
            raise UserError(f"--out {out}: directory {Path(out).parent} does not exist")
        n = sweep.plot(args.results, args.x, args.y, out, color=args.color,
                       maximize=tuple(args.maximize or ()))
        if not args.quiet:
            print(f"{out}: {n} points on the Pareto front")
        return 0
    if args.results or args.x or args.y or args.color:
        raise UserError("RESULTS, --x, --y and --color belong to `archsim sweep plot`")
    spec = sweep.load_spec(args.target)
    out = args.out or str(Path(args.target).with_suffix(".csv"))
    rep = sweep.run_sweep(spec, out, workers=args.workers, scheduler=args.scheduler,
                          progress=not args.quiet, retry_errors=args.retry_errors)
    if not args.quiet:
        print(f"{rep.path}: {rep.total} points, {rep.skipped} already done, {rep.ran} run "
              f"({rep.failed} failed) in {rep.seconds:.1f} s on {rep.scheduler}")
        if rep.stale:
            print(f"{rep.stale} rows that are not points of this sweep (another model "
                  f"version or spec) moved to {rep.stale_path}")
    return 0


def register(sub) -> None:
    """Add the ``sweep`` subcommand to ``sub``."""
    sw = sub.add_parser("sweep", help="run a design-space sweep (SPEC.yaml), or plot its "
                                      "results (sweep plot RESULTS --x A --y B)")
    sw.add_argument("target", metavar="SPEC.yaml|plot",
                    help="a sweep file to run or resume, or `plot`")
    sw.add_argument("results", nargs="?", help="plot: the results CSV")
    sw.add_argument("--out", metavar="FILE", help="results CSV (default SPEC.csv); plot: the "
                                                   "figure (default RESULTS.png)")
    sw.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    sw.add_argument("--scheduler", metavar="local|tcp://HOST:PORT",
                    help="run on Dask: local starts a LocalCluster, or a scheduler address")
    sw.add_argument("--retry-errors", action="store_true",
                    help="run points that failed before again")
    sw.add_argument("--x", help="plot: x column")
    sw.add_argument("--y", help="plot: y column")
    sw.add_argument("--color", help="plot: color column")
    sw.add_argument("--maximize", action="append", metavar="COLUMN",
                    help="plot: a column to maximise on the Pareto front (default minimise)")
    sw.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    sw.set_defaults(func=run)
