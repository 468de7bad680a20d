"""Balanced Mixed Label Sampler, "bmls" (BMLS paper, Sec. 4.1, Eq. 2).

Each epoch plans N index pairs (i, j) for Mixup whose mixed labels (a, b) = (c_i, c_j),
a < b (plus the K singleton labels (a, a) with ``include_singletons=True``), occur equally
often: within an epoch the counts of the P mixed labels differ by at most one.

The plan costs O(N) time and memory and never lists the P = K(K-1)/2 pairs (33 million for
iNaturalist, K = 8142). Mixed labels are numbered row-major over the upper triangle and
decoded in O(1) by the quadratic formula. A keyed pseudo-random bijection ``perm`` of
[0, P) (a Feistel network over the next power-of-four domain, with cycle walking) defines
the periodic sequence perm(0), ..., perm(P-1), perm(0), ...; epoch e takes the window of
positions (e*N + t) mod P, t < N. Any N consecutive positions cover every label floor(N/P)
or ceil(N/P) times, and successive windows are contiguous, so coverage accumulated over
epochs is balanced too (when P > N, successive epochs visit different pairs).

Two details keep Eq. 2 true of what training actually sees: with ``batch_size`` (the GLOBAL
batch) the plan is cut to a multiple of it, so a loader with ``drop_last`` consumes every
planned pair and the per-epoch counts still differ by at most one; and the images of a class
are drawn by cycling through a shuffled list of its members (as the class-aware sampler does),
so no image repeats before its whole class has been used.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ltzoo.registry import SAMPLERS
from ltzoo.samplers.base import EpochSampler, check_int
from ltzoo.validation import check_num_classes

__all__ = [
    "BalancedMixedLabelSampler", "FeistelPermutation",
    "num_label_pairs", "encode_label_pairs", "decode_label_pairs",
]

_M1, _M2, _M3 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def num_label_pairs(num_classes: int, include_singletons: bool = False) -> int:
    """P: K(K-1)/2 mixed labels a < b, or K(K+1)/2 labels a <= b with singletons."""
    k = check_num_classes(num_classes)
    return k * (k + 1) // 2 if include_singletons else k * (k - 1) // 2


def _row_start(a: np.ndarray, m: int) -> np.ndarray:
    """Index of the first label of row a, whose rows have lengths m, m-1, ..., 1."""
    return a * (2 * m - a + 1) // 2


def encode_label_pairs(a, b, num_classes: int, include_singletons: bool = False) -> np.ndarray:
    """Row-major index of each label pair (a, b) over the upper triangle.

    Without singletons (a < b): (0, 1) -> 0, ..., (0, K-1) -> K-2, (1, 2) -> K-1, ... (the
    order of ``ltzoo.losses.mixed_singleton.mixed_label_index``); with singletons (a <= b):
    (0, 0) -> 0, (0, 1) -> 1, ..., (1, 1) -> K, ...

    Args:
        a: Smaller classes (int or array-like).
        b: Larger classes, broadcastable with ``a``.
        num_classes: K.
        include_singletons: Whether (a, a) labels are enumerated.

    Returns:
        int64 array of indices in [0, P).
    """
    k = check_num_classes(num_classes)
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    ok = (a >= 0) & ((a <= b) if include_singletons else (a < b)) & (b < k)
    if not np.all(ok):
        rel = "<=" if include_singletons else "<"
        raise ValueError(f"label pairs must satisfy 0 <= a {rel} b < num_classes={k}")
    off = 0 if include_singletons else 1
    return _row_start(a, k - off) + (b - a - off)


def decode_label_pairs(index, num_classes: int, include_singletons: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`encode_label_pairs`, vectorised and O(1) per index.

    Args:
        index: Indices in [0, P) (int or array-like).
        num_classes: K.
        include_singletons: Whether (a, a) labels are enumerated.

    Returns:
        (a, b): int64 arrays shaped like ``index``.
    """
    k = check_num_classes(num_classes)
    p_total = num_label_pairs(k, include_singletons)
    p = np.asarray(index, dtype=np.int64)
    if p.size and (p.min() < 0 or p.max() >= p_total):
        raise ValueError(
            f"index must lie in [0, {p_total}) for num_classes={k}, include_singletons={include_singletons}"
        )
    m = k if include_singletons else k - 1  # row a holds m - a labels
    # Row a starts at T(a) = a(2m - a + 1)/2; the largest a with T(a) <= p is the smaller
    # root of a^2 - (2m+1)a + 2p = 0, rounded down, then corrected by one step either way.
    disc = np.sqrt(np.maximum((2.0 * m + 1.0) ** 2 - 8.0 * p, 0.0))
    a = np.clip(np.floor((2.0 * m + 1.0 - disc) / 2.0).astype(np.int64), 0, max(m - 1, 0))
    a -= (_row_start(a, m) > p).astype(np.int64)
    a += (_row_start(a + 1, m) <= p).astype(np.int64) & (a + 1 < m)
    b = a + (p - _row_start(a, m)) + (0 if include_singletons else 1)
    return a, b


