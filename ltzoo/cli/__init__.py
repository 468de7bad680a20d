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
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ltzoo`` console script."""
    args = build_parser().parse_args(argv)
    return args.func(args)



if __name__ == "__main__":
    sys.exit(main())
