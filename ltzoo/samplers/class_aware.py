"""Class-balanced samplers: "class_balanced" (i.i.d.) and "class_aware" (Shen et al., 2016).

"class_balanced" draws a class uniformly, then an instance uniformly within it, for each of
the epoch's N draws. "class_aware" is the class-aware sampler of Shen et al. (ECCV 2016) as
used by cRT (Kang et al., 2020) and BTM's post-training: a round-robin over a shuffled class
order (reshuffled every round), each class visit yielding ``samples_per_class`` consecutive
samples from that class's own shuffled list, which is cycled and reshuffled when exhausted.
Both plans are drawn in O(N + n) vectorised numpy, with no per-sample Python loop.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ltzoo.registry import SAMPLERS
from ltzoo.samplers.base import EpochSampler, check_int

__all__ = ["ClassBalancedSampler", "ClassAwareSampler"]


@SAMPLERS.register("class_balanced")
class ClassBalancedSampler(EpochSampler):
    """Each draw: a class uniformly from K, then an instance uniformly from that class.

    Args: see :class:`~ltzoo.samplers.base.EpochSampler`; every class must be non-empty.
    """

    def plan(self, epoch: int | None = None) -> np.ndarray:
        """N i.i.d. class-balanced dataset indices.

        Args:
            epoch: The epoch; default the one set by :meth:`set_epoch`.

        Returns:
            int64 array of shape ``(num_samples,)``.
        """
        rng = self.epoch_rng(self._epoch_of(epoch))
        classes = rng.integers(0, self.num_classes, size=self.num_samples)
        return self.draw_from_classes(classes, rng)


@SAMPLERS.register("class_aware")
class ClassAwareSampler(EpochSampler):
    """Round-robin over shuffled classes; ``samples_per_class`` consecutive draws per visit.

    Args:
        labels, num_samples, seed, num_replicas, rank, num_classes: see
            :class:`~ltzoo.samplers.base.EpochSampler`; every class must be non-empty.
        samples_per_class: Consecutive samples yielded per class visit (cRT's
            ``num_samples_cls``), an integer >= 1.
    """

    def __init__(
        self,
        labels: Sequence[int] | np.ndarray,
        num_samples: int | None = None,
        seed: int = 0,
        num_replicas: int | None = None,
        rank: int | None = None,
        num_classes: int | None = None,
        samples_per_class: int = 1,
    ) -> None:
        super().__init__(labels, num_samples, seed, num_replicas, rank, num_classes)
        self.samples_per_class = check_int(samples_per_class, "samples_per_class", 1)

    def plan(self, epoch: int | None = None) -> np.ndarray:
        """The epoch's N dataset indices in class-aware order.

        Args:
            epoch: The epoch; default the one set by :meth:`set_epoch`.

        Returns:
            int64 array of shape ``(num_samples,)``: blocks of ``samples_per_class`` indices of
            one class; each run of K blocks (a round) visits every class once.
        """
        rng = self.epoch_rng(self._epoch_of(epoch))
        k, s = self.num_classes, self.samples_per_class
        rounds = math.ceil(math.ceil(self.num_samples / s) / k)
        # Class order of each round: an independent shuffle of the K classes.
        visit_class = np.argsort(rng.random((rounds, k)), axis=1).ravel()
        per_class = rounds * s  # draws each class serves this epoch (full rounds)

        # Each class's stream: ceil(per_class / n_c) independent shuffles of its members.
        stream, block_start = self.cycled_streams(np.full(k, per_class, dtype=np.int64), rng)

        # Visit v (round v // K) of class c serves stream positions (v // K) * s + j, j < s.
        v = np.arange(visit_class.size)
        pos = block_start[visit_class][:, None] + (v // k * s)[:, None] + np.arange(s)[None, :]
        return stream[pos.ravel()[: self.num_samples]].astype(np.int64, copy=False)

    def extra_repr(self) -> str:
        return f"samples_per_class={self.samples_per_class}"
