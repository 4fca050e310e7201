"""The ``archsim`` command line.

User errors (a bad design file, an unknown rank, an impossible mapping, a missing file) print one
line ``archsim: error: ...`` on stderr and exit with code 2; nothing prints a traceback unless
``ARCHSIM_DEBUG=1`` is set.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

from archsim.errors import UserError


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit code 2)."""

    def error(self, message: str):  # noqa: D401 - argparse API
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# --------------------------------------------------------------------------- helpers
def _parse_ranks(text: str | None) -> dict[str, int]:
    if not text:
        return {}
    ranks: dict[str, int] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        name, sep, val = part.partition("=")
        if not sep:
            raise UserError(f"--ranks {text!r}: expected name=size pairs like m=64,n=64,k=64")
        try:
            ranks[name.strip()] = int(val)
        except ValueError:
            raise UserError(f"--ranks: size of {name.strip()!r} must be an integer, "
                            f"found {val!r}") from None
    return ranks


def _load_workload(args):
    import dataflow

    ranks = _parse_ranks(args.ranks)
    if args.einsum and args.cascade:
        raise UserError("give either --einsum (with --ranks) or --cascade, not both")
    if args.einsum:
        if not ranks:
            raise UserError("--einsum needs --ranks with every rank's size, e.g. "
                            "--ranks m=64,n=64,k=64")
        cascade = dataflow.Cascade.from_text(args.einsum, ranks, name=args.name or "cli",
                                             default_bits=args.bits)
        used = {r for e in cascade.einsums for r in e.rank_vars()}
        used |= {r for t in cascade.tensors.values() for r in t.ranks}
        unused = [r for r in ranks if r not in used]
        if unused:
            raise UserError(f"--ranks: unknown rank {unused[0]!r}; the einsums use "
                            f"{', '.join(r for r in cascade.ranks if r in used)}")
        return cascade
    if args.cascade:
        return dataflow.load_cascade(args.cascade, ranks_override=ranks or None)
    raise UserError("no workload: give --cascade NAME|FILE or --einsum TEXT --ranks ...")


def _add_workload_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--design", required=True, help="built-in design name or design YAML path")
    p.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                   help="override a design key, e.g. units.sa.rows=256 (repeatable)")
    w = p.add_argument_group("workload")
    w.add_argument("--cascade", help="built-in cascade name or cascade YAML path")
    w.add_argument("--einsum", action="append", metavar="TEXT",
                   help="an einsum, e.g. 'Z[m,n] = A[m,k] * B[k,n]' (repeatable: a cascade)")
    w.add_argument("--ranks", help="rank sizes, e.g. m=1024,n=4096,k=1024 (also overrides a "
                                   "cascade file's sizes)")
    w.add_argument("--bits", type=int, default=16,
                   help="element bits of tensors inferred from --einsum (default 16)")
    w.add_argument("--name", help="workload name in reports")
    o = p.add_argument_group("outputs")
    o.add_argument("--json", metavar="OUT", help="write the result as JSON")
    o.add_argument("--csv", metavar="OUT", help="write the per-task timeline as CSV")
    o.add_argument("--trace", metavar="OUT", help="write a Chrome/Perfetto trace (JSON)")
    o.add_argument("--plot", metavar="OUT", help="write a timeline/utilization figure (png/svg/pdf)")
    o.add_argument("--quiet", action="store_true", help="print nothing on success")


PLOT_FORMATS = (".png", ".svg", ".pdf", ".jpg", ".jpeg", ".eps", ".ps", ".tif", ".tiff", ".webp")


def _check_outputs(args) -> None:
    """Fail before simulating if an output cannot be written (missing directory, plot format)."""
    for attr in ("json", "csv", "trace", "plot", "out"):
        out = getattr(args, attr, None)
        if out:
            parent = Path(out).parent
            if not parent.is_dir():
                raise UserError(f"--{attr} {out}: directory {parent} does not exist")
    if args.plot and Path(args.plot).suffix.lower() not in PLOT_FORMATS:
        raise UserError(f"--plot {args.plot}: unsupported figure format "
                        f"{Path(args.plot).suffix or '(no extension)'!r}; expected one of "
                        f"{', '.join(PLOT_FORMATS)}")


def _write_outputs(result, args) -> None:
    for attr, method in (("json", "to_json"), ("csv", "to_csv"), ("trace", "to_chrome_trace"),
                         ("plot", "plot")):
        out = getattr(args, attr)
        if out:
            parent = Path(out).parent
            if not parent.exists():
                raise UserError(f"--{attr} {out}: directory {parent} does not exist")
            try:
                getattr(result, method)(out)
            except OSError as exc:
                raise UserError(f"--{attr} {out}: cannot write ({exc.strerror})") from None


# --------------------------------------------------------------------------- commands
def cmd_simulate(args) -> int:
    from archsim import Mapping, load_design, simulate

    design = load_design(args.design, args.set)
    cascade = _load_workload(args)
    _check_outputs(args)
    mapping = Mapping.load(args.mapping) if args.mapping else None
    result = simulate(design, cascade, mapping, mapper=args.mapper)
    _write_outputs(result, args)
    if not args.quiet:
        print(result.summary())
    return 0


