"""The long-tailed summary of a set of predictions, and :func:`evaluate` for a model and a loader.

Summaries hold percentages (0-100): ``top1``, ``many`` / ``medium`` / ``few`` (mean recall of a
group's classes; see :mod:`ltzoo.metrics.groups`), ``hmean`` / ``gmean`` (of recalls clamped at
1e-3, the BTM convention), ``lowest`` (the lowest recall, NOT clamped: 0.0 for a class never
recalled), ``mean_recall`` and ``per_class``. A class with no test sample is ``None`` in
``per_class`` and left out of every mean; the dictionaries never contain NaN.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ltzoo.metrics.groups import GROUP_NAMES, check_group_split, class_groups, split_kwargs
from ltzoo.metrics.recall import _check_pair, _confusion, _recall_from_confusion, geometric_mean, harmonic_mean
from ltzoo.validation import check_class_counts, check_labels, check_num_classes

__all__ = ["summarize", "evaluate"]

_CLAMP = 1e-3  # BTM clamp used for hmean / gmean


def _group_args(groups: Any, many_threshold: float, few_threshold: float, ranges: Any,
                num_classes: int) -> dict[str, Any]:
    """class_groups() keyword arguments: a ``groups`` split record wins over the loose arguments."""
    if groups is None:
        return {"many_threshold": many_threshold, "few_threshold": few_threshold, "ranges": ranges}
    return split_kwargs(check_group_split(groups, num_classes))


def _split_record(group_args: Mapping[str, Any]) -> dict[str, Any]:
    """The group split record of class_groups() keyword arguments (reported with every summary)."""
    if group_args.get("ranges") is not None:
        return {"ranges": {k: [int(v) for v in r] for k, r in group_args["ranges"].items()}}
    return {"many_threshold": float(group_args.get("many_threshold", 100)),
            "few_threshold": float(group_args.get("few_threshold", 20))}


def _summary_from_confusion(cm: np.ndarray, groups: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Build the summary dictionary from a validated confusion matrix and groups."""
    n = int(cm.sum())
    recall = _recall_from_confusion(cm)
    present = ~np.isnan(recall)
    kept = recall[present]
    out: dict[str, Any] = {"top1": 100.0 * float(np.trace(cm)) / n}
    for name in GROUP_NAMES:
        vals = recall[groups[name]]
        vals = vals[~np.isnan(vals)]
        out[name] = 100.0 * float(vals.mean()) if vals.size else None
    out["hmean"] = 100.0 * harmonic_mean(kept, _CLAMP)
    out["gmean"] = 100.0 * geometric_mean(kept, _CLAMP)
    out["lowest"] = 100.0 * float(kept.min())  # unclamped: 0.0 for a class never recalled
    out["mean_recall"] = 100.0 * float(kept.mean())
    out["per_class"] = [100.0 * float(r) if ok else None for r, ok in zip(recall, present)]
    out["num_samples"] = n
    return out


