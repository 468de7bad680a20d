"""How well a CIFAR-10-LT run fitted its own training images: per-class recall on them, un-augmented.

A short schedule can leave a method under-fitted, most of all on the rare classes of a mixing
method, whose images are seen mostly blended with head images. Set beside the test recall, the
training recall tells the two apart: a class the model has not learned on its training images
(low training recall) is under-fitted; one it has learned there but misses on the test set
(high training recall, low test recall) is over-fitted.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FIT_KEYS", "train_fit", "fit_stats", "fit_table"]

FIT_KEYS = ("mean", "many", "medium", "few", "lowest")


def _group_means(per_class: np.ndarray, groups: dict[str, Any]) -> dict[str, float]:
    """Mean recall of each group given as an inclusive class-index range ``[first, last]``."""
    return {name: float(per_class[int(lo):int(hi) + 1].mean()) for name, (lo, hi) in groups.items()}


def train_fit(model_dir: str | Path, root: str, groups: dict[str, Any], device: str = "cpu",
              batch_size: int = 256) -> dict[str, Any]:
    """Per-class recall of a saved model on the training images it was trained on, test-time transform.

    Args:
        model_dir: A saved model folder (or run folder) whose recipe names its data.
        root: The CIFAR-10 JPEG tree.
        groups: Group name -> inclusive class-index range ``[first, last]``.
        device: Evaluation device.
        batch_size: Evaluation batch size.

    Returns:
        ``per_class`` (percent, one per class), ``mean`` (the unweighted mean of ``per_class``),
        one mean per group, ``lowest``, and ``images`` (how many training images were scored).
    """
    from ltzoo.engine.builders import build_eval_loader
    from ltzoo.engine.data import build_datasets
    from ltzoo.engine.eval_checkpoint import load_for_eval
    from ltzoo.metrics import evaluate

    model, cfg, counts = load_for_eval(model_dir, device=device)
    if cfg is None:
        raise ValueError(f"{model_dir} records no training recipe, so its training images are unknown")
    train_set, test_set, _ = build_datasets(cfg.replace(data_root=str(root)))
    plain = train_set.subset(np.arange(len(train_set)), transform=test_set.transform)  # no crop, no flip
    seen = np.asarray(plain.class_counts)
    if (seen == 0).any():
        raise ValueError(f"classes {np.flatnonzero(seen == 0).tolist()} have no training image")
    per_class = np.asarray(evaluate(model, build_eval_loader(plain, batch_size, 0), counts)["per_class"], dtype=float)
    return {"per_class": [round(float(v), 2) for v in per_class], "mean": round(float(per_class.mean()), 2),
            **{g: round(v, 2) for g, v in _group_means(per_class, groups).items()},
            "lowest": round(float(per_class.min()), 2), "images": int(seen.sum())}


def fit_stats(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Seed means of the training-recall block of the runs that have one (None when none has).

    Args:
        runs: Finished-run records, some with a ``train_fit`` block.

    Returns:
        ``seeds``, the mean of each of :data:`FIT_KEYS`, and ``per_class_mean``; or None.
    """
    fits = [(r["seed"], r["train_fit"]) for r in runs if r.get("train_fit")]
    if not fits:
        return None
    return {"seeds": [s for s, _ in fits],
            **{key: round(float(np.mean([f[key] for _, f in fits])), 2) for key in FIT_KEYS},
            "per_class_mean": [round(float(v), 2) for v in np.mean([f["per_class"] for _, f in fits], axis=0)]}


def fit_table(rows: list[tuple[str, dict[str, Any], dict[str, Any]]]) -> str:
    """Markdown: training recall (mean, many, medium, few, lowest) beside the test few and lowest.

    Args:
        rows: ``(label, fit_stats block, test summary with "stats")`` per method.
    """
    lines = ["| method | train mean | train many | train medium | train few | train lowest | test few | "
             "test lowest | seeds |", "|---|" + "---:|" * 8]
    for label, fit, test in rows:
        cells = [f"{fit[k]:.1f}" for k in FIT_KEYS]
        cells += [f"{test['stats'][k]['mean']:.1f}" for k in ("few", "lowest")]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {len(fit['seeds'])} |")
    return "\n".join(lines) + "\n"
