"""``ltzoo merge``: average compatible checkpoints (:func:`ltzoo.recipes.merge_runs.merge_checkpoints`)."""
from __future__ import annotations

import argparse
from typing import Any

__all__ = ['add_parser']


def _cmd_merge(args: argparse.Namespace) -> int:
    from ltzoo.engine.evaluation import format_table
    from ltzoo.recipes.merge_runs import merge_checkpoints

    summary = merge_checkpoints(args.checkpoints, args.out, args.weights, evaluate=not args.no_eval, device=args.device)
    if summary:
        print(format_table([{"model": "merged", **summary}], name_key="model"))
    print(f"merged model: {args.out}")
    return 0


def add_parser(sub: Any) -> None:
    """Add ``merge`` to the ``ltzoo`` subparsers."""
    p = sub.add_parser("merge", help="average the weights of compatible checkpoints (BTM merge)")
    p.add_argument("checkpoints", nargs="+", help="last.pt files, run folders or saved model folders")
    p.add_argument("--out", required=True, help="folder for the merged model")
    p.add_argument("--weights", type=float, nargs="+", default=None, help="one weight per checkpoint")
    p.add_argument("--no-eval", action="store_true", help="do not measure the merge on the recorded test set")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=_cmd_merge)
