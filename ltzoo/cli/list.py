"""``ltzoo list``: the registered components (models, backbones, heads, losses, samplers, mixers, datasets).

Names come from the static index :mod:`ltzoo.cli.names` (no torch import); ``--pretrained`` reads
the weights' configs (their Hub repositories) and so imports the package.
"""
from __future__ import annotations

import argparse
from typing import Any

from ltzoo.cli.names import NAMES, ROLES

__all__ = ['add_parser']


def _names(role: str, pattern: str) -> list[str]:
    from ltzoo.registry import filter_names

    if role == "models":  # architectures, then their registered "arch.tag" weights
        return filter_names(NAMES["backbones"], pattern) + filter_names(NAMES["pretrained"], pattern)
    return filter_names(NAMES[role], pattern)


def _cmd_list(args: argparse.Namespace) -> int:
    if args.pretrained:
        import ltzoo
        from ltzoo.hub import get_pretrained_config

        names = ltzoo.list_models(args.filter, pretrained=True)
        print(f"pretrained models ({len(names)}):")
        for name in names:
            print(f"  {name:<44} {get_pretrained_config(name).repo_id}")
        return 0
    for role in [args.role] if args.role else list(ROLES):
        names = _names(role, args.filter)
        print(f"{role} ({len(names)}):")
        for name in names:
            print(f"  {name}")
    return 0


def add_parser(sub: Any) -> None:
    """Add ``list`` to the ``ltzoo`` subparsers."""
    p = sub.add_parser("list", help="list registered components")
    p.add_argument("role", nargs="?", choices=list(ROLES),
                   help="models: architectures and pretrained 'arch.tag' weights; backbones; heads; ...; datasets")
    p.add_argument("--filter", default="*", help="fnmatch pattern, e.g. 'resnet*'")
    p.add_argument("--pretrained", action="store_true", help="list pretrained 'arch.tag' weights with their repositories")
    p.set_defaults(func=_cmd_list)
