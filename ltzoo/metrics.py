"""Long-tailed classification metrics.

Conventions (shared by every function here):

* Labels are integer class indices in ``[0, num_classes)``; lists, NumPy arrays
  and torch tensors are accepted.
* Per-class recall is a fraction in ``[0, 1]`` in the NumPy functions and a
  percentage in the dictionaries returned by :func:`summarize` and
  :func:`evaluate`.
* A class with no test sample has no recall. :func:`per_class_recall` marks it
  with NaN; :func:`summarize` reports it as ``None`` in ``"per_class"`` and leaves
  it out of every mean ("many"/"medium"/"few", "mean_recall", "hmean", "gmean",
  "lowest"). A group none of whose classes has a test sample is ``None``.
  The dictionaries never contain NaN, so they are JSON-serialisable.
* Harmonic and geometric means follow the BTM convention: per-class recall as a
  fraction, values below ``clamp`` (default ``1e-3``) raised to ``clamp``, then the
  mean; summaries multiply the result by 100.
* Many/medium/few groups follow ImageNet-LT by default: many = more than 100
  training images, medium = 20 to 100, few = fewer than 20. Explicit inclusive
  index ranges (as CIFAR-LT papers use) may be given instead.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .validation import check_class_counts, check_labels, check_num_classes

__all__ = [
    "GROUP_NAMES",
    "confusion_matrix",
    "per_class_recall",
    "harmonic_mean",
    "geometric_mean",
    "class_groups",
    "summarize",
    "evaluate",
]

GROUP_NAMES: tuple[str, str, str] = ("many", "medium", "few")
_CLAMP = 1e-3  # BTM clamp used by summarize for hmean / gmean / lowest


def _check_pair(y_true: Any, y_pred: Any, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate two label vectors of equal length; return them as int64 arrays."""
    num_classes = check_num_classes(num_classes)
    t = check_labels(y_true, num_classes, "y_true")
    p = check_labels(y_pred, num_classes, "y_pred")
    if t.shape[0] != p.shape[0]:
        raise ValueError(
            f"y_true and y_pred must have the same length, got {t.shape[0]} and {p.shape[0]}"
        )
    return t, p


def _confusion(t: np.ndarray, p: np.ndarray, num_classes: int) -> np.ndarray:
    """Confusion matrix of already-validated label arrays."""
    flat = np.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes).astype(np.int64, copy=False)


def _recall_from_confusion(cm: np.ndarray) -> np.ndarray:
    """Per-class recall (fraction) from a confusion matrix; NaN where a row is empty."""
    support = cm.sum(axis=1)
    recall = np.full(cm.shape[0], np.nan, dtype=np.float64)
    present = support > 0
    recall[present] = np.diag(cm)[present] / support[present]
    return recall


def confusion_matrix(y_true: Any, y_pred: Any, num_classes: int) -> np.ndarray:
    """Count (true class, predicted class) pairs.

    Args:
        y_true: True class indices, shape ``(N,)``.
        y_pred: Predicted class indices, shape ``(N,)``.
        num_classes: Number of classes ``K``.

    Returns:
        An ``int64`` array of shape ``(K, K)``; ``cm[i, j]`` counts samples of true
        class ``i`` predicted as ``j`` (rows = true class, columns = prediction).
    """
    t, p = _check_pair(y_true, y_pred, num_classes)
    return _confusion(t, p, int(num_classes))


def per_class_recall(y_true: Any, y_pred: Any, num_classes: int) -> np.ndarray:
    """Recall of every class as a fraction.

    Args:
        y_true: True class indices, shape ``(N,)``.
        y_pred: Predicted class indices, shape ``(N,)``.
        num_classes: Number of classes ``K``.

    Returns:
        A ``float64`` array of shape ``(K,)`` with values in ``[0, 1]``; a class with
        no sample in ``y_true`` gets NaN (drop it before averaging).
    """
    return _recall_from_confusion(confusion_matrix(y_true, y_pred, num_classes))


