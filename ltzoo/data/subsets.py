"""Choosing which images of each class a long-tailed (or semi-supervised) split keeps.

``select_per_class(..., mode="random")`` reproduces the selection of LDAM-DRW's
``IMBALANCECIFAR10`` (copied by MiSLAS, BTM and the ETF repo): numpy seeded with 0, then
for each class in order its (ascending) indices are shuffled and the first n_c kept, one
random stream shared across classes. ``mode="first"`` keeps the first n_c in dataset order.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ltzoo.validation import check_class_counts, check_labels

__all__ = ["SELECTIONS", "check_seed", "select_per_class", "ltssl_split"]

SELECTIONS = ("first", "random")


def _int_counts(counts: Sequence[int] | np.ndarray, name: str, num_classes: int | None = None) -> np.ndarray:
    """Validate non-negative integer per-class counts and return them as int64."""
    arr = check_class_counts(counts, num_classes=num_classes, name=name, allow_zero=True)
    if np.any(arr != np.floor(arr)):
        bad = np.flatnonzero(arr != np.floor(arr)).tolist()
        raise ValueError(f"{name} must be whole numbers of images, got fractional entries at classes {bad}")
    return arr.astype(np.int64)


def check_seed(seed: int) -> int:
    """Return ``seed`` as an int, or raise ValueError naming it unless it is an integer >= 0."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an integer in [0, 2**32), got {seed!r}")
    return int(seed)


def _class_indices(targets: np.ndarray, c: int) -> np.ndarray:
    return np.flatnonzero(targets == c)


def select_per_class(
    targets: Sequence[int] | np.ndarray,
    counts: Sequence[int] | np.ndarray,
    mode: str = "first",
    seed: int = 0,
) -> np.ndarray:
    """Indices keeping ``counts[c]`` images of each class ``c``.

    Args:
        targets: Class index of every image, in dataset order (values in ``[0, len(counts))``).
        counts: Images to keep per class (non-negative integers).
        mode: ``"first"`` (the first n_c of each class in dataset order) or ``"random"``
            (LDAM-DRW's seeded per-class shuffle, reproduced exactly; see the module docstring).
        seed: Seed of ``np.random.RandomState`` for ``"random"``.

    Returns:
        An int64 array of dataset indices sorted by class, then by position in the dataset
        (LDAM-DRW keeps the shuffled order within a class; the set of images is the same).

    Raises:
        ValueError: If a class has fewer images than ``counts`` asks for, or on bad arguments.
    """
    if mode not in SELECTIONS:
        raise ValueError(f"mode must be one of {SELECTIONS}, got {mode!r}")
    counts_arr = _int_counts(counts, "counts")
    targets_arr = check_labels(targets, len(counts_arr), name="targets")
    seed = check_seed(seed)
    rng = np.random.RandomState(seed) if mode == "random" else None
    kept = []
    for c, n_c in enumerate(counts_arr.tolist()):
        idx = _class_indices(targets_arr, c)
        if n_c > idx.size:
            raise ValueError(f"counts asks for {n_c} images of class {c}, but the dataset has only {idx.size}")
        if rng is not None:
            rng.shuffle(idx)
        kept.append(np.sort(idx[:n_c]))
    return np.concatenate(kept).astype(np.int64) if kept else np.zeros(0, dtype=np.int64)


def ltssl_split(
    targets: Sequence[int] | np.ndarray,
    labeled_counts: Sequence[int] | np.ndarray,
    unlabeled_counts: Sequence[int] | np.ndarray,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint labeled and unlabeled index sets for long-tailed semi-supervised learning.

    For each class in order (one ``np.random.RandomState(seed)`` stream, as in DARP/DASO's
    code), the class's indices are shuffled; the first ``labeled_counts[c]`` are labeled and
    the next ``unlabeled_counts[c]`` unlabeled.

    Args:
        targets: Class index of every image, in dataset order.
        labeled_counts: Labeled images per class (e.g. from :func:`ltssl_counts`).
        unlabeled_counts: Unlabeled images per class, same length.
        seed: Seed of the shuffle.

    Returns:
        ``(labeled_indices, unlabeled_indices)``, int64 arrays sorted by class then position.

    Raises:
        ValueError: If a class lacks ``labeled_counts[c] + unlabeled_counts[c]`` images.
    """
    lab = _int_counts(labeled_counts, "labeled_counts")
    unl = _int_counts(unlabeled_counts, "unlabeled_counts", num_classes=len(lab))
    targets_arr = check_labels(targets, len(lab), name="targets")
    rng = np.random.RandomState(check_seed(seed))
    labeled, unlabeled = [], []
    for c, (n_c, m_c) in enumerate(zip(lab.tolist(), unl.tolist())):
        idx = _class_indices(targets_arr, c)
        if n_c + m_c > idx.size:
            raise ValueError(
                f"labeled_counts + unlabeled_counts ask for {n_c} + {m_c} images of class {c}, "
                f"but the dataset has only {idx.size}"
            )
        rng.shuffle(idx)
        labeled.append(np.sort(idx[:n_c]))
        unlabeled.append(np.sort(idx[n_c:n_c + m_c]))
    return np.concatenate(labeled).astype(np.int64), np.concatenate(unlabeled).astype(np.int64)
