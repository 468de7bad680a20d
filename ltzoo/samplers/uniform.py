"""The "random" sampler: instance-uniform sampling, a fresh seeded permutation per epoch.

Named ``uniform.py`` (not ``random.py``) so it never shadows the standard-library module.
"""
from __future__ import annotations

import math

import numpy as np

from ltzoo.registry import SAMPLERS
from ltzoo.samplers.base import EpochSampler

__all__ = ["RandomSampler"]


@SAMPLERS.register("random")
class RandomSampler(EpochSampler):
    """Each epoch yields a seeded permutation of the dataset indices.

    With ``num_samples`` larger than the dataset, further independent permutations follow
    (like ``torch.utils.data.RandomSampler``); the last one is truncated to ``num_samples``.
    Empty classes are allowed.

    Args: see :class:`~ltzoo.samplers.base.EpochSampler`.
    """

    requires_all_classes = False

    def plan(self, epoch: int | None = None) -> np.ndarray:
        """N dataset indices: concatenated permutations of ``range(len(labels))``, truncated.

        Args:
            epoch: The epoch; default the one set by :meth:`set_epoch`.

        Returns:
            int64 array of shape ``(num_samples,)``.
        """
        rng = self.epoch_rng(self._epoch_of(epoch))
        n = len(self.labels)
        blocks = [rng.permutation(n) for _ in range(math.ceil(self.num_samples / n))]
        return np.concatenate(blocks)[: self.num_samples].astype(np.int64, copy=False)
