"""BTM's merging (Balanced Training and Merging, Algorithm 1): balanced few-shot subsets,
weight averaging of the fine-tuned models, and optional BatchNorm recalibration.

The BTM authors average every state-dict entry uniformly, BatchNorm running statistics
included, without recalibration; :func:`recalibrate_batchnorm` is offered as an option.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from ltzoo.validation import check_labels, check_num_classes

__all__ = ["merge_state_dicts", "balanced_subsets", "recalibrate_batchnorm"]


def _check_weights(weights: Sequence[float] | None, n: int) -> list[float]:
    if weights is None:
        return [1.0 / n] * n
    w = np.asarray(list(weights), dtype=np.float64)
    if w.shape != (n,):
        raise ValueError(f"weights must have one entry per state dict ({n}), got {w.size}")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError(f"weights must be finite, non-negative and not all zero, got {w.tolist()}")
    return (w / w.sum()).tolist()


def _check_compatible(state_dicts: Sequence[Mapping[str, torch.Tensor]]) -> list[str]:
    keys = list(state_dicts[0].keys())
    reference = set(keys)
    for i, sd in enumerate(state_dicts[1:], start=1):
        missing, extra = sorted(reference - set(sd)), sorted(set(sd) - reference)
        if missing or extra:
            raise ValueError(
                f"state dict {i} is not compatible with state dict 0: "
                f"missing keys {missing[:10]}{' ...' if len(missing) > 10 else ''}, "
                f"unexpected keys {extra[:10]}{' ...' if len(extra) > 10 else ''}"
            )
    mismatched = [
        f"{k}: {tuple(state_dicts[0][k].shape)} vs {tuple(sd[k].shape)} (state dict {i})"
        for i, sd in enumerate(state_dicts[1:], start=1) for k in keys if sd[k].shape != state_dicts[0][k].shape
    ]
    if mismatched:
        raise ValueError(f"state dicts differ in shape at keys: {'; '.join(mismatched[:10])}")
    return keys


def merge_state_dicts(state_dicts: Sequence[Mapping[str, torch.Tensor]],
                      weights: Sequence[float] | None = None) -> dict[str, torch.Tensor]:
    """Weighted average of compatible state dicts (BTM Algorithm 1, the merge step).

    Floating-point entries (weights and BatchNorm running statistics) are averaged in float64
    and cast back; integer entries (BatchNorm's ``num_batches_tracked``) get the rounded
    weighted mean; boolean entries must agree.

    Args:
        state_dicts: Two or more state dicts with the same keys and shapes (one is returned as a copy).
        weights: One non-negative weight per state dict (normalised to sum 1); None for uniform.

    Returns:
        A new state dict (the inputs are not modified).

    Raises:
        ValueError: Naming the keys or shapes that differ, or bad weights.
    """
    if isinstance(state_dicts, Mapping) or not isinstance(state_dicts, Sequence) or not state_dicts:
        raise TypeError("state_dicts must be a non-empty list of state dicts")
    for i, sd in enumerate(state_dicts):
        if not isinstance(sd, Mapping):
            raise TypeError(f"state_dicts[{i}] must be a mapping of name -> tensor, got {type(sd).__name__}")
    w = _check_weights(weights, len(state_dicts))
    merged = {}
    for key in _check_compatible(state_dicts):
        tensors = [sd[key] for sd in state_dicts]
        first = tensors[0]
        if first.dtype == torch.bool:
            if not all(torch.equal(t, first) for t in tensors[1:]):
                raise ValueError(f"boolean entry {key!r} differs between state dicts and cannot be averaged")
            merged[key] = first.clone()
            continue
        total = sum(wi * t.detach().to(torch.float64) for wi, t in zip(w, tensors))
        merged[key] = (total.round() if not first.is_floating_point() else total).to(first.dtype)
    return merged


def balanced_subsets(labels: Sequence[int] | np.ndarray, num_subsets: int, per_class: int,
                     seed: int = 0, num_classes: int | None = None) -> list[np.ndarray]:
    """BTM's balanced few-shot subsets: each keeps min(n_c, per_class) shuffled images per class.

    Args:
        labels: Training labels.
        num_subsets: N_D, how many subsets (paper: 10).
        per_class: N_C, images per class (paper: 10); tail classes with fewer keep all they have.
        seed: Subset d is drawn with a generator seeded by (seed, d).
        num_classes: Number of classes (default max label + 1).

    Returns:
        ``num_subsets`` sorted index arrays.
    """
    labels = np.asarray(labels)
    k = check_num_classes(num_classes if num_classes is not None else int(labels.max()) + 1)
    labels = check_labels(labels, k)
    check_num_classes(num_subsets, "num_subsets")
    check_num_classes(per_class, "per_class")
    by_class = [np.flatnonzero(labels == c) for c in range(k)]
    subsets = []
    for d in range(num_subsets):
        rng = np.random.default_rng([seed, d])
        chosen = [rng.permutation(idx)[:per_class] for idx in by_class]
        subsets.append(np.sort(np.concatenate(chosen)))
    return subsets


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, loader: Iterable[Any], device: torch.device | str | None = None) -> nn.Module:
    """Re-estimate every BatchNorm's running statistics with one pass over ``loader`` (cumulative
    average, via ``torch.optim.swa_utils.update_bn``); the model's training flag is restored.

    Args:
        model: The (merged) model.
        loader: Batches of images, or tuples whose first element is the images.
        device: Where to move the images.

    Returns:
        The model (modified in place).
    """
    torch.optim.swa_utils.update_bn(loader, model, device=device)
    return model
