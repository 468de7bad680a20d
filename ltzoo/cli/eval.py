"""``ltzoo eval``: evaluate a checkpoint, a run folder or a saved model folder on its test set."""
from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ['add_parser']


def _cmd_eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ltzoo.engine.distributed import resolve_device
    from ltzoo.engine.eval_checkpoint import evaluate_checkpoint
    from ltzoo.engine.evaluation import format_table

    path = Path(args.checkpoint)
    folder = path if path.is_dir() else path.parent
    out = args.out or folder / "eval_metrics.json"
    plot = None if args.no_plot else (args.plot or folder / "eval_per_class.png")
    groups = None
    if args.group_ranges is not None:
        groups = {"ranges": args.group_ranges}
    elif args.many_threshold is not None or args.few_threshold is not None:
        groups = {k: v for k, v in (("many_threshold", args.many_threshold), ("few_threshold", args.few_threshold))
                  if v is not None}
    summary = evaluate_checkpoint(path, data=args.data, data_root=args.root, imb_ratio=args.imb_ratio, out=out,
                                  plot=plot, ema=args.ema, logit_adjust_tau=args.logit_adjust_tau, device=str(resolve_device(args.device)),
                                  max_samples=args.max_samples, groups=groups)
    rows = [{"model": path.name, **summary}]
    if "posthoc" in summary:
        rows.append({"model": f"{path.name} + post-hoc LA", **summary["posthoc"]})
    print(format_table(rows, name_key="model"))
    from ltzoo.metrics.groups import describe_split

    print(describe_split(summary["groups"]))
    print(f"metrics: {out}" + (f"\nper-class plot: {plot}" if plot else ""))
    return 0


def add_parser(sub: Any) -> None:
    """Add ``eval`` to the ``ltzoo`` subparsers."""
    p = sub.add_parser("eval", help="evaluate a checkpoint, run folder or saved model folder")
    p.add_argument("checkpoint", help="last.pt, a run folder, or a save_pretrained folder")
    p.add_argument("--data", default=None, help="test data (default: the recorded one)")
    p.add_argument("--root", default=None, help="data folder (default: the recorded one)")
    p.add_argument("--imb-ratio", type=float, default=None, help="imbalance ratio (names the data set)")
    p.add_argument("--out", default=None, help="metrics JSON (default: eval_metrics.json beside the checkpoint)")
    p.add_argument("--plot", default=None, help="per-class accuracy PNG (default: eval_per_class.png beside it)")
    p.add_argument("--no-plot", action="store_true", help="do not draw the plot")
    p.add_argument("--ema", action="store_true", help="evaluate the EMA weights of a last.pt")
    p.add_argument("--logit-adjust-tau", type=float, default=None, help="also report post-hoc logit adjustment")
    p.add_argument("--device", default="auto", help="auto (CUDA when available, as train) | cpu | cuda | cuda:N")
    p.add_argument("--max-samples", type=int, default=None, help="evaluate on a class-stratified part of this size")
    p.add_argument("--group-ranges", type=json.loads, default=None,
                   help="many/medium/few class-index ranges as JSON (default: the split recorded with the model)")
    p.add_argument("--many-threshold", type=float, default=None, help="group by training images instead: many > this")
    p.add_argument("--few-threshold", type=float, default=None, help="few < this")
    p.set_defaults(func=_cmd_eval)
