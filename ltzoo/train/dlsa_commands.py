"""``ltzoo dlsa``: fit a DLSA head on the frozen features of a trained model and compare it with the plain classifier.

The model and its data come from a training run (``last.pt``, a run folder or a saved model
folder with its recipe), as for ``ltzoo btm``. Features of the training set (with the test set's
evaluation transform) and of the test set are extracted once into ``OUT/features``. The
validation split for model selection is carved from the training set; note that a model trained
on the whole training set has seen those samples (train the backbone without them, with
:func:`ltzoo.train.features.stratified_split`, for an unseen validation split). Written to
``OUT``: ``dlsa_head.safetensors`` and ``dlsa_head.json`` (the head's constructor arguments; reload
with :func:`load_dlsa_head`) and ``report.json``.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["add_dlsa_subcommand", "run_dlsa", "load_dlsa_head"]

HEAD_FILE = "dlsa_head.safetensors"
HEAD_CONFIG = "dlsa_head.json"


def run_dlsa(checkpoint: str | Path, out: str | Path, head_kwargs: dict[str, Any] | None = None,
             device: str = "cpu", **train_kwargs: Any) -> dict[str, Any]:
    """Fit a DLSA head on a trained model's features and save it with its report.

    Args:
        checkpoint: A ``last.pt``, run folder or saved model folder that records its training recipe.
        out: Output folder.
        head_kwargs: :class:`ltzoo.heads.flow.DLSAHead` arguments (depth, filter_ratio, ...).
        device: Where features are extracted and the head trains.
        **train_kwargs: :func:`ltzoo.train.dlsa.train_dlsa` options (seed, epochs, flow_epochs,
            val_fraction, batch_size, and fit options such as prior, aided_on, plain_on).

    Returns:
        The report of :func:`ltzoo.train.dlsa.train_dlsa` (with "dlsa" and "plain" test summaries).
    """
    from ltzoo.hub.files import write_safetensors
    from ltzoo.train.data import build_datasets
    from ltzoo.train.dlsa import HEAD_ARGS, train_dlsa
    from ltzoo.train.eval_checkpoint import load_for_eval
    from ltzoo.train.evaluation import write_json

    model, cfg, _ = load_for_eval(checkpoint, device=device)
    if cfg is None:
        raise ValueError(f"checkpoint {str(checkpoint)!r} records no training recipe, so its data cannot be rebuilt")
    train_set, test_set, name = build_datasets(cfg)
    train_eval = train_set.subset(np.arange(len(train_set)), transform=test_set.transform)  # no augmentation
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    head, report = train_dlsa(model, train_eval, test_set, head_kwargs=head_kwargs, device=device,
                              cache_dir=out / "features", **train_kwargs)
    config = {"in_features": head.in_features, "num_classes": head.num_classes, "seed": report["seed"],
              **{k: v for k, v in report["selected"]["candidate"].items() if k in HEAD_ARGS}}
    write_safetensors(head.state_dict(), out / HEAD_FILE)
    write_json(out / HEAD_CONFIG, config)
    write_json(out / "report.json", {"dataset": name, "checkpoint": str(checkpoint), **report})
    return report


def load_dlsa_head(folder: str | Path, device: str = "cpu") -> torch.nn.Module:
    """The DLSA head saved by :func:`run_dlsa` in ``folder`` (eval mode; safetensors only).

    Args:
        folder: Output folder of ``ltzoo dlsa``.
        device: Where the head goes.

    Returns:
        The fitted :class:`ltzoo.heads.flow.DLSAHead`.
    """
    from ltzoo.heads.flow import DLSAHead
    from ltzoo.hub.files import read_safetensors

    folder = Path(folder)
    if not (folder / HEAD_FILE).is_file() or not (folder / HEAD_CONFIG).is_file():
        raise ValueError(f"folder must hold {HEAD_FILE} and {HEAD_CONFIG} (written by ltzoo dlsa), got {str(folder)!r}")
    config = json.loads((folder / HEAD_CONFIG).read_text(encoding="utf-8"))
    head = DLSAHead(**config)
    head.load_state_dict(read_safetensors(folder / HEAD_FILE))
    return head.to(device).eval()


def _cmd_dlsa(args: argparse.Namespace) -> int:
    from ltzoo.train.evaluation import format_table

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


def add_dlsa_subcommand(sub: Any) -> None:
    """Add ``dlsa`` to the ``ltzoo`` subparsers."""
    from ltzoo.heads.flow import AIDED_INPUTS, REGULAR_INPUTS
    from ltzoo.losses.dlsa import PURITY_FORMS
    from ltzoo.train.dlsa import PRIORS

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
