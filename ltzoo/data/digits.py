"""``digits_lt``: a small real long-tailed set from scikit-learn's bundled digits.

scikit-learn's ``load_digits`` (1,797 8x8 grayscale images of 10 digits, no download) is
split train/test with a seeded stratified split; the training part is subsampled to the
long-tailed profile with n_max = the smallest class's training count (so every class can
supply its share, also at ``imb_ratio=1``). Images are upsampled bilinearly to 32x32,
repeated to 3 channels and normalised with mean 0.5, std 0.5 (background -1). The whole
split is one float tensor, so ``__getitem__`` is cheap (for CPU demos and fast tests).
"""
from __future__ import annotations

import os
from functools import lru_cache
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ltzoo.data.base import TensorImageDataset
from ltzoo.data.common import (
    check_imb_ratio,
    check_lt_options,
    check_no_download,
    check_split,
    make_long_tailed,
    resolve_transform,
)
from ltzoo.data.registry import DATASETS

__all__ = ["DIGITS_MEAN", "DIGITS_STD", "build_digits_lt", "digits_tensors"]

SPLITS = ("train", "test")
DIGITS_MEAN = 0.5
DIGITS_STD = 0.5


@lru_cache(maxsize=4)
def _all_digits(size: int) -> tuple[torch.Tensor, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.from_numpy(bunch.images.astype(np.float32) / 16.0)[:, None]  # (N, 1, 8, 8) in [0, 1]
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).clamp_(0.0, 1.0)
    x = (x.repeat(1, 3, 1, 1) - DIGITS_MEAN) / DIGITS_STD
    return x.contiguous(), bunch.target.astype(np.int64)


def digits_tensors(
    split: str, test_size: float = 0.35, seed: int = 0, size: int = 32
) -> tuple[torch.Tensor, np.ndarray]:
    """The normalised ``(N, 3, size, size)`` images and labels of one split of the digits.

    Args:
        split: ``"train"`` or ``"test"``.
        test_size: Fraction of each class in the test split (stratified), in (0, 1).
        seed: Seed of the split.
        size: Image side after upsampling.

    Returns:
        ``(images, labels)``, images float32 normalised with mean 0.5, std 0.5.
    """
    from sklearn.model_selection import train_test_split

    check_split(split, SPLITS)
    if not isinstance(test_size, float) or not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be a float in (0, 1), got {test_size!r}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 8:
        raise ValueError(f"size must be an integer >= 8, got {size!r}")
    images, labels = _all_digits(size)
    idx = np.arange(labels.size)
    train_idx, test_idx = train_test_split(idx, test_size=test_size, stratify=labels, random_state=seed)
    keep = np.sort(train_idx if split == "train" else test_idx)
    return images[torch.from_numpy(keep)], labels[keep]


@DATASETS.register("digits_lt")
def build_digits_lt(
    root: str | os.PathLike | None = None,
    split: str = "train",
    imb_ratio: float = 1,
    download: bool = False,
    transform: Callable | str | None = None,
    profile: str = "exp",
    selection: str = "first",
    seed: int = 0,
    minority_fraction: float = 0.5,
    test_size: float = 0.35,
) -> TensorImageDataset:
    """Long-tailed digits (10 classes, 3x32x32 tensors).

    Args:
        root: Ignored (the data ships with scikit-learn).
        split: ``"train"`` (long-tailed) or ``"test"`` (stratified, about 63 per class).
        imb_ratio: Imbalance ratio of the training split (>= 1; 1 = balanced at the
            smallest class's count; ignored for test).
        download: Must be False.
        transform: Callable, kind name, or None: a random crop (padding 2, no flip) for
            training, none for testing.
        profile: ``"exp"`` or ``"step"``.
        selection: ``"first"`` or ``"random"``.
        seed: Seed of the train/test split and of the ``"random"`` selection.
        minority_fraction: Minority share for ``"step"``.
        test_size: Fraction of each class held out for testing.

    Returns:
        A :class:`TensorImageDataset`.
    """
    check_split(split, SPLITS)
    imb_ratio = check_imb_ratio(imb_ratio)
    check_lt_options(profile, selection, seed)
    check_no_download(download, "digits_lt")
    images, labels = digits_tensors(split, test_size=test_size, seed=seed)
    train = split == "train"
    dataset = TensorImageDataset(images, labels, [str(d) for d in range(10)],
                                 resolve_transform(transform, "digits", train))
    if not train:
        return dataset
    n_max = min(dataset.class_counts)
    return make_long_tailed(dataset, imb_ratio, profile, selection, seed, minority_fraction, n_max=n_max)
