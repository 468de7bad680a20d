"""Shared bookkeeping of every ltzoo sampler: epoch, seed, rank sharding, label checks.

A sampler subclass only implements :meth:`EpochSampler.plan`, the epoch's full list of
draws as a deterministic function of ``(seed, epoch)``; it is identical on every rank.
Sharding follows ``torch.utils.data.DistributedSampler``: the plan is padded to a multiple
of ``num_replicas`` by repeating its start, and rank ``r`` takes ``padded[r::num_replicas]``,
so every rank yields ``ceil(N / num_replicas)`` items and the shards are disjoint in plan
positions and together cover the plan.
"""
from __future__ import annotations

import math
import sys
from numbers import Integral
from typing import Any, Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler

from ltzoo.distributed import rank_and_world_size
from ltzoo.validation import check_labels, check_num_classes

__all__ = ["EpochSampler", "check_int", "shard_positions"]


def check_int(value: Any, name: str, minimum: int) -> int:
    """Return ``value`` as an int, or raise naming ``name`` unless it is an integer >= ``minimum``.

    Args:
        value: The argument to check (bools are refused).
        name: The argument name used in the message.
        minimum: The smallest allowed value.

    Returns:
        ``int(value)``.
    """
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def shard_positions(num_samples: int, rank: int, num_replicas: int) -> np.ndarray:
    """Plan positions taken by ``rank``: ``padded[rank::num_replicas]`` of the padded plan.

    Args:
        num_samples: Plan length N >= 1.
        rank: This replica, in ``[0, num_replicas)``.
        num_replicas: Number of replicas R >= 1.

    Returns:
        int64 array of ``ceil(N / R)`` positions in ``[0, N)`` (padding repeats the start).
    """
    total = math.ceil(num_samples / num_replicas) * num_replicas
    return np.arange(rank, total, num_replicas, dtype=np.int64) % num_samples


def _resolve_replicas(num_replicas: int | None, rank: int | None) -> tuple[int, int]:
    """Fill ``None`` from torch.distributed (or 1 / 0 without a process group) and validate."""
    dist_rank, dist_world = rank_and_world_size()
    num_replicas = dist_world if num_replicas is None else check_int(num_replicas, "num_replicas", 1)
    rank = dist_rank if rank is None else check_int(rank, "rank", 0)
    if rank >= num_replicas:
        raise ValueError(f"rank must lie in [0, num_replicas={num_replicas}), got rank={rank}")
    return num_replicas, rank


