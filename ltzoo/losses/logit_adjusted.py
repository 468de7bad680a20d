"""Logit adjustment (Menon et al., ICLR 2021) and balanced softmax (Ren et al., NeurIPS 2020).

Training-time correction ("logit_adjusted"): CE(logits + tau * log prior, y), prior = n / sum(n).
Balanced softmax ("balanced_softmax"): CE(logits + log n, y), the same loss at tau = 1 since
log n and log prior differ by the constant log sum(n), which softmax ignores.
Inference-time ("post-hoc") correction: :func:`posthoc_adjust` returns logits - tau * log prior.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ltzoo.losses.checks import check_logits_and_target
from ltzoo.losses.reduction import check_reduction, reduce_loss
from ltzoo.registry import LOSSES
from ltzoo.validation import as_number, class_counts_tensor

__all__ = [
    "LogitAdjustedLoss", "BalancedSoftmaxLoss", "log_prior", "posthoc_adjust",
]

Counts = Sequence[float] | torch.Tensor


def _check_tau(tau: float) -> float:
    tau = as_number(tau)  # numpy / 0-d tensor scalars are numbers too
    if isinstance(tau, bool) or not isinstance(tau, (int, float)) or not math.isfinite(tau) or tau < 0:
        raise ValueError(f"tau must be a finite number >= 0, got {tau!r}")
    return float(tau)


def log_prior(class_counts: Counts) -> torch.Tensor:
    """log(n_c / sum n) as a float32 tensor; counts validated (positive, finite).

    Args:
        class_counts: Per-class training counts (list, array or tensor), all > 0.

    Returns:
        The (K,) log prior.
    """
    counts = class_counts_tensor(class_counts, name="class_counts")
    return torch.log(counts / counts.sum())


def posthoc_adjust(logits: torch.Tensor, class_counts: Counts, tau: float = 1.0) -> torch.Tensor:
    """Post-hoc logit adjustment at inference: logits - tau * log prior.

    Args:
        logits: (..., K) scores of a model trained with plain cross-entropy.
        class_counts: The (K,) training class counts.
        tau: Adjustment strength (1 = Bayes-optimal for the balanced error under the prior).

    Returns:
        The adjusted logits, same shape, dtype and device as ``logits``.
    """
    tau = _check_tau(tau)
    lp = log_prior(class_counts)
    if not isinstance(logits, torch.Tensor) or logits.ndim < 1 or logits.shape[-1] != lp.numel():
        raise ValueError(f"logits must be a tensor whose last dimension equals len(class_counts)={lp.numel()}, "
                         f"got {getattr(logits, 'shape', type(logits).__name__)}")
    return logits - tau * lp.to(device=logits.device, dtype=logits.dtype)


@LOSSES.register("logit_adjusted")
class LogitAdjustedLoss(nn.Module):
    """Logit-adjusted cross-entropy: CE(logits + tau * log prior, target) (Menon et al., 2021).

    Args:
        class_counts: (K,) training class counts, all > 0 (kept as the ``class_counts`` buffer).
        tau: Adjustment strength, >= 0 (0 gives plain cross-entropy).
        reduction: "mean", "sum" or "none".
        num_classes: When given, the required length of ``class_counts``.
    """

    def __init__(self, class_counts: Counts, tau: float = 1.0, reduction: str = "mean",
                 num_classes: int | None = None) -> None:
        super().__init__()
        counts = class_counts_tensor(class_counts, num_classes, name="class_counts")
        self.register_buffer("class_counts", counts)
        self.num_classes = self.class_counts.numel()
        self.tau = _check_tau(tau)
        self.reduction = check_reduction(reduction)

    def adjustment(self) -> torch.Tensor:
        """The (K,) offset added to the logits during training: tau * log prior."""
        return self.tau * torch.log(self.class_counts / self.class_counts.sum())

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Args: logits (B, K), target (B,) class indices. Returns: the reduced loss."""
        check_logits_and_target(logits, target, self.num_classes)
        adjusted = logits + self.adjustment().to(logits.dtype)
        return reduce_loss(F.cross_entropy(adjusted, target, reduction="none"), self.reduction)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, tau={self.tau}, reduction={self.reduction!r}"


@LOSSES.register("balanced_softmax")
class BalancedSoftmaxLoss(LogitAdjustedLoss):
    """Balanced softmax: CE(logits + log n, target) (Ren et al., 2020); equals LA at tau = 1.

    Args:
        class_counts: (K,) training class counts, all > 0.
        reduction: "mean", "sum" or "none".
        num_classes: When given, the required length of ``class_counts``.
    """

    def __init__(self, class_counts: Counts, reduction: str = "mean", num_classes: int | None = None) -> None:
        super().__init__(class_counts, tau=1.0, reduction=reduction, num_classes=num_classes)

    def adjustment(self) -> torch.Tensor:
        """The (K,) offset log n_c (raw counts, not the prior: softmax ignores the constant)."""
        return torch.log(self.class_counts)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, reduction={self.reduction!r}"