class FeistelPermutation:
    """A keyed pseudo-random bijection of [0, size), evaluated elementwise in O(1).

    A balanced Feistel network over [0, 4^h) (the smallest power of four >= size, so at most
    4 * size) with a splitmix64 round function, restricted to [0, size) by cycle walking:
    values that land outside are permuted again until they fall inside.

    Args:
        size: Domain size >= 1.
        seed: Non-negative integer key.
        rounds: Feistel rounds (>= 3).
    """

    def __init__(self, size: int, seed: int = 0, rounds: int = 6) -> None:
        self.size = check_int(size, "size", 1)
        self.rounds = check_int(rounds, "rounds", 3)
        seed = check_int(seed, "seed", 0)
        self.half_bits = max(1, math.ceil(max(1, (self.size - 1).bit_length()) / 2))
        self._mask = np.uint64((1 << self.half_bits) - 1)
        self._keys = np.random.SeedSequence([seed, 0x424D4C53]).generate_state(self.rounds, dtype=np.uint64)

    def _network(self, x: np.ndarray) -> np.ndarray:
        h = np.uint64(self.half_bits)
        left, right = x >> h, x & self._mask
        for key in self._keys:
            z = (right + key) * _M1  # splitmix64 finaliser as the round function
            z = (z ^ (z >> np.uint64(30))) * _M2
            z = (z ^ (z >> np.uint64(27))) * _M3
            left, right = right, left ^ ((z ^ (z >> np.uint64(31))) & self._mask)
        return (left << h) | right

    def __call__(self, positions: np.ndarray) -> np.ndarray:
        """perm(positions) for int positions in [0, size); returns int64 of the same shape."""
        pos = np.asarray(positions, dtype=np.int64)
        if pos.size and (pos.min() < 0 or pos.max() >= self.size):
            raise ValueError(f"positions must lie in [0, size={self.size})")
        y = self._network(pos.reshape(-1).astype(np.uint64))
        todo = np.flatnonzero(y >= self.size)
        while todo.size:  # cycle walking; expected < 4 steps since 4^h < 4 * size
            y[todo] = self._network(y[todo])
            todo = todo[y[todo] >= self.size]
        return y.astype(np.int64).reshape(pos.shape)


@SAMPLERS.register("bmls")
class BalancedMixedLabelSampler(EpochSampler):
    """Yields index pairs (i, j), c_i < c_j, whose mixed labels are balanced within each epoch.

    Args:
        labels, num_samples, seed, num_replicas, rank, num_classes: see
            :class:`~ltzoo.samplers.base.EpochSampler`; every class must be non-empty.
            ``num_samples`` is the number of pairs N per epoch (default ``len(labels)``).
        include_singletons: Also plan the K singleton labels (a, a), with i and j drawn
            independently from class a.
        batch_size: The global batch size of the loader (with ``drop_last``); the epoch plan is
            cut to the largest multiple of it <= ``num_samples`` (at least one batch). None: no cut.
    """

    def __init__(
        self,
        labels: Sequence[int] | np.ndarray,
        num_samples: int | None = None,
        seed: int = 0,
        num_replicas: int | None = None,
        rank: int | None = None,
        num_classes: int | None = None,
        include_singletons: bool = False,
        batch_size: int | None = None,
    ) -> None:
        super().__init__(labels, num_samples, seed, num_replicas, rank, num_classes)
        if batch_size is not None:
            batch_size = check_int(batch_size, "batch_size", 1)
            if batch_size % self.num_replicas:
                raise ValueError(f"batch_size (global) must be a multiple of num_replicas={self.num_replicas}, "
                                 f"got {batch_size}")
            # Eq. 2 after drop_last: plan whole global batches only, so every planned pair is used.
            self.num_samples = max(batch_size, self.num_samples // batch_size * batch_size)
        self.batch_size = batch_size
        if not isinstance(include_singletons, bool):
            raise TypeError(f"include_singletons must be a bool, got {type(include_singletons).__name__}")
        if not include_singletons and self.num_classes < 2:
            raise ValueError(f"bmls needs num_classes >= 2 for mixed labels a < b, got {self.num_classes}; "
                             "set include_singletons=True to allow one class")
        self.include_singletons = include_singletons
        self.num_pairs = num_label_pairs(self.num_classes, include_singletons)
        self.permutation = FeistelPermutation(self.num_pairs, self.seed)

    def label_plan(self, epoch: int | None = None) -> np.ndarray:
        """The epoch's N mixed-label indices in [0, P), in planned (shuffled) order."""
        e = self._epoch_of(epoch)
        start = (e * self.num_samples) % self.num_pairs
        # Eq. 2: positions (e*N + t) mod P of the periodic sequence perm(0), perm(1), ...
        labels = self.permutation((start + np.arange(self.num_samples, dtype=np.int64)) % self.num_pairs)
        self.epoch_rng(e, stream=1).shuffle(labels)
        return labels

    def plan(self, epoch: int | None = None) -> np.ndarray:
        """The epoch's N index pairs, identical on every rank.

        Args:
            epoch: The epoch; default the one set by :meth:`set_epoch`.

        Returns:
            int64 array (N, 2) of dataset indices (i, j) with label(i) < label(j)
            (equal only for singleton labels).
        """
        e = self._epoch_of(epoch)
        a, b = decode_label_pairs(self.label_plan(e), self.num_classes, self.include_singletons)
        # Both sides of every pair draw from one cycled, shuffled list per class.
        drawn = self.draw_cycling(np.concatenate([a, b]), self.epoch_rng(e, stream=2))
        return np.stack([drawn[: self.num_samples], drawn[self.num_samples:]], axis=1)

    def extra_repr(self) -> str:
        return f"include_singletons={self.include_singletons}, num_pairs={self.num_pairs}, batch_size={self.batch_size}"
