"""``archsim regress``: the golden cycle-count cases and their diff."""
from __future__ import annotations

from pathlib import Path


def run(args) -> int:
    from archsim.validation import regress

    return regress.main(Path(args.golden), update=args.update)


def register(sub) -> None:
    """Add the ``regress`` subcommand to ``sub``."""
    r = sub.add_parser("regress", help="re-run the golden cycle-count cases and show a diff")
    r.add_argument("--update", action="store_true", help="rewrite the golden files")
    r.add_argument("--golden", default="tests/golden", metavar="DIR",
                   help="directory of golden case files (default tests/golden)")
    r.set_defaults(func=run)
