"""``archsim validate``: models against the papers and reference simulators."""
from __future__ import annotations

import sys

from archsim.errors import UserError


def _report_figures(figs, text: str, json_path) -> int:
    """Print a paper comparison, write its JSON; exit 1 if a toleranced figure is off."""
    from archsim.validation.neupims import write_json

    print(text)
    if json_path:
        write_json(figs, json_path)
    bad = [f for f in figs if f.ok is False]
    if bad:
        print(f"FAIL: {', '.join(f.name for f in bad)} outside tolerance", file=sys.stderr)
        return 1
    return 0


def run(args) -> int:
    from archsim.validation import scalesim as validate

    if args.target == "scalesim":
        if not args.csv:
            raise UserError("validate scalesim needs --csv FILE (columns M,N,K,rows,cols,"
                            "dataflow,compute_cycles)")
        rows = validate.scalesim_rows(args.csv)
        if not rows:
            raise UserError(f"{args.csv}: no data rows to validate")
        print(validate.format_scalesim(rows, args.tolerance))
        if args.json:
            validate.write_json(rows, args.json)
        bad = [r for r in rows if abs(r["error_pct"]) > args.tolerance]
        if bad:
            which = "; ".join(f"{r['M']}x{r['N']}x{r['K']} on {r['rows']}x{r['cols']} "
                              f"{r['dataflow']}: {r['error_pct']:+.3f}%" for r in bad[:5])
            more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
            print(f"FAIL: {len(bad)} of {len(rows)} rows off by more than {args.tolerance}%: "
                  f"{which}{more}", file=sys.stderr)
            return 1
        print(f"PASS: all {len(rows)} rows within {args.tolerance}%")
        return 0
    if args.target == "neupims":
        from archsim.validation import neupims as vn

        figs = vn.neupims_figures(requests_per_batch=args.requests_per_batch,
                                  progress=False, fidelity=args.fidelity)
        return _report_figures(figs, vn.format_figures(figs), args.json)
    if args.target == "fusemax":
        from archsim.validation import fusemax as vf

        figs = vf.fusemax_figures()
        return _report_figures(figs, vf.format_fusemax(figs), args.json)
    if args.target == "duplex":
        from archsim.validation import duplex as vd

        figs = vd.duplex_figures(requests_per_batch=args.requests_per_batch)
        return _report_figures(figs, vd.format_duplex(figs), args.json)
    if args.target == "sn40l":
        from archsim.validation import sn40l as vs

        figs = vs.sn40l_figures()
        return _report_figures(figs, vs.format_sn40l(figs), args.json)
    raise UserError(f"unknown validation target {args.target!r}; available: scalesim, neupims, "
                    f"duplex, fusemax, sn40l")


def register(sub) -> None:
    """Add the ``validate`` subcommand to ``sub``."""
    v = sub.add_parser("validate", help="compare models against reference results")
    v.add_argument("target", choices=["scalesim", "neupims", "duplex", "fusemax", "sn40l"])
    v.add_argument("--csv", help="SCALE-Sim results CSV (see ../shared/reference)")
    v.add_argument("--tolerance", type=float, default=1.0, metavar="PCT",
                   help="largest allowed |error| in percent (default 1)")
    v.add_argument("--json", metavar="OUT", help="write per-row results as JSON")
    v.add_argument("--requests-per-batch", type=float, default=3.0, metavar="R",
                   help="neupims, duplex: requests simulated per run = R x batch (default 3)")
    v.add_argument("--fidelity", choices=["analytical", "command"], default="analytical",
                   help="neupims: PIM timing model")
    v.set_defaults(func=run)
