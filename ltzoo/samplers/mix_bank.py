"""BEM's class-balanced mix bank (CBMB, Sec. 4.2-4.3 and Algorithm 1 lines 5 and 11).

Not a DataLoader sampler but an online store the training step talks to every iteration:
``update`` files the batch's labeled samples under their labels and unlabeled samples under
their current pseudo-labels (a sample whose pseudo-label changes moves class), and ``sample``
draws partners for CamMix: a class from the sampling probabilities ``s_hat`` of the shared
:class:`~ltzoo.losses.BEMState` (Eq. 4 and Eq. 7; the "ecb" loss reads ``s_hat^u`` from the same
object), then a stored sample of that class uniformly. Classes with an empty store are skipped
(their probability is set to 0 and the rest renormalised).

Under torch.distributed each rank files the batches it sees; the class probabilities are the
same on every rank because the state all-reduces its statistics.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ltzoo.losses.bem_state import BEMState
from ltzoo.registry import SAMPLERS
from ltzoo.validation import check_labels, check_num_classes

__all__ = ["ClassBalancedMixBank"]

SOURCES = ("labeled", "unlabeled")


class _ClassStore:
    """Which class each dataset index is filed under (-1: not seen yet), with a lazy class index."""

    def __init__(self, size: int, num_classes: int) -> None:
        self.label_of = np.full(size, -1, dtype=np.int64)
        self.num_classes = num_classes
        self._order: np.ndarray | None = None
        self._starts = np.zeros(num_classes + 1, dtype=np.int64)

    def file(self, indices: np.ndarray, labels: np.ndarray) -> None:
        self.label_of[indices] = labels
        self._order = None

    def _index(self) -> None:
        if self._order is None:
            filed = np.flatnonzero(self.label_of >= 0)
            self._order = filed[np.argsort(self.label_of[filed], kind="stable")]
            counts = np.bincount(self.label_of[filed], minlength=self.num_classes)
            self._starts = np.concatenate([[0], np.cumsum(counts)])

    def sizes(self) -> np.ndarray:
        self._index()
        return np.diff(self._starts)

    def draw(self, classes: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
        self._index()
        sizes = np.diff(self._starts)[classes]
        return self._order[self._starts[classes] + np.minimum((uniforms * sizes).astype(np.int64), sizes - 1)]


@SAMPLERS.register("mix_bank")
class ClassBalancedMixBank:
    """Per-class stores of labeled and pseudo-labelled samples, sampled class-balanced.

    Args:
        state: The shared BEM running estimates (gives ``s_hat``, Eq. 7).
        num_labeled: Size of the labeled dataset (indices are positions in it).
        num_unlabeled: Size of the unlabeled dataset.
        seed: Seed of the bank's own generator (saved in ``state_dict``).
    """

    def __init__(self, state: BEMState, num_labeled: int, num_unlabeled: int, seed: int = 0) -> None:
        if not isinstance(state, BEMState):
            raise TypeError(f"state must be a ltzoo.losses.BEMState, got {type(state).__name__}")
        self.state = state
        k = state.num_classes
        self.stores = {
            "labeled": _ClassStore(check_num_classes(num_labeled, "num_labeled"), k),
            "unlabeled": _ClassStore(check_num_classes(num_unlabeled, "num_unlabeled"), k),
        }
        self.generator = torch.Generator().manual_seed(int(seed))

    @property
    def num_classes(self) -> int:
        return self.state.num_classes

    def update(self, indices: Any, labels_or_pseudo_labels: Any, is_labeled: bool | Any) -> None:
        """File a batch (Algorithm 1 line 5): labeled samples by label, unlabeled by pseudo-label.

        Args:
            indices: (B,) dataset indices (labeled or unlabeled index space, per ``is_labeled``).
            labels_or_pseudo_labels: (B,) classes to file them under.
            is_labeled: One bool for the whole batch, or a (B,) bool mask.
        """
        idx = _as_numpy(indices, "indices")
        cls = check_labels(_as_numpy(labels_or_pseudo_labels, "labels_or_pseudo_labels"), self.num_classes,
                           name="labels_or_pseudo_labels")
        if idx.shape != cls.shape:
            raise ValueError(f"indices and labels_or_pseudo_labels must have the same length, got {idx.shape} and {cls.shape}")
        mask = np.broadcast_to(_as_numpy(is_labeled, "is_labeled").astype(bool), idx.shape)
        for source, chosen in (("labeled", mask), ("unlabeled", ~mask)):
            if chosen.any():
                store = self.stores[source]
                sel = idx[chosen]
                if sel.min() < 0 or sel.max() >= store.label_of.size:
                    raise ValueError(f"{source} indices must lie in [0, {store.label_of.size}), got {sel.min()}..{sel.max()}")
                store.file(sel, cls[chosen])

    def class_sizes(self, source: str = "labeled") -> torch.Tensor:
        """(K,) number of samples filed per class in ``source`` ("labeled" or "unlabeled")."""
        return torch.as_tensor(self._store(source).sizes())

    def probabilities(self, source: str = "labeled") -> torch.Tensor:
        """Class sampling probabilities: ``s_hat`` (Eq. 7) with empty classes removed, renormalised."""
        probs = self.state.s_hat().detach().cpu().double() * (self.class_sizes(source) > 0)
        total = probs.sum()
        if total <= 0:
            raise ValueError(f"the {source} store of the mix bank is empty: call update() before sample()")
        return probs / total

    def sample(self, n: int, source: str = "labeled") -> tuple[torch.Tensor, torch.Tensor]:
        """Draw ``n`` partners (Algorithm 1 line 11): classes from ``s_hat``, then uniform members.

        Returns:
            (indices, classes): two (n,) int64 tensors; indices are in ``source``'s index space.
        """
        n = check_num_classes(n, "n")
        classes = torch.multinomial(self.probabilities(source), n, replacement=True, generator=self.generator)
        uniforms = torch.rand(n, generator=self.generator, dtype=torch.float64)
        indices = self._store(source).draw(classes.numpy(), uniforms.numpy())
        return torch.as_tensor(indices), classes

    def entropy_masks(self, unlabeled_probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The entropy-based selection module (Eq. 8-10) of the shared state: (high, low) masks.

        A high-entropy unlabeled sample is mixed with a labeled partner, a low-entropy one with an
        unlabeled partner (Algorithm 2 line 12).
        """
        return self.state.entropy_masks(unlabeled_probs)

    def state_dict(self) -> dict[str, Any]:
        """The stores and the generator state (the shared BEMState saves itself)."""
        return {
            "labeled": torch.as_tensor(self.stores["labeled"].label_of.copy()),
            "unlabeled": torch.as_tensor(self.stores["unlabeled"].label_of.copy()),
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        for source in SOURCES:
            saved = np.asarray(state_dict[source], dtype=np.int64)
            store = self.stores[source]
            if saved.shape != store.label_of.shape:
                raise ValueError(f"state_dict[{source!r}] has {saved.shape[0]} entries, this bank holds {store.label_of.size}")
            store.label_of = saved.copy()
            store._order = None
        self.generator.set_state(state_dict["generator"])

    def _store(self, source: str) -> _ClassStore:
        if source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
        return self.stores[source]


def _as_numpy(value: Any, name: str) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    arr = np.asarray(value)
    if arr.ndim > 1:
        raise ValueError(f"{name} must be a scalar or 1-D, got shape {arr.shape}")
    return arr.reshape(-1) if arr.ndim else arr
