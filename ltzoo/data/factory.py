"""``create_dataset`` / ``list_datasets``: build any registered data set by name."""
from __future__ import annotations

import os
from typing import Any, Callable, Sequence

# Importing the builder modules registers them in DATASETS.
from ltzoo.data import cifar, digits, imagefolder, split_list  # noqa: F401
from ltzoo.data.base import LabeledDataset
from ltzoo.data.common import check_imb_ratio
from ltzoo.data.registry import DATASETS

__all__ = ["create_dataset", "list_datasets"]


def create_dataset(
    name: str,
    root: str | os.PathLike | None = None,
    split: str = "train",
    imb_ratio: float = 1,
    download: bool = False,
    transform: Callable | str | None = None,
    **kwargs: Any,
) -> LabeledDataset:
    """Build the registered data set ``name``.

    Args:
        name: A name from :func:`list_datasets` (``"cifar10_lt"``, ``"digits_lt"``, ...).
        root: Data folder (unused by ``"digits_lt"``).
        split: ``"train"``, ``"test"`` (or ``"val"`` where the set has one).
        imb_ratio: Imbalance ratio n_max / n_min of the TRAINING split, >= 1; test and
            validation splits stay as released (balanced for CIFAR) whatever its value.
        download: Let torchvision download the CIFAR files if missing.
        transform: Callable, a kind name (``"cifar"``, ``"imagenet"``, ``"digits"``,
            ``"none"``), or None for the set's standard train/test transform.
        **kwargs: Builder options: ``profile`` ("exp"/"step"), ``selection``
            ("first"/"random"), ``seed``, ``minority_fraction``, and per set e.g.
            ``list_file``, ``num_classes``, ``image_size``, ``test_size``.

    Returns:
        A dataset with ``targets``, ``classes``, ``num_classes``, ``class_counts``,
        ``subset()``, whose items are ``(image tensor, int label)``.

    Raises:
        ValueError: Unknown name (closest names listed), bad split, ``imb_ratio`` < 1 or
            not finite, missing root, ...
    """
    builder = DATASETS.get(name)
    check_imb_ratio(imb_ratio)
    return builder(root=root, split=split, imb_ratio=imb_ratio, download=download, transform=transform, **kwargs)


def list_datasets(include: str | Sequence[str] = "*", exclude: str | Sequence[str] | None = None) -> list[str]:
    """Sorted registered data set names matching ``include`` and not ``exclude`` (fnmatch patterns)."""
    return DATASETS.list(include, exclude)