def summarize(
    y_true: Any,
    y_pred: Any,
    class_counts: Any,
    *,
    num_classes: int | None = None,
    many_threshold: float = 100,
    few_threshold: float = 20,
    ranges: Mapping[str, tuple[int, int]] | None = None,
    groups: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Long-tailed summary of a set of predictions.

    Args:
        y_true: True class indices, shape ``(N,)``, ``N >= 1``.
        y_pred: Predicted class indices, shape ``(N,)``.
        class_counts: Training images per class (defines the groups).
        num_classes: Number of classes; defaults to ``len(class_counts)``.
        many_threshold: See :func:`class_groups`.
        few_threshold: See :func:`class_groups`.
        ranges: See :func:`class_groups`.
        groups: A group split record (``dataset.group_split``, see :mod:`ltzoo.metrics.groups`);
            when given it replaces ``many_threshold`` / ``few_threshold`` / ``ranges``.

    Returns:
        A dict of plain Python values (percentages unless noted):
        ``top1`` (sample accuracy), ``many``/``medium``/``few`` (mean recall over
        the group's classes that have test samples, or ``None``), ``hmean`` and
        ``gmean`` (of recalls clamped at 1e-3), ``lowest`` (lowest recall,
        unclamped), ``mean_recall`` (balanced accuracy), ``per_class`` (list, ``None``
        for a class with no test sample), ``num_samples`` (int) and ``groups`` (the
        group split record used). Classes with no test sample are excluded from every mean.
    """
    if num_classes is None:
        counts = check_class_counts(class_counts)
        num_classes = counts.size
    else:
        num_classes = check_num_classes(num_classes)
        counts = check_class_counts(class_counts, num_classes=num_classes)
    t, p = _check_pair(y_true, y_pred, num_classes)
    if t.size == 0:
        raise ValueError("y_true must hold at least one sample, got 0")
    group_args = _group_args(groups, many_threshold, few_threshold, ranges, num_classes)
    out = _summary_from_confusion(_confusion(t, p, num_classes), class_groups(counts, **group_args))
    out["groups"] = _split_record(group_args)
    return out


def _logits_of(output: Any, batch: int, num_classes: int) -> Any:
    """Extract and shape-check the logits tensor from a model output."""
    import torch

    if isinstance(output, Mapping) and "logits" in output:
        output = output["logits"]
    if not isinstance(output, torch.Tensor):
        raise TypeError(
            f"model must return a logits tensor (or a dict with key 'logits'), got {type(output).__name__}"
        )
    if output.shape != (batch, num_classes):
        raise ValueError(
            f"model output must have shape (batch, num_classes) = ({batch}, {num_classes}), "
            f"got {tuple(output.shape)}"
        )
    return output


def _predict(model: Any, loader: Any, num_classes: int, device: Any, adjust: Any, progress: bool):
    """Run the model over ``loader``; return (y_true, y_pred) as int64 arrays."""
    import torch
    from tqdm import tqdm

    trues: list[np.ndarray] = []
    preds: list[np.ndarray] = []
    for batch in tqdm(loader, desc="evaluate", disable=not progress, leave=False):
        if not isinstance(batch, Sequence) or len(batch) < 2:
            raise TypeError(f"loader must yield (images, labels, ...) tuples, got {type(batch).__name__}")
        images, labels = batch[0], batch[1]
        labels = check_labels(labels, num_classes, "labels from loader")
        logits = _logits_of(model(images.to(device)), labels.shape[0], num_classes)
        if logits.is_floating_point() and not bool(torch.isfinite(logits).all()):
            raise ValueError(f"model output holds NaN / infinite logits (batch {len(trues)} of the loader); "
                             "the weights may have diverged, and the argmax of NaN would be a silent wrong result")
        if adjust is not None:
            logits = logits - adjust.to(device=logits.device, dtype=logits.dtype)
        trues.append(labels)
        preds.append(logits.argmax(dim=1).cpu().numpy().astype(np.int64))
    if not trues:
        raise ValueError("loader yielded no batches")
    return np.concatenate(trues), np.concatenate(preds)


def _check_adjustment(logit_adjustment: Any, num_classes: int) -> Any:
    """Return ``logit_adjustment`` as a finite float tensor of shape (K,), or None."""
    import torch

    if logit_adjustment is None:
        return None
    adj = torch.as_tensor(logit_adjustment).detach()
    if adj.shape != (num_classes,):
        raise ValueError(
            f"logit_adjustment must have shape (num_classes,) = ({num_classes},), got {tuple(adj.shape)}"
        )
    if not adj.is_floating_point():
        adj = adj.double()
    if not bool(torch.isfinite(adj).all()):
        raise ValueError("logit_adjustment must be finite")
    return adj


def evaluate(
    model: Any,
    loader: Any,
    class_counts: Any,
    *,
    device: Any = None,
    many_threshold: float = 100,
    few_threshold: float = 20,
    ranges: Mapping[str, tuple[int, int]] | None = None,
    groups: Mapping[str, Any] | None = None,
    logit_adjustment: Any = None,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Evaluate a classifier on a loader and summarize it for long-tailed reporting.

    The model runs in eval mode under ``torch.no_grad``; its previous training flag
    is restored afterwards (also on error). The model is not moved.

    Args:
        model: A ``torch.nn.Module`` mapping images to logits of shape ``(B, K)``
            (a dict output with key ``"logits"`` is accepted).
        loader: Iterable of ``(images, labels, *extra)``; extra items are ignored.
        class_counts: Training images per class; ``K = len(class_counts)``.
        device: Where images are sent; defaults to the device of the model's first
            parameter (CPU for a model without parameters).
        many_threshold, few_threshold, ranges: See :func:`class_groups`.
        groups: A group split record (e.g. ``test_set.group_split``); replaces the three above.
        logit_adjustment: Optional tensor of shape ``(K,)`` subtracted from the
            logits before the argmax (post-hoc logit adjustment).
        progress: Show a tqdm progress bar (None: only when stderr is a terminal).

    Returns:
        :func:`summarize`'s dict plus ``"confusion_matrix"`` (nested list of ints,
        rows = true class) and ``"class_counts"`` (list).
    """
    import torch

    counts = check_class_counts(class_counts)
    k, adjust = counts.size, _check_adjustment(logit_adjustment, counts.size)
    group_args = _group_args(groups, many_threshold, few_threshold, ranges, k)
    class_groups(counts, **group_args)  # fail before the loop, not after
    if progress is None:
        import sys

        progress = sys.stderr.isatty()
    if device is None:
        first = next(iter(model.parameters()), None)
        device = first.device if first is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            y_true, y_pred = _predict(model, loader, k, device, adjust, progress)
    finally:
        model.train(was_training)
    out = summarize(y_true, y_pred, counts, **group_args)
    out["confusion_matrix"] = _confusion(y_true, y_pred, k).tolist()
    out["class_counts"] = [int(c) if float(c).is_integer() else float(c) for c in counts]
    return out
