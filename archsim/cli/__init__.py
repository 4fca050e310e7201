"""The ``archsim`` command line: one module per command, each with ``register(sub)`` and
``run(args)``.

User errors (a bad design file, an unknown rank, an impossible mapping, a missing file) print one
line ``archsim: error: ...`` on stderr and exit with code 2; nothing prints a traceback unless
``ARCHSIM_DEBUG=1`` is set."""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Sequence

from archsim.cli.common import Parser
from archsim.errors import UserError

#: The subcommands, in ``archsim --help`` order (each a module of this package).
COMMANDS = ("simulate", "map", "designs", "cascades", "models", "workload", "validate", "serve",
            "coe", "rl", "sweep", "regress")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``archsim`` command."""
    from archsim import __version__

    p = Parser(prog="archsim", description="Cycle-approximate simulator and mapper for "
                                           "LLM/DNN accelerators.")
    p.add_argument("--version", action="version", version=f"archsim {__version__}")
    sub = p.add_subparsers(dest="command", parser_class=Parser, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"archsim.cli.{name}").register(sub)
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

