"""DLSA flow-filter losses (Xu et al., ECCV 2022; facts in REFERENCE.md "DLSA", proofs in the supplement).

- "dlsa_mle": weighted maximum likelihood, -w_y log p(x), w_c proportional to (n_max / n_c)^2.
- "dlsa_purity": for an anchor and a sample of another class, -log(1 - sum_k q_k p_k) with q the
  anchor's cluster posterior (the target, detached) and p the other sample's: a binary
  cross-entropy pushing the other sample out of the anchor's clusters.
- "dlsa_balance": KL(p_bar || uniform) = log M - Ent(p_bar) (supplement Sec. 2.1, Eq. 1) of the
  mean cluster posterior p_bar, estimated with momentum and bias correction 1 / (1 - eta^t)
  (supplement Sec. 2.2, Eq. 2-4: unbiased, variance below the batch estimate's).
- "dlsa": MLE + lambda_bal * balance + lambda_pure * purity (ImageNet-LT: 1 and 0.02, supplement Sec. 5).

The losses take a flow filter's outputs (:class:`ltzoo.heads.flow.FlowOutput`), not class logits.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from torch import nn

from ltzoo.distributed import all_reduce_sum, rank_and_world_size
from ltzoo.losses.checks import check_class_targets, check_logits
from ltzoo.losses.reduction import check_reduction, reduce_loss
from ltzoo.registry import LOSSES
from ltzoo.validation import class_counts_tensor, check_num_classes

__all__ = ["mle_class_weights", "kl_to_uniform", "MomentumEstimator", "DLSAMLELoss", "DLSAPurityLoss",
           "ClusterBalanceLoss", "DLSALoss"]


def mle_class_weights(class_counts: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """Per-class MLE weights w_c = (n_max / n_c)^2, normalised so the mean weight over the
    training samples is 1 (sum_c n_c w_c = sum_c n_c).

    Args:
        class_counts: (K,) training class counts, all > 0.

    Returns:
        The (K,) float32 weights.
    """
    n = class_counts_tensor(class_counts, name="class_counts")
    w = (n.max() / n) ** 2
    return w * n.sum() / (n * w).sum()


def kl_to_uniform(p: torch.Tensor) -> torch.Tensor:
    """KL(p || u) = sum_k p_k log(M p_k) of a (M,) distribution p (0 log 0 = 0)."""
    m = p.shape[-1]
    return torch.where(p > 0, p * torch.log(p.clamp_min(1e-30) * m), torch.zeros_like(p)).sum(-1)


def _check_rate(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
    return float(value)


def _check_weight(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


class MomentumEstimator(nn.Module):
    """Bias-corrected momentum estimate of a stationary mean (supplement Sec. 2.2).

    p_t = eta p_{t-1} + (1 - eta) x_t with p_0 = 0 (Eq. 2), returned as p_t / (1 - eta^t): unbiased
    (Eq. 3) with variance phi(1) / phi(t) of a single x_t's, phi(t) = (1 - eta^t) / (1 + eta^t)
    (Eq. 4). The gradient flows through the current x_t only; the stored state is detached and,
    under torch.distributed, averaged over ranks so every rank holds the same estimate.

    Args:
        shape: Shape of the estimated quantity (an int or a tuple).
        momentum: eta in [0, 1) (REFERENCE: 0.7).
        bias_correction: Divide by 1 - eta^t (False gives the raw, biased EMA).
    """

    def __init__(self, shape: int | Sequence[int], momentum: float = 0.7, bias_correction: bool = True) -> None:
        super().__init__()
        self.momentum = _check_rate(momentum, "momentum")
        self.bias_correction = bool(bias_correction)
        self.register_buffer("ema", torch.zeros(shape))
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    def reset(self) -> None:
        """Forget the history (t = 0)."""
        self.ema.zero_()
        self.step.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Update with the batch estimate x and return the (bias-corrected) running estimate."""
        if not isinstance(x, torch.Tensor) or x.shape != self.ema.shape:
            raise ValueError(f"x must be a tensor of shape {tuple(self.ema.shape)}, got {getattr(x, 'shape', x)}")
        eta = self.momentum
        ema = self.ema.to(x.dtype)
        est = eta * ema + (1 - eta) * x
        with torch.no_grad():
            self.step += 1
            self.ema.copy_(eta * ema + (1 - eta) * all_reduce_sum(x) / rank_and_world_size()[1])
        if self.bias_correction:
            est = est / (1 - eta ** int(self.step))
        return est