def _clamped(recalls: Any, clamp: float) -> np.ndarray:
    """Validate fractional recalls and raise those below ``clamp`` to ``clamp``."""
    if isinstance(clamp, bool) or not isinstance(clamp, (int, float, np.integer, np.floating)):
        raise TypeError(f"clamp must be a number in (0, 1], got {type(clamp).__name__}")
    if not (0.0 < float(clamp) <= 1.0):
        raise ValueError(f"clamp must lie in (0, 1], got {clamp}")
    if hasattr(recalls, "detach"):
        recalls = recalls.detach().cpu().numpy()
    try:
        r = np.asarray(recalls, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"recalls must be a 1-D sequence of numbers, got {type(recalls).__name__}") from None
    if r.ndim != 1 or r.size == 0:
        raise ValueError(f"recalls must be a non-empty 1-D sequence, got shape {r.shape}")
    if not np.all(np.isfinite(r)):
        raise ValueError(
            "recalls must be finite; drop classes without test samples (NaN) first, "
            f"got non-finite entries at positions {np.flatnonzero(~np.isfinite(r)).tolist()}"
        )
    if np.any((r < 0) | (r > 1)):
        raise ValueError(
            f"recalls must be fractions in [0, 1] (not percentages), got min {r.min()} and max {r.max()}"
        )
    return np.maximum(r, float(clamp))


def harmonic_mean(recalls: Any, clamp: float = 1e-3) -> float:
    """Harmonic mean of per-class recalls, after clamping.

    Args:
        recalls: Per-class recalls as fractions in ``[0, 1]`` (no NaN).
        clamp: Values below it are raised to it first, so a zero recall does not
            zero the mean (BTM convention). Must lie in ``(0, 1]``.

    Returns:
        The harmonic mean, a fraction.
    """
    r = _clamped(recalls, clamp)
    return float(r.size / np.sum(1.0 / r))


def geometric_mean(recalls: Any, clamp: float = 1e-3) -> float:
    """Geometric mean of per-class recalls, after clamping.

    Args:
        recalls: Per-class recalls as fractions in ``[0, 1]`` (no NaN).
        clamp: Values below it are raised to it first (BTM convention).
            Must lie in ``(0, 1]``.

    Returns:
        The geometric mean, a fraction.
    """
    r = _clamped(recalls, clamp)
    return float(np.exp(np.mean(np.log(r))))


