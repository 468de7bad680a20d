"""``ltzoo list``: the registered components (models, backbones, heads, losses, samplers, mixers)."""
from __future__ import annotations

import argparse
from typing import Any

__all__ = ['add_parser']


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
    chosen = [args.role] if args.role else (["models"] if args.pretrained else list(roles))
    for role in chosen:
        names = roles[role]()
        if role == "models" and args.pretrained:
            from ltzoo.hub import get_pretrained_config

            print(f"pretrained models ({len(names)}):")
            for name in names:
                print(f"  {name:<44} {get_pretrained_config(name).repo_id}")
            continue
        print(f"{role} ({len(names)}):")
        for name in names:
            print(f"  {name}")
    return 0


def add_parser(sub: Any) -> None:
    """Add ``list`` to the ``ltzoo`` subparsers."""
    p = sub.add_parser("list", help="list registered components")
    p.add_argument("role", nargs="?", choices=["models", "backbones", "heads", "losses", "samplers", "mixers"])
    p.add_argument("--filter", default="*", help="fnmatch pattern, e.g. 'resnet*'")
    p.add_argument("--pretrained", action="store_true", help="list pretrained 'arch.tag' weights")
    p.set_defaults(func=_cmd_list)