class EpochSampler(Sampler):
    """Base class: a seeded, epoch-planned, rank-sharded sampler over labelled data.

    Args:
        labels: 1-D integer class labels of the dataset (list, numpy array or tensor).
        num_samples: Epoch length N (plan size before sharding); default ``len(labels)``.
        seed: Non-negative integer seed; the plan is a function of ``(seed, epoch)`` only.
        num_replicas: Number of ranks; default the torch.distributed world size (1 without one).
        rank: This rank; default the torch.distributed rank (0 without a process group).
        num_classes: K; default ``max(labels) + 1``.

    Subclasses set ``requires_all_classes`` (refuse a class in range with no sample) and
    implement :meth:`plan`.
    """

    requires_all_classes: bool = True

    def __init__(
        self,
        labels: Sequence[int] | np.ndarray,
        num_samples: int | None = None,
        seed: int = 0,
        num_replicas: int | None = None,
        rank: int | None = None,
        num_classes: int | None = None,
    ) -> None:
        if labels is None:
            raise TypeError("labels must be a 1-D sequence of integer class indices, got None")
        super().__init__()
        if num_classes is None:
            try:
                arr = check_labels(labels, sys.maxsize)  # checks dtype, shape and negatives
            except ValueError as err:
                if "must lie in" not in str(err):
                    raise
                raw = np.asarray(labels.detach().cpu() if hasattr(labels, "detach") else labels)
                raise ValueError("labels must lie in [0, num_classes): non-negative class indices, "
                                 f"got negative values {np.unique(raw[raw < 0])[:10].tolist()}") from None
            num_classes = int(arr.max()) + 1 if arr.size else 1
        num_classes = check_num_classes(num_classes)
        self.labels = check_labels(labels, num_classes)
        if self.labels.size == 0:
            raise ValueError("labels must hold at least one sample, got an empty sequence")
        self.num_classes = num_classes
        self.num_samples = len(self.labels) if num_samples is None else check_int(num_samples, "num_samples", 1)
        self.seed = check_int(seed, "seed", 0)
        self.num_replicas, self.rank = _resolve_replicas(num_replicas, rank)
        self.epoch = 0
        # Per-class index lists from one stable argsort: class c owns order[offsets[c]:offsets[c+1]].
        self.class_counts = np.bincount(self.labels, minlength=num_classes).astype(np.int64)
        self.order = np.argsort(self.labels, kind="stable")
        self.offsets = np.concatenate([[0], np.cumsum(self.class_counts)]).astype(np.int64)
        if self.requires_all_classes and np.any(self.class_counts == 0):
            empty = np.flatnonzero(self.class_counts == 0)
            raise ValueError(
                f"every class in [0, num_classes={num_classes}) needs at least one sample in labels; "
                f"class {int(empty[0])} is empty (empty classes: {empty[:10].tolist()}); "
                "pass the right num_classes or drop the class"
            )

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose plan the next iteration yields (call before each epoch)."""
        self.epoch = check_int(epoch, "epoch", 0)

    def epoch_rng(self, epoch: int, stream: int = 0) -> np.random.Generator:
        """A numpy generator determined by ``(seed, epoch, stream)`` alone (same on every rank)."""
        epoch = check_int(epoch, "epoch", 0)
        return np.random.Generator(np.random.PCG64(np.random.SeedSequence([self.seed, epoch, stream])))

    def class_members(self, c: int) -> np.ndarray:
        """Dataset indices of class ``c``, in ascending order."""
        return self.order[self.offsets[c]:self.offsets[c + 1]]

    def draw_from_classes(self, classes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One uniformly drawn dataset index of each class in ``classes`` (vectorised, O(len))."""
        within = rng.integers(0, self.class_counts[classes])
        return self.order[self.offsets[classes] + within]

    def cycled_streams(self, need: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Per-class draw streams: ceil(need_c / n_c) independent shuffles of class c's members, end to end.

        Args:
            need: (K,) draws each class must serve (0 allowed).
            rng: The epoch's generator.

        Returns:
            ``(stream, start)``: class c's draws are ``stream[start[c]:]``, the first ``need[c]`` of them
            going through the whole shuffled class before any member repeats.
        """
        counts = self.class_counts
        cycles = -(-np.asarray(need, dtype=np.int64) // np.maximum(counts, 1))
        block = cycles * counts
        start = np.concatenate([[0], np.cumsum(block)[:-1]]).astype(np.int64)
        entry_class = np.repeat(np.arange(self.num_classes), block)
        local = np.arange(entry_class.size) - start[entry_class]
        member = self.order[self.offsets[entry_class] + local % counts[entry_class]]
        group_start = np.concatenate([[0], np.cumsum(cycles)[:-1]])
        entry_group = group_start[entry_class] + local // counts[entry_class]
        # each (class, cycle) group is shuffled by sorting random keys within it
        return member[np.lexsort((rng.random(entry_class.size), entry_group))], start

    def draw_cycling(self, classes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One dataset index per entry of ``classes``, each class cycling through its own shuffled list.

        The j-th occurrence of class c (in array order) takes the j-th entry of c's stream
        (:meth:`cycled_streams`): no member repeats before the whole class has been used.
        """
        classes = np.asarray(classes, dtype=np.int64)
        need = np.bincount(classes, minlength=self.num_classes)
        stream, start = self.cycled_streams(need, rng)
        order = np.argsort(classes, kind="stable")
        first = np.concatenate([[0], np.cumsum(need)[:-1]])
        occurrence = np.empty_like(order)
        occurrence[order] = np.arange(order.size) - first[classes[order]]
        return stream[start[classes] + occurrence]

    def plan(self, epoch: int | None = None) -> np.ndarray:
        """The full epoch plan, shared by all ranks: N dataset indices (or index pairs).

        Args:
            epoch: The epoch; default the one set by :meth:`set_epoch`.

        Returns:
            An int64 array whose first dimension is ``num_samples``.
        """
        raise NotImplementedError

    def _epoch_of(self, epoch: int | None) -> int:
        return self.epoch if epoch is None else check_int(epoch, "epoch", 0)

    def __iter__(self) -> Iterator[Any]:
        plan = self.plan(self.epoch)
        shard = plan[shard_positions(self.num_samples, self.rank, self.num_replicas)].tolist()
        return iter(shard) if plan.ndim == 1 else map(tuple, shard)

    def __len__(self) -> int:
        return math.ceil(self.num_samples / self.num_replicas)

    def extra_repr(self) -> str:
        """Subclass-specific arguments shown by ``repr``."""
        return ""

    def __repr__(self) -> str:
        extra = self.extra_repr()
        return (
            f"{type(self).__name__}(num_samples={self.num_samples}, num_classes={self.num_classes}, "
            f"seed={self.seed}, epoch={self.epoch}, rank={self.rank}/{self.num_replicas}"
            f"{', ' + extra if extra else ''})"
        )
