"""``ltzoo demo``: CE, logit adjustment and BMLS + MS on digits-LT (no download), one table."""
from __future__ import annotations

import argparse
from typing import Any

__all__ = ['add_parser']


def _cmd_demo(args: argparse.Namespace) -> int:
    from ltzoo.recipes.demo import run_demo

    run_demo(epochs=args.epochs, seeds=args.seeds, quick=args.quick)
    return 0


def add_parser(sub: Any) -> None:
    """Add ``demo`` to the ``ltzoo`` subparsers."""
    p = sub.add_parser("demo", help="train CE, logit adjustment and BMLS+MS on digits-LT (no download) "
                                    "and print one table")
    p.add_argument("--epochs", type=int, default=20, help="epochs per run (default 20)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds to average (default 0 1 2)")
    p.add_argument("--quick", action="store_true", help="half the epochs")
    p.set_defaults(func=_cmd_demo)
