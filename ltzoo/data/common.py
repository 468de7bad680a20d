"""Argument checks and the long-tail step shared by the dataset builders."""
from __future__ import annotations

import math
import os
from numbers import Real
from pathlib import Path
from typing import Callable, Sequence

from ltzoo.data.base import LabeledDataset
from ltzoo.data.profiles import PROFILES, long_tailed_counts
from ltzoo.data.subsets import SELECTIONS, check_seed, select_per_class
from ltzoo.data.transforms import build_transform

__all__ = [
    "check_split",
    "check_imb_ratio",
    "check_lt_options",
    "check_root",
    "check_no_download",
    "resolve_transform",
    "make_long_tailed",
]


def check_split(split: str, allowed: Sequence[str]) -> str:
    """Return ``split`` or raise ValueError naming it and the allowed values."""
    if split not in allowed:
        raise ValueError(f"split must be one of {tuple(allowed)}, got {split!r}")
    return split


def check_imb_ratio(imb_ratio: float) -> float:
    """Return ``imb_ratio`` as a float, or raise unless it is finite and >= 1."""
    if isinstance(imb_ratio, bool) or not isinstance(imb_ratio, Real):
        raise TypeError(f"imb_ratio must be a real number >= 1, got {type(imb_ratio).__name__} {imb_ratio!r}")
    value = float(imb_ratio)
    if not math.isfinite(value) or value < 1:
        raise ValueError(f"imb_ratio must be finite and >= 1 (1 = balanced), got {imb_ratio!r}")
    return value


def check_lt_options(profile: str, selection: str, seed: int = 0) -> None:
    """Raise ValueError naming ``profile``, ``selection`` or ``seed`` if it is invalid."""
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    if selection not in SELECTIONS:
        raise ValueError(f"selection must be one of {SELECTIONS}, got {selection!r}")
    check_seed(seed)


def check_root(root: str | os.PathLike | None, what: str = "root", must_exist: bool = True) -> Path:
    """Return ``root`` as a Path, or raise ValueError naming it if missing (or not a folder)."""
    if root is None:
        raise ValueError(f"{what} is required (the folder holding the data set), got None")
    path = Path(root).expanduser()
    if must_exist and not path.is_dir():
        raise ValueError(f"{what} {str(root)!r} does not exist or is not a folder")
    return path


def check_no_download(download: bool, name: str) -> None:
    """Raise if ``download`` is requested for a data set that cannot be downloaded."""
    if download:
        raise ValueError(f"download=True is not supported by {name!r}; place the files under root yourself")


def resolve_transform(
    transform: Callable | str | None, default_kind: str, train: bool, size: int = 224
) -> Callable | None:
    """Pick the transform: a callable as given, a kind name via ``build_transform``, None -> ``default_kind``.

    Args:
        transform: Callable, a kind ("cifar", "imagenet", "digits", "none") or None.
        default_kind: Kind used when ``transform`` is None.
        train: Whether the training (augmenting) variant is wanted.
        size: Output side of the ImageNet-style transforms.

    Returns:
        The transform (None: images returned as stored).
    """
    if transform is None:
        return build_transform(default_kind, train, size)
    if isinstance(transform, str):
        return build_transform(transform, train, size)
    if not callable(transform):
        raise TypeError(f"transform must be callable, a kind name or None, got {type(transform).__name__}")
    return transform


def make_long_tailed(
    dataset: LabeledDataset,
    imb_ratio: float,
    profile: str = "exp",
    selection: str = "first",
    seed: int = 0,
    minority_fraction: float = 0.5,
    n_max: int | None = None,
) -> LabeledDataset:
    """Subsample ``dataset`` to the long-tailed profile (class 0 largest).

    Args:
        dataset: The (usually balanced) training set.
        imb_ratio: Imbalance ratio; with 1 and ``n_max=None`` the dataset is returned unchanged.
        profile: ``"exp"`` or ``"step"`` (see :func:`long_tailed_counts`).
        selection: ``"first"`` or ``"random"`` (see :func:`select_per_class`).
        seed: Seed for ``"random"``.
        minority_fraction: Fraction of minority classes for ``"step"``.
        n_max: Images of class 0; default the largest class of ``dataset``.

    Returns:
        The long-tailed subset, indices sorted by class then position.
    """
    imb_ratio = check_imb_ratio(imb_ratio)
    check_lt_options(profile, selection, seed)
    if imb_ratio == 1.0 and n_max is None:
        return dataset
    if n_max is None:
        n_max = max(dataset.class_counts)
    counts = long_tailed_counts(n_max, dataset.num_classes, imb_ratio, profile, minority_fraction)
    indices = select_per_class(dataset.targets, counts, mode=selection, seed=seed)
    return dataset.subset(indices)
