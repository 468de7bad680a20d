"""CIFAR-10-LT and CIFAR-100-LT built on ``torchvision.datasets.CIFAR10/100``.

The training split is subsampled to LDAM-DRW's profile with n_max = the largest class
(5000 for CIFAR-10, 500 for CIFAR-100); the test split stays the balanced original.
``download=True`` uses torchvision's downloader (needs a network).
"""
from __future__ import annotations

import os
from functools import partial
from typing import Callable

from torchvision import datasets as tvd

from ltzoo.data.base import LongTailedSubset
from ltzoo.data.common import (
    check_imb_ratio,
    check_lt_options,
    check_root,
    check_split,
    make_long_tailed,
    resolve_transform,
)
from ltzoo.data.registry import DATASETS
from ltzoo.metrics.groups import conventional_split

__all__ = ["build_cifar_lt", "build_cifar10_lt", "build_cifar100_lt"]

SPLITS = ("train", "test")


VARIANTS = {"cifar10": (tvd.CIFAR10, "cifar10_lt"), "cifar100": (tvd.CIFAR100, "cifar100_lt")}


def build_cifar_lt(
    variant: str,
    root: str | os.PathLike | None = None,
    split: str = "train",
    imb_ratio: float = 1,
    download: bool = False,
    transform: Callable | str | None = None,
    profile: str = "exp",
    selection: str = "first",
    seed: int = 0,
    minority_fraction: float = 0.5,
) -> LongTailedSubset:
    """CIFAR-10-LT / CIFAR-100-LT (registered as "cifar10_lt" and "cifar100_lt").

    imb_ratio=100 gives 5000, 2997, ..., 50 training images (12,406) for CIFAR-10 and
    500, 477, ..., 5 (10,847) for CIFAR-100.

    Args:
        variant: "cifar10" or "cifar100".
        root: Folder holding (or receiving) ``cifar-10-batches-py`` / ``cifar-100-python``.
        split: ``"train"`` (long-tailed) or ``"test"`` (balanced 10,000).
        imb_ratio: Imbalance ratio of the training split (>= 1; ignored for test).
        download: Download with torchvision if missing.
        transform: Callable, kind name, or None for the CIFAR train/test transform.
        profile: ``"exp"`` or ``"step"``.
        selection: ``"first"`` or ``"random"`` (LDAM-DRW's seeded choice).
        seed: Seed of the ``"random"`` selection.
        minority_fraction: Minority share for ``"step"``.

    Returns:
        A :class:`LongTailedSubset` of the torchvision dataset.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {sorted(VARIANTS)}, got {variant!r}")
    cls, name = VARIANTS[variant]
    check_split(split, SPLITS)
    imb_ratio = check_imb_ratio(imb_ratio)
    check_lt_options(profile, selection, seed)
    root_path = check_root(root, must_exist=not download)
    train = split == "train"
    try:
        source = cls(str(root_path), train=train, download=bool(download))
    except RuntimeError as err:  # torchvision: "Dataset not found or corrupted"
        raise RuntimeError(
            f"{name}: could not load {cls.__name__} from root={str(root)!r} "
            f"(expected {os.path.join(str(root), cls.base_folder)}); pass download=True to fetch it: {err}"
        ) from err
    # Many / medium / few by class index as the BMLS paper splits CIFAR-LT, at every imbalance ratio.
    dataset = LongTailedSubset(source, transform=resolve_transform(transform, "cifar", train),
                               group_split=conventional_split(variant, len(source.classes)))
    if not train:
        return dataset
    return make_long_tailed(dataset, imb_ratio, profile, selection, seed, minority_fraction)


build_cifar10_lt = DATASETS.register("cifar10_lt", partial(build_cifar_lt, "cifar10"))
build_cifar100_lt = DATASETS.register("cifar100_lt", partial(build_cifar_lt, "cifar100"))
