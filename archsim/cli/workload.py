"""``archsim workload``: a workload's einsums (FLOPs, bytes, op/B) and graph."""
from __future__ import annotations

from pathlib import Path

from archsim.cli.common import PLOT_FORMATS, add_workload_args, load_workload
from archsim.errors import UserError


def run(args) -> int:
    from archsim import workload_report

    cascade = load_workload(args)
    outputs = {"json": args.json, "csv": args.csv, "graph": args.graph}
    for flag, out in outputs.items():
        if out and not Path(out).parent.is_dir():
            raise UserError(f"--{flag} {out}: directory {Path(out).parent} does not exist")
    if args.graph and Path(args.graph).suffix.lower() not in PLOT_FORMATS:
        raise UserError(f"--graph {args.graph}: unsupported figure format; expected one of "
                        f"{', '.join(PLOT_FORMATS)}")
    try:
        if args.json:
            workload_report.write_rows(cascade, args.json, "json")
        if args.csv:
            workload_report.write_rows(cascade, args.csv, "csv")
        if args.graph:
            workload_report.draw_graph(cascade, args.graph)
    except OSError as exc:
        raise UserError(f"cannot write {exc.filename}: {exc.strerror}") from None
    if args.yaml:
        print(cascade.to_yaml(), end="")
    elif not args.quiet:
        print(workload_report.format_workload(cascade))
    return 0


def register(sub) -> None:
    """Add the ``workload`` subcommand to ``sub``."""
    wl = sub.add_parser("workload", help="print a workload's einsums (FLOPs, bytes, op/B), "
                                         "draw its graph")
    add_workload_args(wl, design=False)
    wl.add_argument("--json", metavar="OUT", help="write the per-einsum rows as JSON")
    wl.add_argument("--csv", metavar="OUT", help="write the per-einsum rows as CSV")
    wl.add_argument("--graph", metavar="OUT", help="draw the dependency graph (png/svg/pdf)")
    wl.add_argument("--yaml", action="store_true", help="print the cascade as YAML instead")
    wl.add_argument("--quiet", action="store_true", help="print nothing")
    wl.set_defaults(func=run)