def cmd_map(args) -> int:
    from archsim import load_design, simulate
    from mappers import get_mapper

    design = load_design(args.design, args.set)
    cascade = _load_workload(args)
    _check_outputs(args)
    mapping = get_mapper(args.mapper)(cascade, design)
    result = simulate(design, cascade, mapping)
    if args.out:
        try:
            mapping.save(args.out)
        except OSError as exc:
            raise UserError(f"--out {args.out}: cannot write ({exc.strerror})") from None
    _write_outputs(result, args)
    if not args.quiet:
        print(mapping.describe(cascade))
        print(f"cost: {result.cycles:,} cycles ({result.seconds * 1e6:.3f} us), "
              f"{result.energy_pj / 1e6:.3f} uJ")
        print(result.summary())
    return 0


def cmd_designs(args) -> int:
    from archsim.spec import builtin_designs, load_design

    if args.action == "show":
        if not args.name:
            raise UserError("designs show needs a design name or path")
        d = load_design(args.name, args.set)
        print(f"# {d.name} (hash {d.hash}) from {d.source}")
        print(d.to_yaml(), end="")
        return 0
    if args.action not in (None, "list"):
        raise UserError(f"unknown designs action {args.action!r}; expected list or show")
    for name in builtin_designs():
        d = load_design(name)
        desc = " ".join(d.description.split())
        print(f"{name:<20} {desc[:90]}")
    return 0


def cmd_cascades(args) -> int:
    import dataflow

    if args.action == "show":
        if not args.name:
            raise UserError("cascades show needs a cascade name or path")
        print(dataflow.load_cascade(args.name).summary())
        return 0
    for name in dataflow.builtin_cascades():
        c = dataflow.load_cascade(name)
        print(f"{name:<22} {len(c.einsums)} einsums, ranks "
              + ",".join(f"{k}={v}" for k, v in c.ranks.items()))
    return 0


def cmd_validate(args) -> int:
    from archsim import validate

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
    raise UserError(f"unknown validation target {args.target!r}; available: scalesim")


def cmd_regress(args) -> int:
    from archsim import regress

    return regress.main(Path(args.golden), update=args.update)


# --------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``archsim`` command."""
    from archsim import __version__

    p = _Parser(prog="archsim", description="Cycle-approximate simulator and mapper for "
                                            "LLM/DNN accelerators.")
    p.add_argument("--version", action="version", version=f"archsim {__version__}")
    sub = p.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")

    s = sub.add_parser("simulate", help="simulate a workload on a design")
    _add_workload_args(s)
    s.add_argument("--mapping", metavar="FILE", help="a mapping JSON (from `archsim map --out`)")
    s.add_argument("--mapper", default="greedy", help="mapper used when no --mapping is given")
    s.set_defaults(func=cmd_simulate)

    m = sub.add_parser("map", help="search a mapping, print it and its cost")
    _add_workload_args(m)
    m.add_argument("--mapper", default="greedy", help="mapping strategy (default greedy)")
    m.add_argument("--out", metavar="FILE", help="save the mapping as JSON")
    m.set_defaults(func=cmd_map)

    d = sub.add_parser("designs", help="list built-in designs, or show one resolved")
    d.add_argument("action", nargs="?", choices=["list", "show"])
    d.add_argument("name", nargs="?")
    d.add_argument("--set", action="append", default=[], metavar="PATH=VALUE")
    d.set_defaults(func=cmd_designs)

    c = sub.add_parser("cascades", help="list built-in cascades, or show one")
    c.add_argument("action", nargs="?", choices=["list", "show"])
    c.add_argument("name", nargs="?")
    c.set_defaults(func=cmd_cascades)

    v = sub.add_parser("validate", help="compare models against reference results")
    v.add_argument("target", choices=["scalesim"])
    v.add_argument("--csv", help="SCALE-Sim results CSV (see ../shared/reference)")
    v.add_argument("--tolerance", type=float, default=1.0, metavar="PCT",
                   help="largest allowed |error| in percent (default 1)")
    v.add_argument("--json", metavar="OUT", help="write per-row results as JSON")
    v.set_defaults(func=cmd_validate)

    r = sub.add_parser("regress", help="re-run the golden cycle-count cases and show a diff")
    r.add_argument("--update", action="store_true", help="rewrite the golden files")
    r.add_argument("--golden", default="tests/golden", metavar="DIR",
                   help="directory of golden case files (default tests/golden)")
    r.set_defaults(func=cmd_regress)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``archsim`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        from dataflow import CascadeError
    except ImportError:  # pragma: no cover
        CascadeError = ValueError  # type: ignore
    try:
        return int(args.func(args) or 0)
    except (UserError, CascadeError) as exc:
        if os.environ.get("ARCHSIM_DEBUG"):
            raise
        msg = " ".join(str(exc).split("\n"))
        print(f"archsim: error: {msg}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `archsim designs | head`
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
