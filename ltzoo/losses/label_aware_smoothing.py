"""Label-aware smoothing ("label_aware_smoothing"; Zhong et al., "Improving Calibration for
Long-Tailed Recognition" (MiSLAS), CVPR 2021), the loss of BTM's post-training.

Class y is smoothed with its own eps_y, larger for classes with more training images (the
shapes as MiSLAS defines them; BTM's stage-2 code uses the same definition): with r_y = (n_y - n_min) / (n_max - n_min) in [0, 1],

    concave: eps_y = eps_tail + (eps_head - eps_tail) * sin(pi / 2 * r_y)        (default)
    linear:  eps_y = eps_tail + (eps_head - eps_tail) * r_y
    convex:  eps_y = eps_head + (eps_head - eps_tail) * sin(3 pi / 2 + pi / 2 * r_y)

and the loss of a sample of class y is the cross-entropy against the smoothed target
(1 - eps_y) * onehot(y) + eps_y / K * 1:

    loss = -(1 - eps_y) * log p_y - eps_y / K * sum_k log p_k.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ltzoo.losses.checks import check_logits_and_target
from ltzoo.losses.reduction import check_reduction, reduce_loss
from ltzoo.registry import LOSSES
from ltzoo.validation import as_number, check_class_counts

__all__ = ["LabelAwareSmoothingLoss", "label_aware_epsilons", "SMOOTHING_SHAPES"]

SMOOTHING_SHAPES = ("concave", "linear", "convex")


def _check_eps(value: Any, name: str) -> float:
    value = as_number(value)  # numpy / 0-d tensor scalars are numbers too
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


def label_aware_epsilons(class_counts: Any, eps_head: float = 0.3, eps_tail: float = 0.0,
                         shape: str = "concave") -> np.ndarray:
    """Per-class smoothing eps_c of label-aware smoothing (MiSLAS's concave / linear / convex shapes).

    Args:
        class_counts: Training images per class (length K, finite, >= 0).
        eps_head: eps of the largest class (BTM's configs: 0.3).
        eps_tail: eps of the smallest class (BTM's configs: 0.0).
        shape: "concave" (MiSLAS's default), "linear" or "convex".

    Returns:
        float64 array (K,) of smoothing values. When every class has the same count, r = 1 for
        all of them (each class is a largest class) and every eps is ``eps_head``.
    """
    counts = check_class_counts(class_counts)
    eps_head, eps_tail = _check_eps(eps_head, "eps_head"), _check_eps(eps_tail, "eps_tail")
    if shape not in SMOOTHING_SHAPES:
        raise ValueError(f"shape must be one of {SMOOTHING_SHAPES}, got {shape!r}")
    n_max, n_min = counts.max(), counts.min()
    r = np.ones_like(counts) if n_max == n_min else (counts - n_min) / (n_max - n_min)
    if shape == "concave":
        return eps_tail + (eps_head - eps_tail) * np.sin(math.pi / 2 * r)
    if shape == "linear":
        return eps_tail + (eps_head - eps_tail) * r
    return eps_head + (eps_head - eps_tail) * np.sin(1.5 * math.pi + math.pi / 2 * r)


@LOSSES.register("label_aware_smoothing")
class LabelAwareSmoothingLoss(nn.Module):
    """Cross-entropy with a per-class label smoothing eps_y set by the class's training count.

    Args:
        class_counts: Training images per class (length K); stored as the ``eps`` buffer (K,).
        eps_head: Smoothing of the largest class (default 0.3, BTM's stage-2 configs).
        eps_tail: Smoothing of the smallest class (default 0.0).
        shape: "concave" (default), "linear" or "convex" (see :func:`label_aware_epsilons`).
        reduction: "mean", "sum" or "none".
    """

    def __init__(self, class_counts: Any, eps_head: float = 0.3, eps_tail: float = 0.0, shape: str = "concave",
                 reduction: str = "mean") -> None:
        super().__init__()
        if class_counts is None:
            raise ValueError("class_counts is required: label-aware smoothing sets each class's eps from its count")
        eps = label_aware_epsilons(class_counts, eps_head, eps_tail, shape)
        self.eps_head, self.eps_tail, self.shape = float(eps_head), float(eps_tail), shape
        self.reduction = check_reduction(reduction)
        self.register_buffer("eps", torch.as_tensor(eps, dtype=torch.float32))

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Label-aware smoothed cross-entropy.

        Args:
            logits: (B, K) scores.
            target: (B,) integer labels in [0, K).

        Returns:
            The loss, reduced by ``reduction``.
        """
        check_logits_and_target(logits, target, self.eps.numel())
        x = logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits
        log_p = F.log_softmax(x, dim=1)
        eps = self.eps.to(device=log_p.device, dtype=log_p.dtype)[target]
        nll = -log_p.gather(1, target[:, None]).squeeze(1)
        uniform = -log_p.mean(dim=1)  # -(1/K) sum_k log p_k
        return reduce_loss((1.0 - eps) * nll + eps * uniform, self.reduction)

    def extra_repr(self) -> str:
        return f"eps_head={self.eps_head}, eps_tail={self.eps_tail}, shape={self.shape!r}, reduction={self.reduction!r}"
