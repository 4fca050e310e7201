"""``archsim designs``: list the built-in designs, or show one resolved."""
from __future__ import annotations

from archsim.errors import UserError


def run(args) -> int:
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


def register(sub) -> None:
    """Add the ``designs`` subcommand to ``sub``."""
    d = sub.add_parser("designs", help="list built-in designs, or show one resolved")
    d.add_argument("action", nargs="?", choices=["list", "show"])
    d.add_argument("name", nargs="?")
    d.add_argument("--set", action="append", default=[], metavar="PATH=VALUE")
    d.set_defaults(func=run)
