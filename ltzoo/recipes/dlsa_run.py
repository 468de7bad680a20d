"""Fit a DLSA head on the frozen features of a trained model and compare it with the plain classifier.

The model and its data come from a training run (``last.pt``, a run folder or a saved model
folder with its recipe), as for ``ltzoo btm``. Features of the training set (with the test set's
evaluation transform) and of the test set are extracted once into ``OUT/features``. The
validation split for model selection is carved from the training set; note that a model trained
on the whole training set has seen those samples (train the backbone without them, with
:func:`ltzoo.engine.features.stratified_split`, for an unseen validation split). Written to
``OUT``: ``dlsa_head.safetensors`` and ``dlsa_head.json`` (the head's constructor arguments; reload
with :func:`load_dlsa_head`) and ``report.json``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ['run_dlsa', 'load_dlsa_head', 'HEAD_FILE', 'HEAD_CONFIG']


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
        **train_kwargs: :func:`ltzoo.recipes.dlsa.train_dlsa` options (seed, epochs, flow_epochs,
            val_fraction, batch_size, and fit options such as prior, aided_on, plain_on).

    Returns:
        The report of :func:`ltzoo.recipes.dlsa.train_dlsa` (with "dlsa" and "plain" test summaries).
    """
    from ltzoo.engine.data import build_datasets
    from ltzoo.engine.eval_checkpoint import load_for_eval
    from ltzoo.engine.evaluation import write_json
    from ltzoo.files import write_safetensors
    from ltzoo.recipes.dlsa import HEAD_ARGS, train_dlsa

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
    from ltzoo.files import read_safetensors
    from ltzoo.heads.flow import DLSAHead

    folder = Path(folder)
    if not (folder / HEAD_FILE).is_file() or not (folder / HEAD_CONFIG).is_file():
        raise ValueError(f"folder must hold {HEAD_FILE} and {HEAD_CONFIG} (written by ltzoo dlsa), got {str(folder)!r}")
    config = json.loads((folder / HEAD_CONFIG).read_text(encoding="utf-8"))
    head = DLSAHead(**config)
    head.load_state_dict(read_safetensors(folder / HEAD_FILE))
    return head.to(device).eval()
