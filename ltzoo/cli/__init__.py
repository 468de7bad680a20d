"""The ``ltzoo`` command line: one module per subcommand, each a thin parser over a recipe or API call.

``list``, ``push``, ``demo``, ``train``, ``train-ssl``, ``eval``, ``merge``, ``btm``, ``dlsa``.
Nothing in the package imports ``ltzoo.cli``.
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from ltzoo.cli import btm, demo, dlsa, merge, push, train, train_ssl
from ltzoo.cli import eval as eval_cmd
from ltzoo.cli import list as list_cmd

__all__ = ["build_parser", "main"]

COMMANDS = (list_cmd, push, demo, train, train_ssl, eval_cmd, merge, btm, dlsa)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``ltzoo`` command."""
    from ltzoo import __version__

    parser = argparse.ArgumentParser(prog="ltzoo", description="Long-tailed image classification zoo.")
    parser.add_argument("--version", action="version", version=f"ltzoo {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full trace of an error")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def _user_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean "bad input" (arguments, files, a Hub miss), shown as one line without a trace."""
    errors: list[type[BaseException]] = [ValueError, TypeError, OSError]
    try:
        from ltzoo.download import hub_errors

        errors += [*hub_errors()]
    except ImportError:
        pass
    return tuple(errors)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ltzoo`` console script.

    A user error (bad argument, unreadable or foreign file, Hub miss) prints one
    ``ltzoo: error: ...`` line and returns 2; ``--debug`` (anywhere on the line) shows the trace instead.
    """
    argv = [*(sys.argv[1:] if argv is None else argv)]  # (`list` here is the ltzoo.cli.list module)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    args = build_parser().parse_args(argv)
    if debug:
        return args.func(args)
    try:
        return args.func(args)
    except _user_errors() as e:
        message = " ".join(str(e).split()) or type(e).__name__
        print(f"ltzoo: error: {message} (run with --debug for the trace)", file=sys.stderr)
        return 2



if __name__ == "__main__":
    sys.exit(main())