def _check_threshold(value: Any, name: str) -> float:
    """Return a finite numeric threshold as float, or raise naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(float(value)):
        raise ValueError(f"{name} must be finite, got {value}")
    return float(value)


def _groups_from_ranges(ranges: Any, num_classes: int) -> dict[str, np.ndarray]:
    """Validate explicit inclusive index ranges and expand them to index arrays."""
    if not isinstance(ranges, Mapping):
        raise TypeError(f"ranges must be a dict like {{'many': (0, 2), ...}}, got {type(ranges).__name__}")
    unknown = sorted(str(k) for k in ranges if k not in GROUP_NAMES)
    if unknown:
        raise ValueError(f"ranges has unknown group names {unknown}; allowed: {list(GROUP_NAMES)}")
    groups: dict[str, np.ndarray] = {}
    owner = np.full(num_classes, -1)
    for gi, name in enumerate(GROUP_NAMES):
        if name not in ranges:
            groups[name] = np.zeros(0, dtype=np.int64)
            continue
        rng = ranges[name]
        ok = isinstance(rng, Sequence) and not isinstance(rng, str) and len(rng) == 2 and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in rng
        )
        if not ok:
            raise ValueError(f"ranges[{name!r}] must be a pair of integers (lo, hi), got {rng!r}")
        lo, hi = int(rng[0]), int(rng[1])
        if not (0 <= lo <= hi < num_classes):
            raise ValueError(
                f"ranges[{name!r}] = ({lo}, {hi}) must satisfy 0 <= lo <= hi < num_classes={num_classes}"
            )
        taken = owner[lo : hi + 1]
        if np.any(taken >= 0):
            other = GROUP_NAMES[int(taken[taken >= 0][0])]
            raise ValueError(f"ranges[{name!r}] = ({lo}, {hi}) overlaps ranges[{other!r}]")
        owner[lo : hi + 1] = gi
        groups[name] = np.arange(lo, hi + 1, dtype=np.int64)
    return groups


def class_groups(
    class_counts: Any,
    many_threshold: float = 100,
    few_threshold: float = 20,
    ranges: Mapping[str, tuple[int, int]] | None = None,
) -> dict[str, np.ndarray]:
    """Split classes into many-, medium- and few-shot groups.

    Args:
        class_counts: Training images per class, length ``K``.
        many_threshold: A class with more than this many images is "many".
        few_threshold: A class with fewer than this many images is "few"; the
            rest (``few_threshold <= count <= many_threshold``) are "medium".
            Must not exceed ``many_threshold``.
        ranges: Optional explicit inclusive index ranges overriding the
            thresholds, e.g. ``{"many": (0, 2), "medium": (3, 6), "few": (7, 9)}``.
            Keys must be among "many", "medium", "few" (a missing key is an empty
            group); ranges must lie in ``[0, K)``, have ``lo <= hi`` and not overlap.
            Classes outside every range belong to no group.

    Returns:
        ``{"many": idx, "medium": idx, "few": idx}`` with sorted ``int64`` index arrays.
    """
    counts = check_class_counts(class_counts)
    if ranges is not None:
        return _groups_from_ranges(ranges, counts.size)
    hi = _check_threshold(many_threshold, "many_threshold")
    lo = _check_threshold(few_threshold, "few_threshold")
    if lo > hi:
        raise ValueError(f"few_threshold ({lo}) must not exceed many_threshold ({hi})")
    return {
        "many": np.flatnonzero(counts > hi).astype(np.int64),
        "medium": np.flatnonzero((counts >= lo) & (counts <= hi)).astype(np.int64),
        "few": np.flatnonzero(counts < lo).astype(np.int64),
    }


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
    out["lowest"] = 100.0 * float(np.maximum(kept, _CLAMP).min())
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

    Returns:
        A dict of plain Python values (percentages unless noted):
        ``top1`` (sample accuracy), ``many``/``medium``/``few`` (mean recall over
        the group's classes that have test samples, or ``None``), ``hmean`` and
        ``gmean`` (of recalls clamped at 1e-3), ``lowest`` (lowest clamped
        recall), ``mean_recall`` (balanced accuracy), ``per_class`` (list, ``None``
        for a class with no test sample) and ``num_samples`` (int). Classes with
        no test sample are excluded from every mean.
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
    groups = class_groups(counts, many_threshold, few_threshold, ranges)
    return _summary_from_confusion(_confusion(t, p, num_classes), groups)


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
    logit_adjustment: Any = None,
    progress: bool = True,
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
        logit_adjustment: Optional tensor of shape ``(K,)`` subtracted from the
            logits before the argmax (post-hoc logit adjustment).
        progress: Show a tqdm progress bar.

    Returns:
        :func:`summarize`'s dict plus ``"confusion_matrix"`` (nested list of ints,
        rows = true class) and ``"class_counts"`` (list).
    """
    import torch

    counts = check_class_counts(class_counts)
    k, adjust = counts.size, _check_adjustment(logit_adjustment, counts.size)
    class_groups(counts, many_threshold, few_threshold, ranges)  # fail before the loop, not after
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
    out = summarize(
        y_true, y_pred, counts, many_threshold=many_threshold, few_threshold=few_threshold, ranges=ranges
    )
    out["confusion_matrix"] = _confusion(y_true, y_pred, k).tolist()
    out["class_counts"] = [int(c) if float(c).is_integer() else float(c) for c in counts]
    return out
