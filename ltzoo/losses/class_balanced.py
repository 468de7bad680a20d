"""Class-balanced loss (Cui et al., CVPR 2019) and BEM's entropy-based class-balanced loss.

"class_balanced": loss_i = w_{y_i} * CE_i with w_c proportional to 1 / E_c, the inverse
effective number E_c = (1 - beta^n_c) / (1 - beta), normalised so the weights sum to K.

"ecb": loss_i = s_hat^u[q_i] * CE(logits_i, q_i) on pseudo-labels q (BEM Eq. 11), the class
weights read from a shared :class:`~ltzoo.losses.bem_state.BEMState` at every call.

Both reduce with a plain mean over the batch, (1/B) sum_i w_i CE_i, not the weighted mean
sum_i w_i CE_i / sum_i w_i of ``F.cross_entropy(weight=...)``.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ltzoo.losses.bem_state import BEMState
from ltzoo.losses.checks import check_logits_and_target
from ltzoo.losses.effective_number import check_beta, effective_number
from ltzoo.losses.reduction import check_reduction, reduce_loss
from ltzoo.registry import LOSSES
from ltzoo.validation import class_counts_tensor

__all__ = ["ClassBalancedLoss", "EntropyClassBalancedLoss", "effective_number", "check_beta"]

NORMALIZATIONS = ("sum_to_k", "sum_to_one")


@LOSSES.register("class_balanced")
class ClassBalancedLoss(nn.Module):
    """Softmax class-balanced loss: loss_i = w_{y_i} * CE(logits_i, y_i) (Cui et al.).

    Args:
        class_counts: (K,) training class counts, all > 0.
        beta: Effective-number hyper-parameter in [0, 1) (0 gives plain CE, all weights 1).
        reduction: "mean", "sum" or "none".
        num_classes: When given, the required length of ``class_counts``.

    The ``weights`` buffer holds w_c = (1 - beta) / (1 - beta^n_c) rescaled to sum K.
    """

    def __init__(self, class_counts: Sequence[float] | torch.Tensor, beta: float = 0.9999,
                 reduction: str = "mean", num_classes: int | None = None) -> None:
        super().__init__()
        counts = class_counts_tensor(class_counts, num_classes, name="class_counts")
        self.beta = check_beta(beta)
        self.reduction = check_reduction(reduction)
        self.num_classes = counts.numel()
        inv = 1.0 / effective_number(counts, self.beta).double()  # (1 - beta) / (1 - beta^n)
        self.register_buffer("class_counts", counts)
        self.register_buffer("weights", (inv * self.num_classes / inv.sum()).float())

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Args: logits (B, K), target (B,) class indices. Returns: the reduced loss."""
        check_logits_and_target(logits, target, self.num_classes)
        ce = F.cross_entropy(logits, target, reduction="none")
        return reduce_loss(self.weights.to(ce.dtype)[target] * ce, self.reduction)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, beta={self.beta}, reduction={self.reduction!r}"


@LOSSES.register("ecb")
class EntropyClassBalancedLoss(nn.Module):
    """BEM's entropy-based class-balanced loss: loss_i = w[q_i] * CE(logits_i, q_i) (BEM Eq. 11).

    w = s_hat^u from ``state.s_hat_unlabeled()`` (BEM Eq. 7 on unlabeled statistics, through the
    state's mapping delta: ``BEMState.delta_map``, softmax by default), read at
    every call, so updating the shared state changes this loss without rebuilding it. The
    state is held by reference (as the submodule ``state``), never copied.

    ``normalization``: the paper's s_hat^u sums to 1 ("sum_to_one"), which divides the
    unsupervised loss by K compared with plain CE. The default "sum_to_k" rescales it to sum
    K, as the class-balanced loss does: the mean weight is 1 and the loss keeps plain CE's
    scale, so the unsupervised loss weight tuned for FixMatch keeps its meaning (and, before
    the state's warm-up ends, s_hat^u is uniform and this loss is exactly CE).

    The FixMatch confidence mask and BEM's entropy masks (Appendix A, Eq. 12) are the caller's:
    use ``reduction="none"`` and multiply.

    Args:
        state: The :class:`~ltzoo.losses.bem_state.BEMState` shared with the mix bank.
        normalization: "sum_to_k" (default) or "sum_to_one".
        reduction: "mean", "sum" or "none".
    """

    def __init__(self, state: BEMState, normalization: str = "sum_to_k", reduction: str = "mean") -> None:
        super().__init__()
        if not isinstance(state, BEMState):
            raise TypeError(f"state must be a BEMState (shared with the mix bank), got {type(state).__name__}")
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
        self.state = state
        self.normalization = normalization
        self.reduction = check_reduction(reduction)

    def class_weights(self) -> torch.Tensor:
        """The current (K,) per-class weights: s_hat^u, times K under "sum_to_k"."""
        w = self.state.s_hat_unlabeled()
        return w * self.state.num_classes if self.normalization == "sum_to_k" else w

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Args: logits (B, K) on strongly augmented data, target (B,) pseudo-labels q.

        Returns: the reduced loss.
        """
        check_logits_and_target(logits, target, self.state.num_classes)
        ce = F.cross_entropy(logits, target, reduction="none")
        w = self.class_weights().to(device=ce.device, dtype=ce.dtype)
        return reduce_loss(w[target] * ce, self.reduction)

    def extra_repr(self) -> str:
        return f"normalization={self.normalization!r}, reduction={self.reduction!r}"
