"""The dataset interface every ltzoo dataset exposes, and its two implementations.

Every dataset has ``targets`` (list of int labels), ``classes`` (names), ``num_classes``,
``class_counts`` (images per class as built), ``group_split`` (its conventional many / medium /
few split, see :mod:`ltzoo.metrics.groups`; None: the > 100 / < 20 threshold default),
``__len__`` and ``__getitem__`` returning ``(transformed image, int label)``, plus
``subset(indices)`` to carve further splits (e.g. labeled/unlabeled parts) that share the same
source and keep its group split.

* :class:`LongTailedSubset` wraps a *source* dataset whose items are ``(raw image, label)``
  (torchvision CIFAR, ImageFolder, a split list) plus the indices it keeps.
* :class:`TensorImageDataset` holds all images as one float tensor (fast small sets).
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ltzoo.validation import check_labels

__all__ = ["LabeledDataset", "LongTailedSubset", "TensorImageDataset", "KEEP"]


class _Keep:
    def __repr__(self) -> str:
        return "KEEP"


KEEP: Any = _Keep()
"""Sentinel for ``subset(..., transform=KEEP)``: reuse the parent's transform."""


class LabeledDataset(Dataset):
    """Shared bookkeeping: labels, class names and per-class counts.

    Args:
        targets: Label of every item, in ``[0, len(classes))``.
        classes: Class names; their number defines ``num_classes``.
        transform: Applied to each image in ``__getitem__`` (None: image returned as stored).
        group_split: The many / medium / few split (a record of :mod:`ltzoo.metrics.groups`), or None.
    """

    def __init__(
        self,
        targets: Sequence[int] | np.ndarray,
        classes: Sequence[str],
        transform: Callable | None = None,
        group_split: dict[str, Any] | None = None,
    ) -> None:
        self.classes = list(classes)
        if not self.classes:
            raise ValueError("classes must name at least one class")
        labels = check_labels(np.asarray(targets, dtype=np.int64).reshape(-1), len(self.classes), name="targets")
        self.targets: list[int] = labels.tolist()
        self.class_counts: list[int] = np.bincount(labels, minlength=len(self.classes)).tolist()
        if transform is not None and not callable(transform):
            raise TypeError(f"transform must be callable or None, got {type(transform).__name__}")
        self.transform = transform
        self.group_split = group_split

    @property
    def group_split(self) -> dict[str, Any] | None:
        """The dataset's many / medium / few split record (None: the threshold default)."""
        return self._group_split

    @group_split.setter
    def group_split(self, split: dict[str, Any] | None) -> None:
        from ltzoo.metrics.groups import check_group_split

        self._group_split = None if split is None else check_group_split(split, len(self.classes), "group_split")

    @property
    def num_classes(self) -> int:
        """Number of classes (including classes with no image here)."""
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.targets)

    def subset(self, indices: Sequence[int] | np.ndarray, transform: Callable | None = KEEP) -> "LabeledDataset":
        """A dataset of the items at ``indices`` (positions in this dataset).

        Args:
            indices: Positions to keep, in the order to keep them.
            transform: Transform of the new dataset; ``KEEP`` (default) reuses this one's.

        Returns:
            A dataset of the same kind sharing this one's source data.
        """
        raise NotImplementedError

    def _check_positions(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise ValueError(f"indices must lie in [0, {len(self)}), got values in [{idx.min()}, {idx.max()}]")
        return idx

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(len={len(self)}, num_classes={self.num_classes}, "
            f"max/min count={max(self.class_counts)}/{min(self.class_counts)})"
        )


class LongTailedSubset(LabeledDataset):
    """A source dataset restricted to ``indices``, with its own transform.

    Args:
        source: Items ``(raw image, label)``; needs ``targets`` and ``classes`` unless given.
        indices: Source indices to keep, in order (None: all).
        transform: Applied to the raw image.
        targets: Labels of the whole source (default ``source.targets``).
        classes: Class names (default ``source.classes``).
        group_split: The many / medium / few split record, or None.
    """

    def __init__(
        self,
        source: Any,
        indices: Sequence[int] | np.ndarray | None = None,
        transform: Callable | None = None,
        targets: Sequence[int] | np.ndarray | None = None,
        classes: Sequence[str] | None = None,
        group_split: dict[str, Any] | None = None,
    ) -> None:
        source_targets = np.asarray(source.targets if targets is None else targets, dtype=np.int64).reshape(-1)
        if indices is None:
            idx = np.arange(source_targets.size, dtype=np.int64)
        else:
            idx = np.asarray(indices, dtype=np.int64).reshape(-1)
            if idx.size and (idx.min() < 0 or idx.max() >= source_targets.size):
                raise ValueError(f"indices must lie in [0, {source_targets.size}) for a source of that size")
        super().__init__(source_targets[idx], source.classes if classes is None else classes, transform, group_split)
        self.source = source
        self.indices = idx
        self._source_targets = source_targets

    def __getitem__(self, i: int) -> tuple[Any, int]:
        img, _ = self.source[int(self.indices[i])]
        if self.transform is not None:
            img = self.transform(img)
        return img, self.targets[i]

    def subset(
        self, indices: Sequence[int] | np.ndarray, transform: Callable | None = KEEP
    ) -> "LongTailedSubset":
        idx = self._check_positions(indices)
        return LongTailedSubset(
            self.source,
            self.indices[idx],
            self.transform if transform is KEEP else transform,
            targets=self._source_targets,
            classes=self.classes,
            group_split=self.group_split,
        )


class TensorImageDataset(LabeledDataset):
    """All images in one float tensor ``(N, C, H, W)``; ``__getitem__`` is an index plus the transform.

    Args:
        images: Image tensor, first dimension the items.
        targets: One label per image.
        classes: Class names.
        transform: Applied to each ``(C, H, W)`` tensor (None: returned as stored).
        group_split: The many / medium / few split record, or None.
    """

    def __init__(
        self,
        images: torch.Tensor,
        targets: Sequence[int] | np.ndarray,
        classes: Sequence[str],
        transform: Callable | None = None,
        group_split: dict[str, Any] | None = None,
    ) -> None:
        if not isinstance(images, torch.Tensor) or images.ndim < 2:
            raise TypeError("images must be a tensor with a leading item dimension")
        super().__init__(targets, classes, transform, group_split)
        if images.shape[0] != len(self.targets):
            raise ValueError(f"images has {images.shape[0]} items but targets has {len(self.targets)}")
        self.images = images

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        img = self.images[i]
        if self.transform is not None:
            img = self.transform(img)
        return img, self.targets[i]

    def subset(
        self, indices: Sequence[int] | np.ndarray, transform: Callable | None = KEEP
    ) -> "TensorImageDataset":
        idx = self._check_positions(indices)
        return TensorImageDataset(
            self.images[torch.from_numpy(idx)],
            np.asarray(self.targets, dtype=np.int64)[idx],
            self.classes,
            self.transform if transform is KEEP else transform,
            self.group_split,
        )
