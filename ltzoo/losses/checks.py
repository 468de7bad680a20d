"""Input checks shared by the losses: (B, K) logits and (B,) class-index targets."""
from __future__ import annotations

from typing import Any

import torch

__all__ = ["check_logits", "check_class_targets", "check_logits_and_target"]


def check_logits(logits: Any, name: str = "logits") -> torch.Tensor:
    """Raise unless ``logits`` is a floating (B, K) tensor; return it."""
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (B, K), got {type(logits).__name__}")
    if logits.ndim != 2:
        raise ValueError(f"{name} must have shape (B, K) (2-D), got {logits.ndim}-D shape {tuple(logits.shape)}")
    if not logits.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {logits.dtype}")
    return logits


def check_class_targets(target: Any, batch_size: int, num_classes: int, name: str = "target") -> torch.Tensor:
    """Raise unless ``target`` is a (B,) integer tensor of class indices in [0, num_classes).

    Args:
        target: The labels.
        batch_size: The required length B.
        num_classes: K; every label must lie in [0, K).
        name: Argument name used in error messages.

    Returns:
        ``target`` (unchanged).
    """
    if not isinstance(target, torch.Tensor):
        raise TypeError(f"{name} must be a (B,) torch.Tensor of class indices, got {type(target).__name__}")
    if target.ndim != 1:
        raise ValueError(f"{name} must have shape (B,), got {tuple(target.shape)}")
    if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer class indices, got dtype {target.dtype}")
    if target.shape[0] != batch_size:
        raise ValueError(f"{name} must have one label per sample: batch size {batch_size}, got {target.shape[0]}")
    if target.numel() and (int(target.min()) < 0 or int(target.max()) >= num_classes):
        raise ValueError(
            f"{name} must lie in [0, {num_classes}) for {num_classes} classes, "
            f"got values in [{int(target.min())}, {int(target.max())}]"
        )
    return target


def check_logits_and_target(logits: Any, target: Any, num_classes: int) -> None:
    """Check (B, num_classes) floating logits and (B,) integer targets in [0, num_classes).

    Raises:
        TypeError: If either is not a tensor of the right kind.
        ValueError: If the shapes disagree with each other or with ``num_classes`` (the length of
            the loss's class statistics), or a target is out of range.
    """
    check_logits(logits)
    if logits.shape[1] != num_classes:
        raise ValueError(
            f"logits must have shape (B, {num_classes}) to match the loss's class statistics "
            f"(len(class_counts) = {num_classes}), got {tuple(logits.shape)}"
        )
    check_class_targets(target, logits.shape[0], num_classes)
