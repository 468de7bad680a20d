"""Learnable weight scaling (LWS; Kang et al., "Decoupling Representation and Classifier for
Long-Tailed Recognition", ICLR 2020), as MiSLAS and BTM's stage 2 use it: a learnable per-class
scale s (initialised to 1) multiplies the classifier's logits, z'_k = s_k * z_k.

After training, :func:`fold_logit_scale` writes s into the head itself, so the model keeps its
architecture (and saves and loads as before) and gives the scaled logits:

* heads with a linear layer ``fc`` ("fc", "ms"): row k of the weight and bias k times s_k;
* heads with a per-class ``scale`` parameter times a fixed ETF ("wetf", "ms_wetf"): scale * s;
* heads with a fixed ``etf`` buffer (D, K) only ("etf"): column k of the ETF times s_k.
"""
from __future__ import annotations

import torch
from torch import nn

from ltzoo.validation import check_num_classes

__all__ = ["LearnableWeightScaling", "fold_logit_scale"]


class LearnableWeightScaling(nn.Module):
    """z' = s * z with a learnable (K,) scale ``s`` initialised to ones.

    Args:
        num_classes: K.
    """

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(check_num_classes(num_classes)))

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        """Scaled logits (B, K)."""
        if not isinstance(logits, torch.Tensor) or logits.ndim != 2 or logits.shape[1] != self.scale.numel():
            raise ValueError(f"logits must have shape (B, {self.scale.numel()}), "
                             f"got {getattr(logits, 'shape', type(logits).__name__)}")
        return logits * self.scale


@torch.no_grad()
def fold_logit_scale(head: nn.Module, scale: torch.Tensor) -> nn.Module:
    """Multiply ``head``'s logits by ``scale`` for good, by rescaling its class parameters in place.

    Args:
        head: The classifier head (see the module docstring for the supported kinds).
        scale: (K,) per-class factors.

    Returns:
        The head, whose ``head(x)`` now equals ``scale * old_head(x)``.

    Raises:
        TypeError: For a head with none of ``fc`` (nn.Linear), ``scale`` + ``etf`` or ``etf``.
    """
    s = scale.detach().reshape(-1)
    fc = getattr(head, "fc", None)
    if isinstance(fc, nn.Linear):
        if fc.out_features != s.numel():
            raise ValueError(f"scale must have {fc.out_features} entries (the head's classes), got {s.numel()}")
        fc.weight.mul_(s.to(fc.weight)[:, None])
        if fc.bias is not None:
            fc.bias.mul_(s.to(fc.bias))
        return head
    etf = getattr(head, "etf", None)
    own = getattr(head, "scale", None)
    if isinstance(etf, torch.Tensor) and isinstance(own, torch.Tensor) and own.shape == s.shape:
        own.mul_(s.to(own))
        return head
    if isinstance(etf, torch.Tensor) and etf.ndim == 2 and etf.shape[1] == s.numel():
        etf.mul_(s.to(etf)[None, :])
        return head
    raise TypeError(f"cannot fold a logit scale into a {type(head).__name__}: it needs a linear 'fc' layer, a "
                    "per-class 'scale' with an 'etf', or an 'etf' buffer (D, K); post-train it without LWS")
