"""``PairedDataset``: serve the (i, j) index pairs of a pair sampler such as "bmls".

``DataLoader(PairedDataset(ds), sampler=create_sampler("bmls", labels=...), batch_size=B)``
yields batches ``(x_i, y_i, x_j, y_j)``, ready for a mixer that mixes x_i with x_j.
"""
from __future__ import annotations

from numbers import Integral
from typing import Any, Sequence

from torch.utils.data import Dataset

__all__ = ["PairedDataset"]


class PairedDataset(Dataset):
    """Wrap a map-style dataset of ``(x, y)`` items so an index pair returns both items.

    Args:
        dataset: A map-style dataset whose items are ``(x, y)`` (or longer tuples; the first
            two fields are used).
    """

    def __init__(self, dataset: Any) -> None:
        if not hasattr(dataset, "__getitem__") or not hasattr(dataset, "__len__"):
            raise TypeError(f"dataset must be a map-style dataset with __getitem__ and __len__, "
                            f"got {type(dataset).__name__}")
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def _item(self, index: int) -> tuple[Any, Any]:
        item = self.dataset[index]
        if not isinstance(item, (tuple, list)) or len(item) < 2:
            raise TypeError(f"dataset items must be (x, y) pairs, got {type(item).__name__} at index {index}")
        return item[0], item[1]

    def __getitem__(self, index: Sequence[int]) -> tuple[Any, Any, Any, Any]:
        """Return ``(x_i, y_i, x_j, y_j)`` for ``index = (i, j)``.

        Args:
            index: A pair of integer dataset indices (tuple, list, or length-2 array/tensor).

        Returns:
            The two items' inputs and labels.
        """
        try:
            pair = [int(v) if _is_int(v) else None for v in index]
        except TypeError:
            pair = None
        if pair is None or len(pair) != 2 or None in pair:
            raise TypeError(f"PairedDataset index must be a pair (i, j) of integer dataset indices, got {index!r}")
        x_i, y_i = self._item(pair[0])
        x_j, y_j = self._item(pair[1])
        return x_i, y_i, x_j, y_j

    def __repr__(self) -> str:
        return f"PairedDataset({self.dataset!r})"


def _is_int(v: Any) -> bool:
    """True for a Python/numpy integer (not a bool) or a 0-d integer tensor."""
    if isinstance(v, bool):
        return False
    if isinstance(v, Integral):
        return True
    dtype = getattr(v, "dtype", None)
    return dtype is not None and getattr(v, "ndim", 1) == 0 and "int" in str(dtype)
