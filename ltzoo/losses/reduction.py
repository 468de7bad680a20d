"""The ``reduction`` argument every ltzoo loss takes ("mean", "sum" or "none")."""
from __future__ import annotations

import torch

REDUCTIONS = ("mean", "sum", "none")


def check_reduction(reduction: str) -> str:
    """Return ``reduction`` if it is one of "mean", "sum", "none"; raise ValueError otherwise."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    return reduction


def reduce_loss(per_sample: torch.Tensor, reduction: str) -> torch.Tensor:
    """Reduce a (B,) per-sample loss by ``reduction``."""
    if reduction == "mean":
        if per_sample.numel() == 0:  # the mean of nothing is NaN: a silent wrong loss
            raise ValueError("the loss got an empty batch (0 samples) with reduction='mean'; pass at least one "
                             "sample, or use reduction='none' / 'sum' where an empty selection is expected")
        return per_sample.mean()
    if reduction == "sum":
        return per_sample.sum()
    return per_sample
