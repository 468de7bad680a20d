"""The ``ltzoo`` command line."""
from __future__ import annotations

import argparse
import sys
from typing import Sequence


def _cmd_list(args: argparse.Namespace) -> int:
    import ltzoo

    roles = {
        "models": lambda: ltzoo.list_models(args.filter, pretrained=args.pretrained),
        "backbones": lambda: ltzoo.list_backbones(args.filter),
        "heads": lambda: ltzoo.list_heads(args.filter),
        "losses": lambda: ltzoo.list_losses(args.filter),
        "samplers": lambda: ltzoo.list_samplers(args.filter),
        "mixers": lambda: ltzoo.list_mixers(args.filter),
    }
    chosen = [args.role] if args.role else list(roles)
    for role in chosen:
        names = roles[role]()
        label = "pretrained models" if role == "models" and args.pretrained else role
        print(f"{label} ({len(names)}):")
        for name in names:
            print(f"  {name}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``ltzoo`` command."""
    from ltzoo import __version__

    parser = argparse.ArgumentParser(prog="ltzoo", description="Long-tailed image classification zoo.")
    parser.add_argument("--version", action="version", version=f"ltzoo {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p_list = sub.add_parser("list", help="list registered components")
    p_list.add_argument("role", nargs="?", choices=["models", "backbones", "heads", "losses", "samplers", "mixers"])
    p_list.add_argument("--filter", default="*", help="fnmatch pattern, e.g. 'resnet*'")
    p_list.add_argument("--pretrained", action="store_true", help="list pretrained 'arch.tag' weights")
    p_list.set_defaults(func=_cmd_list)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ltzoo`` console script."""
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
