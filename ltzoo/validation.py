"""Argument checks shared by every module that takes class statistics or labels."""
from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["MAX_NUM_CLASSES", "as_number", "check_num_classes", "check_float", "check_class_counts", "check_labels",
           "class_counts_tensor"]

MAX_NUM_CLASSES = 1_000_000  # a cap before anything of size num_classes is allocated


def check_num_classes(num_classes: int, name: str = "num_classes") -> int:
    """Return ``num_classes`` as an int, or raise if it is not an integer >= 1."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)):
        raise TypeError(f"{name} must be an integer >= 1, got {type(num_classes).__name__} {num_classes!r}")
    if num_classes < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {num_classes}")
    if num_classes > MAX_NUM_CLASSES:
        raise ValueError(f"{name} must be at most {MAX_NUM_CLASSES:,} (well above the largest long-tailed benchmark), "
                         f"got {num_classes:,}")
    return int(num_classes)


def as_number(value: object) -> object:
    """A numpy scalar or 0-d tensor as the Python number it holds; anything else unchanged.

    Lets ``tau=np.float32(1.0)`` or ``lam=torch.tensor(0.5)`` pass checks written for ``int`` / ``float``.
    """
    if isinstance(value, np.generic) and isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf":
        return value.item()
    if hasattr(value, "detach") and getattr(value, "ndim", None) == 0 and not getattr(value, "requires_grad", False):
        item = value.detach().cpu().item()
        return item if isinstance(item, (int, float)) and not isinstance(item, bool) else value
    return value


def check_float(value: object, name: str, minimum: float | None = None) -> float:
    """Return ``value`` as a finite Python float, accepting numpy and 0-d tensor scalars.

    Args:
        value: A number (int, float, numpy scalar, 0-d tensor); bools are refused.
        name: Argument name used in error messages.
        minimum: When given, the smallest allowed value.

    Returns:
        The float.
    """
    value = as_number(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum:g}, got {value:g}")
    return value


def check_class_counts(
    class_counts: Sequence[float] | np.ndarray,
    num_classes: int | None = None,
    name: str = "class_counts",
    allow_zero: bool = True,
) -> np.ndarray:
    """Validate a per-class count vector and return it as a float64 array.

    Args:
        class_counts: One non-negative, finite count per class (list, array or tensor).
        num_classes: When given, the required length.
        name: Argument name used in error messages.
        allow_zero: If False, a zero count is refused.

    Returns:
        The counts as a 1-D ``np.float64`` array.
    """
    if hasattr(class_counts, "detach"):  # torch tensor
        class_counts = class_counts.detach().cpu().numpy()
    try:
        arr = np.asarray(class_counts, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a 1-D sequence of numbers, got {type(class_counts).__name__}") from None
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence of per-class counts, got shape {arr.shape}")
    if num_classes is not None and arr.size != num_classes:
        raise ValueError(f"{name} must have one entry per class (num_classes={num_classes}), got {arr.size}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got non-finite entries at classes {np.flatnonzero(~np.isfinite(arr)).tolist()}")
    if np.any(arr < 0):
        raise ValueError(f"{name} must be non-negative, got negative entries at classes {np.flatnonzero(arr < 0).tolist()}")
    if not allow_zero and np.any(arr == 0):
        raise ValueError(f"{name} must be positive here, got zero counts at classes {np.flatnonzero(arr == 0).tolist()}")
    return arr


def check_labels(labels: Sequence[int] | np.ndarray, num_classes: int, name: str = "labels") -> np.ndarray:
    """Validate integer class labels in ``[0, num_classes)`` and return them as an int64 array."""
    if hasattr(labels, "detach"):
        labels = labels.detach().cpu().numpy()
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence of class indices, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise TypeError(f"{name} must be integer class indices, got dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    bad = (arr < 0) | (arr >= num_classes)
    if np.any(bad):
        raise ValueError(
            f"{name} must lie in [0, {num_classes}) for num_classes={num_classes}, "
            f"got out-of-range values {np.unique(arr[bad])[:10].tolist()}"
        )
    return arr


def class_counts_tensor(
    class_counts,
    num_classes: int | None = None,
    name: str = "class_counts",
    allow_zero: bool = False,
):
    """Validate counts (as :func:`check_class_counts`) and return them as a float32 torch tensor.

    Zero counts are refused by default, since log-priors and effective numbers need n_c > 0.
    """
    import torch

    arr = check_class_counts(class_counts, num_classes, name=name, allow_zero=allow_zero)
    if not allow_zero and arr.sum() == 0:
        raise ValueError(f"{name} must have a positive total")
    return torch.as_tensor(arr, dtype=torch.float32)
