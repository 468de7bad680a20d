"""Dot-regression loss ("dot_regression") for the fixed ETF head.

Yang et al., "Inducing Neural Collapse in Imbalanced Learning", NeurIPS 2022. The loss is
called on the pooled features the ETF head receives; it applies the head's BatchNorm + L2
normalisation itself, then regresses h . m_y onto ||m_y|| * ||h||:

    loss_i = 0.5 * (h_i . m_{y_i} - ||m_{y_i}|| * ||h_i||)^2 / ||h_i||   (norms detached)

By default (``rescale_targets=True``, the official code's ``GivenEw``, on in every one of its
configs) each class present in the batch has its target vector scaled by
sqrt(gamma / count_in_batch), gamma = B / (classes present); absent classes keep 1. The paper's
equation has fixed norms; the rescale is what makes the loss weigh a batch's rare classes up (a
squared target length of gamma / count). ``rescale_targets=False`` is the equation as printed. Evaluation uses the head's logits,
i.e. the unscaled ETF.

Under mixup the loss is lam * L(h, y_a) + (1 - lam) * L(h, y_b) on ONE normalised feature
batch h (as the ETF paper's code): :meth:`DotRegressionLoss.prepare` runs the head's BatchNorm
once and :meth:`DotRegressionLoss.loss_on_prepared` scores h against each target, so the BN's
running statistics take one momentum step per training step.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ltzoo.heads.etf import ETFHead
from ltzoo.losses.checks import check_class_targets
from ltzoo.losses.reduction import check_reduction, reduce_loss
from ltzoo.registry import LOSSES
from ltzoo.validation import as_number, check_class_counts

__all__ = ["DotRegressionLoss", "batch_target_scales"]


def batch_target_scales(target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Per-class target-vector lengths for one batch (the official ETF code's ``produce_Ew``).

    Args:
        target: (B,) class indices in [0, num_classes).
        num_classes: K.

    Returns:
        (K,) scales: sqrt(gamma / count_c) for classes present, 1 for absent ones, with
        gamma = B / (number of distinct classes present).
    """
    counts = torch.bincount(target, minlength=num_classes).to(torch.get_default_dtype())
    present = counts > 0
    gamma = target.numel() / present.sum().clamp_min(1)
    return torch.where(present, torch.sqrt(gamma / counts.clamp_min(1)), torch.ones_like(counts))


@LOSSES.register("dot_regression")
class DotRegressionLoss(nn.Module):
    """Dot-regression loss bound to the ETF head it trains.

    The loss keeps a plain reference to the head (not a submodule), so it has no parameters
    or buffers of its own and adds nothing to an optimizer or state dict.

    Args:
        head: The :class:`~ltzoo.heads.etf.ETFHead` (BatchNorm + L2 norm + fixed ETF).
        reduction: "mean", "sum" or "none".
        rescale_targets: Scale each present class's target by sqrt(gamma / count_in_batch) (default,
            as the authors' code); False: the fixed unit targets of the paper's equation.
        reg_lambda: Weight of the feature-norm regulariser reg_lambda * ||h|| (default 0).
        class_counts: Accepted and ignored, so every loss can be built with the same call.
    """

    def __init__(
        self,
        head: ETFHead,
        reduction: str = "mean",
        rescale_targets: bool = True,
        reg_lambda: float = 0.0,
        class_counts: Any = None,
    ) -> None:
        super().__init__()
        if not isinstance(head, ETFHead):
            raise TypeError(
                f"head must be an ETFHead (the 'etf' head this loss trains), got {type(head).__name__}; "
                "build it as create_loss('dot_regression', head=model.head)"
            )
        object.__setattr__(self, "head", head)  # a reference, not a registered submodule
        self.reduction = check_reduction(reduction)
        if not isinstance(rescale_targets, bool):
            raise TypeError(f"rescale_targets must be a bool, got {type(rescale_targets).__name__}")
        self.rescale_targets = rescale_targets
        reg_lambda = as_number(reg_lambda)  # numpy / 0-d tensor scalars are numbers too
        if isinstance(reg_lambda, bool) or not isinstance(reg_lambda, (int, float)) or not reg_lambda >= 0:
            raise ValueError(f"reg_lambda must be a non-negative float, got {reg_lambda!r}")
        self.reg_lambda = float(reg_lambda)
        if class_counts is not None:
            check_class_counts(class_counts, head.num_classes)

    def prepare(self, features: torch.Tensor) -> torch.Tensor:
        """The head's BatchNorm + L2 normalisation of pooled features (B, D): run it once per batch."""
        return self.head.normalize_features(features)  # shape-checked there

    def forward(self, features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Dot-regression loss of pooled features against class labels.

        Args:
            features: (B, D) pooled features, before the head's BatchNorm (the head's input).
            target: (B,) class indices in [0, K).

        Returns:
            The loss, reduced by ``reduction``.
        """
        return self.loss_on_prepared(self.prepare(features), target)

    def loss_on_prepared(self, h: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The loss of already normalised features ``h = prepare(features)`` (B, D) against ``target`` (B,)."""
        head = self.head
        check_class_targets(target, h.shape[0], head.num_classes)
        m = head.etf.T[target].to(h.dtype)  # (B, D) target class vectors
        if self.rescale_targets:
            m = m * batch_target_scales(target, head.num_classes).to(h)[target, None]
        with torch.no_grad():
            h_norm = h.norm(dim=1).clamp_min(1e-8)
            m_norm = m.norm(dim=1)
        dot = (h * m).sum(dim=1)
        per_sample = 0.5 * (dot - m_norm * h_norm) ** 2 / h_norm  # Yang et al. 2022, DR loss
        if self.reg_lambda:
            per_sample = per_sample + self.reg_lambda * h.norm(dim=1)
        return reduce_loss(per_sample, self.reduction)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}, rescale_targets={self.rescale_targets}, reg_lambda={self.reg_lambda}"
