"""``python -m echolib``: one entry point, one module per subcommand.

Each subcommand lives in :mod:`echolib.commands` and exposes ``HELP`` (one
line), ``configure(parser)`` and ``run(args) -> int``. Errors the user can fix
(:class:`echolib.errors.EchoError`) print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from echolib import __version__
from echolib.errors import EchoError

COMMANDS = (
    "phantom",
    "preprocess",
    "frames",
    "configs",
    "train",
    "sample",
    "synthesize",
    "evaluate",
    "utility",
    "metrics",
    "sweep",
    "turing",
    "book",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m echolib",
        description="Synthetic echocardiogram generation: data, training, sampling, evaluation, the book.",
    )
    parser.add_argument("--version", action="version", version=f"echolib {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"echolib.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"echolib.commands.{name}":
                continue  # not built yet
            raise
        # the commands' docstrings are laid out as usage examples: keep their lines
        p = sub.add_parser(name, help=module.HELP, description=module.__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.configure(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 0
    try:
        return int(args._run(args) or 0)
    except EchoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
