"""Classifier training on a frozen backbone: images -> backbone (no grad) -> pooled features -> head.

Shared by decoupled classifier retraining (cRT) and BTM's post-training.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

__all__ = ["FrozenBackboneForward", "freeze_parameters"]


def freeze_parameters(model: nn.Module) -> Callable[[], None]:
    """Set ``requires_grad=False`` on every parameter of ``model``; return a function that restores the old flags."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)

    def restore() -> None:
        for p, flag in flags:
            p.requires_grad_(flag)

    return restore


class FrozenBackboneForward(nn.Module):
    """``forward(x, features=False)``: logits of the trainable head (and scale) on frozen-backbone features.

    Args:
        model: A model with timm's ``forward_features`` / ``forward_head(x, pre_logits)`` and ``get_classifier()``.
        shift_bn: Keep the backbone's BatchNorm in train mode while training, so its running statistics
            are re-estimated on these batches (MiSLAS / BTM ``shift_bn``); otherwise it stays in eval mode.
        scale: An optional module applied to the head's logits (e.g. learnable weight scaling), trained too.
        precision: "fp32", "bf16" or "fp16": the backbone's forward runs under ``torch.autocast`` in that
            dtype; its features are cast back to fp32, so the head and the loss compute in fp32.
    """

    def __init__(self, model: nn.Module, shift_bn: bool = False, scale: nn.Module | None = None,
                 precision: str = "fp32") -> None:
        super().__init__()
        from ltzoo.engine.objective import AUTOCAST_DTYPES

        if precision not in AUTOCAST_DTYPES:
            raise ValueError(f"precision must be one of {tuple(AUTOCAST_DTYPES)}, got {precision!r}")
        self.autocast_dtype = AUTOCAST_DTYPES[precision]
        self.model = model
        self.head = model.get_classifier()
        self.scale = scale
        self.shift_bn = shift_bn

    def train(self, mode: bool = True) -> "FrozenBackboneForward":
        self.model.train(mode and self.shift_bn)  # backbone: train mode only to shift BN statistics
        self.head.train(mode)
        if self.scale is not None:
            self.scale.train(mode)
        self.training = mode
        return self

    def forward(self, x: torch.Tensor, features: bool = False) -> torch.Tensor:
        with torch.no_grad(), torch.autocast(device_type=x.device.type, dtype=self.autocast_dtype or torch.float32,
                                             enabled=self.autocast_dtype is not None):
            f = self.model.forward_head(self.model.forward_features(x), pre_logits=True).float()
        if features:
            return f
        logits = self.head(f)
        return logits if self.scale is None else self.scale(logits)
