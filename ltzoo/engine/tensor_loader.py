"""The batched (tensor) training loader: index an in-memory image tensor, augment the whole batch.

:class:`TensorBatchLoader` replaces the per-sample ``DataLoader`` for training sets held as one
tensor (:class:`~ltzoo.data.in_memory.InMemoryImages`): each batch of the sampler's indices (or
index pairs) gathers its images with one indexing op and augments them as tensor ops on the
training device (:class:`~ltzoo.data.batch_augment.BatchAugment`). It yields what the
per-sample loader yields: ``(x, y)``, or ``(x_i, y_i, x_j, y_j)`` for a pair sampler ("bmls").

The random draws come from ``loader.generator`` (a CPU generator the recipe reseeds from
``(seed, epoch, rank)`` before every epoch), so an epoch is bit-for-bit reproducible on the CPU
and a resumed run draws what the uninterrupted one drew.
"""
from __future__ import annotations

import math
from typing import Iterator

import numpy as np
import torch
from torch.utils.data import Sampler

from ltzoo.data.in_memory import InMemoryImages

__all__ = ["TensorBatchLoader"]


class TensorBatchLoader:
    """Batches of augmented images from an in-memory training set, in the sampler's order.

    Args:
        data: The training set as tensors (moved to ``device`` once).
        sampler: An epoch sampler (``set_epoch`` is called by the recipe); yields indices or index pairs.
        batch_size: Per-process batch size.
        drop_last: Drop the last incomplete batch (ignored when the shard holds fewer than ``batch_size``).
        device: Where the images live and the augmentation runs.
    """

    def __init__(self, data: InMemoryImages, sampler: Sampler, batch_size: int, drop_last: bool = True,
                 device: torch.device | str = "cpu") -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.device = torch.device(device)
        self.data = data.to(self.device)
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = bool(drop_last) and len(sampler) >= batch_size
        self.generator: torch.Generator | None = None  # the recipe reseeds it every epoch

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def _batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.data.augment(self.data.images[idx], self.generator), self.data.targets[idx]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        order = torch.as_tensor(np.asarray(list(iter(self.sampler)), dtype=np.int64)).to(self.device)
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            if idx.ndim == 2:  # index pairs (i, j): both sides augmented, as the per-sample PairedDataset does
                x_i, y_i = self._batch(idx[:, 0])
                x_j, y_j = self._batch(idx[:, 1])
                yield x_i, y_i, x_j, y_j
            else:
                yield self._batch(idx)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(n={len(self.data)}, batch_size={self.batch_size}, drop_last={self.drop_last}, "
                f"device={self.device}, augment={self.data.augment})")


