"""Many / medium / few class groups, and the conventional split each dataset carries.

A *group split* is a small JSON record saying how classes are grouped:

* ``{"ranges": {"many": [0, 2], "medium": [3, 6], "few": [7, 9]}}``: inclusive class-index
  ranges, as CIFAR-LT papers use (BMLS paper: CIFAR-10-LT [0,2] / [3,6] / [7,9]; CIFAR-100-LT
  [0,35] / [36,70] / [71,99], at every imbalance ratio);
* ``{"many_threshold": 100, "few_threshold": 20}``: by training images per class, many > 100,
  medium 20-100, few < 20 (the ImageNet-LT convention, the default).

Datasets carry their split as ``dataset.group_split``; a run records it in its config, a saved
model in its ``config.json``; ``ltzoo.metrics.evaluate(..., groups=split)`` applies it.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ltzoo.validation import check_class_counts

__all__ = ["GROUP_NAMES", "THRESHOLD_SPLIT", "CIFAR10_SPLIT", "CIFAR100_SPLIT", "class_groups", "check_group_split",
           "conventional_split", "split_of", "split_kwargs", "describe_split"]

GROUP_NAMES: tuple[str, str, str] = ("many", "medium", "few")
THRESHOLD_SPLIT: dict[str, Any] = {"many_threshold": 100.0, "few_threshold": 20.0}
CIFAR10_SPLIT: dict[str, Any] = {"ranges": {"many": [0, 2], "medium": [3, 6], "few": [7, 9]}}
CIFAR100_SPLIT: dict[str, Any] = {"ranges": {"many": [0, 35], "medium": [36, 70], "few": [71, 99]}}
_CONVENTIONS = {("cifar10", 10): CIFAR10_SPLIT, ("cifar100", 100): CIFAR100_SPLIT}


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


def check_group_split(split: Any, num_classes: int | None = None, name: str = "groups") -> dict[str, Any]:
    """Validate a group split record and return it normalised (JSON-ready, lists not tuples).

    Args:
        split: ``{"ranges": {...}}`` or ``{"many_threshold": x, "few_threshold": y}`` (either
            threshold may be left out: 100 / 20); None gives the threshold default.
        num_classes: When given, ranges must lie in ``[0, num_classes)``.
        name: Argument name for error messages.

    Returns:
        The normalised record.
    """
    if split is None:
        return dict(THRESHOLD_SPLIT)
    if not isinstance(split, Mapping):
        raise TypeError(f"{name} must be a dict like {CIFAR10_SPLIT} or {THRESHOLD_SPLIT}, got {type(split).__name__}")
    keys = set(split)
    if keys == {"ranges"}:
        ranges = split["ranges"]
        _groups_from_ranges(ranges, num_classes if num_classes is not None else _span(ranges, name))
        return {"ranges": {k: [int(v) for v in ranges[k]] for k in GROUP_NAMES if k in ranges}}
    if keys and keys <= set(THRESHOLD_SPLIT):
        out = {k: _check_threshold(split.get(k, THRESHOLD_SPLIT[k]), f"{name}[{k!r}]") for k in THRESHOLD_SPLIT}
        if out["few_threshold"] > out["many_threshold"]:
            raise ValueError(f"{name}: few_threshold ({out['few_threshold']}) must not exceed many_threshold "
                             f"({out['many_threshold']})")
        return out
    raise ValueError(f"{name} must have the single key 'ranges' or the keys {sorted(THRESHOLD_SPLIT)}, "
                     f"got {sorted(map(str, keys))}")


def _span(ranges: Any, name: str) -> int:
    """The smallest class count the ranges fit in (for validation without num_classes)."""
    if not isinstance(ranges, Mapping):
        raise TypeError(f"{name}['ranges'] must be a dict like {CIFAR10_SPLIT['ranges']}, got {type(ranges).__name__}")
    try:
        return 1 + max(int(r[1]) for r in ranges.values()) if ranges else 1
    except (TypeError, ValueError, IndexError, KeyError):
        raise ValueError(f"{name}['ranges'] values must be pairs of integers (lo, hi), got {dict(ranges)!r}") from None


def conventional_split(dataset: str, num_classes: int) -> dict[str, Any]:
    """The split papers use for a dataset family: CIFAR-10/100-LT by index, anything else by threshold.

    Args:
        dataset: Family name ("cifar10", "cifar100", "imagenet_lt", ...).
        num_classes: Its number of classes (index ranges apply only at the family's own K).

    Returns:
        A fresh group split record.
    """
    split = _CONVENTIONS.get((str(dataset), int(num_classes)), THRESHOLD_SPLIT)
    return check_group_split(split)


def split_of(dataset: Any) -> dict[str, Any]:
    """``dataset.group_split`` when the dataset carries one, else the threshold default."""
    return check_group_split(getattr(dataset, "group_split", None), getattr(dataset, "num_classes", None))


def split_kwargs(split: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`class_groups` keyword arguments of a validated split record."""
    if "ranges" in split:
        return {"ranges": {k: tuple(v) for k, v in split["ranges"].items()}}
    return {"many_threshold": split["many_threshold"], "few_threshold": split["few_threshold"]}


def describe_split(split: Mapping[str, Any]) -> str:
    """One line for logs and model cards, e.g. "many / medium / few = classes 0-2 / 3-6 / 7-9"."""
    split = check_group_split(split)
    if "ranges" in split:
        r = split["ranges"]
        cells = [f"{r[k][0]}-{r[k][1]}" if k in r else "none" for k in GROUP_NAMES]
        return "many / medium / few = classes " + " / ".join(cells)
    return (f"many / medium / few = > {split['many_threshold']:g} / {split['few_threshold']:g}-"
            f"{split['many_threshold']:g} / < {split['few_threshold']:g} training images")
