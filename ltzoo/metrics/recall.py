"""Per-class recall and its harmonic / geometric means (the BTM convention).

Labels are integer class indices in ``[0, num_classes)``; lists, NumPy arrays and torch tensors
are accepted. Recall here is a fraction in ``[0, 1]``; a class with no test sample gets NaN.
Harmonic and geometric means raise recalls below ``clamp`` (default ``1e-3``) to ``clamp``
first, so one never-recalled class does not zero the mean.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ltzoo.validation import check_labels, check_num_classes

__all__ = ["confusion_matrix", "per_class_recall", "harmonic_mean", "geometric_mean"]


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