@LOSSES.register("dlsa_mle")
class DLSAMLELoss(nn.Module):
    """Weighted negative log-likelihood -w_y log p(x), w from :func:`mle_class_weights`.

    Args:
        class_counts: (K,) training class counts, all > 0.
        reduction: "mean", "sum" or "none".
    """

    def __init__(self, class_counts: Sequence[float] | torch.Tensor, reduction: str = "mean") -> None:
        super().__init__()
        self.register_buffer("weights", mle_class_weights(class_counts))
        self.reduction = check_reduction(reduction)

    def forward(self, log_likelihood: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Args: log_likelihood (B,) log p(x), target (B,) labels. Returns: the reduced loss."""
        if not isinstance(log_likelihood, torch.Tensor) or log_likelihood.ndim != 1:
            raise ValueError(f"log_likelihood must be a (B,) tensor, got {getattr(log_likelihood, 'shape', None)}")
        check_class_targets(target, log_likelihood.shape[0], self.weights.numel())
        return reduce_loss(-self.weights.to(log_likelihood.dtype)[target] * log_likelihood, self.reduction)


@LOSSES.register("dlsa_purity")
class DLSAPurityLoss(nn.Module):
    """-log(1 - sum_k q_k p_k): q the anchor's cluster posterior, p that of a sample of another class.

    Args:
        reduction: "mean", "sum" or "none".
        detach_anchor: Treat the anchor's posterior as a fixed target.
    """

    def __init__(self, reduction: str = "mean", detach_anchor: bool = True) -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)
        self.detach_anchor = bool(detach_anchor)

    def forward(self, cluster_logits: torch.Tensor, negative_cluster_logits: torch.Tensor) -> torch.Tensor:
        """Args: anchors' and negatives' (B, M) cluster logits, row i a pair. Returns: the reduced loss."""
        check_logits(cluster_logits, "cluster_logits")
        check_logits(negative_cluster_logits, "negative_cluster_logits")
        if cluster_logits.shape != negative_cluster_logits.shape:
            raise ValueError(f"negative_cluster_logits must have shape {tuple(cluster_logits.shape)}, "
                             f"got {tuple(negative_cluster_logits.shape)}")
        if cluster_logits.shape[1] == 1:  # one cluster: nothing to push apart
            return reduce_loss(cluster_logits.new_zeros(cluster_logits.shape[0]), self.reduction)
        log_q = cluster_logits.log_softmax(dim=1)
        log_q = log_q.detach() if self.detach_anchor else log_q
        # log(1 - sum_k q_k p_k) = logsumexp_k(log q_k + log(1 - p_k)), log(1 - p_k) kept exact near p_k = 1
        return reduce_loss(-torch.logsumexp(log_q + _log1m_softmax(negative_cluster_logits), dim=1), self.reduction)


def _log1m_softmax(logits: torch.Tensor) -> torch.Tensor:
    """log(1 - softmax(logits)) along dim 1; the largest entry as log sum of the others (no cancellation)."""
    log_p = logits.log_softmax(dim=1)
    out = torch.log1p(-log_p.exp().clamp(max=0.5))  # exact where p <= 0.5: all but possibly the argmax
    top = logits.argmax(dim=1, keepdim=True)
    rest = logits.scatter(1, top, float("-inf")).logsumexp(dim=1, keepdim=True) - logits.logsumexp(dim=1, keepdim=True)
    return out.scatter(1, top, rest)


@LOSSES.register("dlsa_balance")
class ClusterBalanceLoss(nn.Module):
    """KL(p_bar || uniform) of the momentum-estimated mean cluster posterior (a batch-level loss).

    Args:
        num_components: Number of mixture components M.
        momentum: eta of the estimator (REFERENCE: 0.7); 0 uses the batch mean alone.
        bias_correction: Divide the estimate by 1 - eta^t (supplement Sec. 2.2).
    """

    def __init__(self, num_components: int, momentum: float = 0.7, bias_correction: bool = True) -> None:
        super().__init__()
        self.num_components = check_num_classes(num_components, "num_components")
        self.estimator = MomentumEstimator(self.num_components, momentum, bias_correction)

    def forward(self, cluster_logits: torch.Tensor) -> torch.Tensor:
        """Args: (B, M) cluster logits. Returns: the scalar loss (updates the estimator)."""
        check_logits(cluster_logits, "cluster_logits")
        if cluster_logits.shape[1] != self.num_components:
            raise ValueError(f"cluster_logits must have shape (B, {self.num_components}), "
                             f"got {tuple(cluster_logits.shape)}")
        return kl_to_uniform(self.estimator(cluster_logits.softmax(dim=1).mean(dim=0)))


@LOSSES.register("dlsa")
class DLSALoss(nn.Module):
    """L = L_MLE + lambda_bal L_bal + lambda_pure L_pure; called as ``loss(output, target, negative_output)``.

    Args:
        class_counts: (K,) training class counts, all > 0 (MLE weights).
        num_components: Mixture components M.
        lambda_bal: Weight of the balancedness loss (ImageNet-LT 1, Places-LT 2).
        lambda_pure: Weight of the purity loss (ImageNet-LT 0.02, Places-LT 0.03).
        momentum: eta of the balancedness estimator.
        reduction: "mean" or "sum" (of the per-sample MLE and purity terms).
    """

    def __init__(self, class_counts: Sequence[float] | torch.Tensor, num_components: int, lambda_bal: float = 1.0,
                 lambda_pure: float = 0.02, momentum: float = 0.7, reduction: str = "mean") -> None:
        super().__init__()
        if check_reduction(reduction) == "none":
            raise ValueError("reduction must be 'mean' or 'sum' (the balancedness term is batch-level)")
        self.mle = DLSAMLELoss(class_counts, reduction)
        self.purity = DLSAPurityLoss(reduction)
        self.balance = ClusterBalanceLoss(num_components, momentum)
        self.lambda_bal = _check_weight(lambda_bal, "lambda_bal")
        self.lambda_pure = _check_weight(lambda_pure, "lambda_pure")
        self.last: dict[str, float] = {}

    def forward(self, output: Any, target: torch.Tensor, negative_output: Any = None) -> torch.Tensor:
        """Args: FlowOutput of the batch, (B,) labels, FlowOutput of one other-class sample per row
        (None: no purity term). Returns: the total loss; ``self.last`` holds its terms."""
        if not hasattr(output, "log_likelihood") or not hasattr(output, "cluster_logits"):
            raise TypeError(f"output must be a FlowOutput, got {type(output).__name__}")
        terms = {"mle": self.mle(output.log_likelihood, target)}
        if self.lambda_bal > 0:
            terms["balance"] = self.balance(output.cluster_logits)
        if self.lambda_pure > 0 and negative_output is not None:
            terms["purity"] = self.purity(output.cluster_logits, negative_output.cluster_logits)
        total = (terms["mle"] + self.lambda_bal * terms.get("balance", 0.0)
                 + self.lambda_pure * terms.get("purity", 0.0))
        self.last = {k: float(v.detach()) for k, v in terms.items()}
        return total

    def extra_repr(self) -> str:
        return f"lambda_bal={self.lambda_bal}, lambda_pure={self.lambda_pure}"
