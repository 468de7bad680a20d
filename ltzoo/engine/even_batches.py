"""A batch sampler that keeps every item of an epoch: ceil(n / B) batches of near-equal size.

``drop_last=True`` throws away up to B - 1 items per epoch, which on BTM's small balanced
subsets (N_C images per class) is a large share of them; ``drop_last=False`` keeps them but
may end on a batch of one image, which BatchNorm in training mode cannot normalise. This
sampler splits the epoch's n items (in the inner sampler's order) into ceil(n / B) batches
whose sizes differ by at most one, so nothing is dropped and no batch is much smaller than B.
"""
from __future__ import annotations

import math
from typing import Any, Iterator

from torch.utils.data import DataLoader, Dataset, Sampler

__all__ = ["EvenBatchSampler", "even_batch_loader"]


class EvenBatchSampler(Sampler):
    """Split each epoch of ``sampler`` into ceil(n / batch_size) batches of near-equal size.

    Args:
        sampler: The per-item sampler (its ``set_epoch`` is forwarded).
        batch_size: The largest batch size B (>= 1).
    """

    def __init__(self, sampler: Sampler, batch_size: int) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        self.sampler = sampler
        self.batch_size = batch_size

    def set_epoch(self, epoch: int) -> None:
        """Forward ``epoch`` to the inner sampler."""
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return math.ceil(len(self.sampler) / self.batch_size)

    def __iter__(self) -> Iterator[list[Any]]:
        items = list(self.sampler)
        n = len(items)
        batches = math.ceil(n / self.batch_size)
        start = 0
        for b in range(batches):
            size = n // batches + (1 if b < n % batches else 0)
            yield items[start:start + size]
            start += size


def even_batch_loader(dataset: Dataset, sampler: Sampler, batch_size: int, num_workers: int = 0) -> DataLoader:
    """A training loader over ``sampler`` in :class:`EvenBatchSampler` batches (a ``PairedDataset``
    for pair samplers such as "bmls").

    Args:
        dataset: Map-style dataset of ``(image, label)``.
        sampler: The epoch sampler (call ``loader.batch_sampler.set_epoch`` or the sampler's own).
        batch_size: The largest batch size.
        num_workers: Loader workers.

    Returns:
        The loader; ``len(loader)`` is ceil(len(sampler) / batch_size).
    """
    from ltzoo.engine.builders import is_pair_sampler
    from ltzoo.samplers.paired import PairedDataset

    data = PairedDataset(dataset) if is_pair_sampler(sampler) else dataset
    return DataLoader(data, batch_sampler=EvenBatchSampler(sampler, batch_size), num_workers=num_workers)
