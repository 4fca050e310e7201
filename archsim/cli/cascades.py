"""``archsim cascades``: list the built-in cascades, or show one."""
from __future__ import annotations

from archsim.errors import UserError


def run(args) -> int:
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


def register(sub) -> None:
    """Add the ``cascades`` subcommand to ``sub``."""
    c = sub.add_parser("cascades", help="list built-in cascades, or show one")
    c.add_argument("action", nargs="?", choices=["list", "show"])
    c.add_argument("name", nargs="?")
    c.set_defaults(func=run)
