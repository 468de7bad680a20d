"""``ltzoo dlsa``: fit a DLSA head on a trained run's frozen features (:func:`ltzoo.recipes.dlsa_run.run_dlsa`)."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ['add_parser']

# parse-time copies of the recipe's choices (the parser must not import torch); a test keeps them in sync
AIDED_INPUTS = ("XZP", "XP")  # ltzoo.heads.flow.AIDED_INPUTS
REGULAR_INPUTS = ("XZ", "X")  # ltzoo.heads.flow.REGULAR_INPUTS
PURITY_FORMS = ("soft_ce", "log1m")  # ltzoo.losses.dlsa.PURITY_FORMS
PRIORS = ("branch", "level")  # ltzoo.recipes.dlsa.PRIORS


def _cmd_dlsa(args: argparse.Namespace) -> int:
    from ltzoo.engine.evaluation import format_table
    from ltzoo.recipes.dlsa_run import HEAD_FILE, run_dlsa

    head_kwargs = {"depth": args.depth, "filter_ratio": args.filter_ratio, "aided_inputs": args.aided_inputs,
                   "regular_inputs": args.regular_inputs}
    if args.num_components is not None:
        head_kwargs["num_components"] = args.num_components
    report = run_dlsa(args.checkpoint, args.out, head_kwargs, device=args.device, seed=args.seed,
                      epochs=args.epochs, flow_epochs=args.flow_epochs, val_fraction=args.val_fraction,
                      batch_size=args.batch_size, progress=not args.no_progress, prior=args.prior,
                      aided_on=args.aided_on, plain_on=args.plain_on, flow_lr=args.flow_lr,
                      flow_batch_size=args.flow_batch_size, purity=args.purity, cluster_filter=args.cluster_filter)
    print(format_table([{"classifier": "DLSA", **report["dlsa"]}, {"classifier": "plain", **report["plain"]}],
                       name_key="classifier"))
    print(f"DLSA head: {Path(args.out) / HEAD_FILE}")
    return 0


def add_parser(sub: Any) -> None:
    """Add ``dlsa`` to the ``ltzoo`` subparsers."""
    p = sub.add_parser("dlsa", help="fit a DLSA flow-filter head on a trained model's frozen features")
    p.add_argument("checkpoint", help="last.pt, run folder or saved model folder (with its recipe)")
    p.add_argument("--out", required=True, help="output folder (features, head, report)")
    p.add_argument("--depth", type=int, default=1, help="flow-filter levels (default 1)")
    p.add_argument("--filter-ratio", type=float, default=0.3, help="share filtered per level (default 0.3)")
    p.add_argument("--num-components", type=int, default=None, help="mixture components (default min(500, 4K))")
    p.add_argument("--epochs", type=int, default=50, help="classifier epochs (default 50)")
    p.add_argument("--flow-epochs", type=int, default=50, help="flow-filter epochs (default 50, the authors')")
    p.add_argument("--flow-lr", type=float, default=0.2, help="flow-filter SGD learning rate (default 0.2)")
    p.add_argument("--flow-batch-size", type=int, default=1024, help="flow-filter batch size (default 1024)")
    p.add_argument("--purity", choices=PURITY_FORMS, default="soft_ce",
                   help="purity loss: the authors' soft_ce (default) or -log(1 - q.p)")
    p.add_argument("--aided-inputs", choices=AIDED_INPUTS, default="XP", help="cluster-aided classifier inputs")
    p.add_argument("--regular-inputs", choices=REGULAR_INPUTS, default="X", help="regular classifier inputs")
    p.add_argument("--cluster-filter", action="store_true",
                   help="pass only clusters with training purity >= 0.7 and size >= 10")
    p.add_argument("--val-fraction", type=float, default=0.2, help="validation share of each class (default 0.2)")
    p.add_argument("--prior", choices=PRIORS, default="branch", help="balanced-softmax class counts")
    p.add_argument("--aided-on", choices=["reaching", "passed"], default="reaching",
                   help="samples of the cluster-aided classifier (default: all reaching the level)")
    p.add_argument("--plain-on", choices=["all", "rest"], default="all",
                   help="samples of the last-level classifier (default: all)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_dlsa)
