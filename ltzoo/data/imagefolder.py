"""Long-tailed sets from an image-folder tree ``root/<split>/<class>/<image>``.

Classes are the sorted sub-folder names (torchvision ``ImageFolder``); the training split is
subsampled to the long-tailed profile with n_max = its largest class. The shared CIFAR-10
JPEG copy is such a tree (pass ``transform="cifar"`` for CIFAR augmentation).
"""
from __future__ import annotations

import os
from typing import Callable

from torchvision import datasets as tvd

from ltzoo.data.base import LongTailedSubset
from ltzoo.data.common import (
    check_imb_ratio,
    check_lt_options,
    check_no_download,
    check_root,
    check_split,
    make_long_tailed,
    resolve_transform,
)
from ltzoo.data.registry import DATASETS

__all__ = ["build_imagefolder_lt"]

SPLITS = ("train", "val", "test")


@DATASETS.register("imagefolder_lt")
def build_imagefolder_lt(
    root: str | os.PathLike | None = None,
    split: str = "train",
    imb_ratio: float = 1,
    download: bool = False,
    transform: Callable | str | None = None,
    profile: str = "exp",
    selection: str = "first",
    seed: int = 0,
    minority_fraction: float = 0.5,
    image_size: int = 224,
) -> LongTailedSubset:
    """An ImageFolder split, long-tailed for ``split="train"``.

    Args:
        root: Folder containing ``<split>/<class>/<image>``.
        split: ``"train"``, ``"val"`` or ``"test"``.
        imb_ratio: Imbalance ratio of the training split (>= 1; 1 keeps it as is; ignored otherwise).
        download: Must be False (nothing to download).
        transform: Callable, kind name, or None for the ImageNet-style transform of ``image_size``.
        profile: ``"exp"`` or ``"step"``.
        selection: ``"first"`` (first files in sorted order) or ``"random"``.
        seed: Seed of the ``"random"`` selection.
        minority_fraction: Minority share for ``"step"``.
        image_size: Output side of the default transform.

    Returns:
        A :class:`LongTailedSubset` over ``torchvision.datasets.ImageFolder``.
    """
    check_split(split, SPLITS)
    imb_ratio = check_imb_ratio(imb_ratio)
    check_lt_options(profile, selection, seed)
    check_no_download(download, "imagefolder_lt")
    base = check_root(root)
    split_dir = check_root(base / split, what=f"root/{split} (root={str(root)!r})")
    train = split == "train"
    source = tvd.ImageFolder(str(split_dir))
    dataset = LongTailedSubset(source, transform=resolve_transform(transform, "imagenet", train, image_size))
    if not train:
        return dataset
    return make_long_tailed(dataset, imb_ratio, profile, selection, seed, minority_fraction)
