"""Plain softmax cross-entropy ("ce")."""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ltzoo.losses.checks import check_class_targets, check_logits
from ltzoo.losses.reduction import check_reduction, reduce_loss
from ltzoo.registry import LOSSES
from ltzoo.validation import as_number, check_class_counts

__all__ = ["CrossEntropyLoss"]


@LOSSES.register("ce")
class CrossEntropyLoss(nn.Module):
    """Softmax cross-entropy, ``F.cross_entropy``.

    Args:
        reduction: "mean", "sum" or "none".
        label_smoothing: Smoothing in [0, 1].
        class_counts: Accepted and ignored, so every loss can be built with the same call.
    """

    def __init__(self, reduction: str = "mean", label_smoothing: float = 0.0, class_counts: Any = None) -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)
        label_smoothing = as_number(label_smoothing)  # numpy / 0-d tensor scalars are numbers too
        if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, (int, float)) \
                or not 0.0 <= float(label_smoothing) <= 1.0:
            raise ValueError(f"label_smoothing must be a float in [0, 1], got {label_smoothing!r}")
        self.label_smoothing = float(label_smoothing)
        if class_counts is not None:
            check_class_counts(class_counts)  # refuse junk even though CE does not use it

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of (B, K) logits against (B,) class indices or (B, K) class probabilities.

        Args:
            logits: (B, K) scores.
            target: (B,) integer labels in [0, K), or (B, K) floating soft targets.

        Returns:
            The loss, reduced by ``reduction``.
        """
        logits = check_logits(logits)
        b, k = logits.shape
        if isinstance(target, torch.Tensor) and target.is_floating_point():
            if target.shape != logits.shape:
                raise ValueError(
                    f"soft target must have the logits' shape {tuple(logits.shape)}, got {tuple(target.shape)}"
                )
        else:
            check_class_targets(target, b, k)
        per_sample = F.cross_entropy(logits, target, reduction="none", label_smoothing=self.label_smoothing)
        return reduce_loss(per_sample, self.reduction)  # an empty batch with "mean" is refused, not NaN

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}, label_smoothing={self.label_smoothing}"
