"""DLSA flow-filter losses (Xu et al., ECCV 2022; facts in REFERENCE.md "DLSA", proofs in the supplement).

- "dlsa_mle": weighted maximum likelihood, -w_y log p(x), w_c = (n_max / n_c)^q / sum_j (n_max / n_j)^q
  (the authors' weighting, q = 2: the weights sum to 1 over classes; anchors are drawn uniformly
  over classes by the recipe, ltzoo/recipes/dlsa.py).
- "dlsa_purity": for an anchor and a sample of another class, with q the anchor's cluster
  posterior and p the other sample's. ``form="soft_ce"`` (the authors' "soft_ce" contrast loss,
  default): sum_k q_k log p_k, the NEGATIVE cross-entropy -H(q, p) (<= 0); minimising it raises
  H(q, p), pushing the other sample out of the anchor's clusters; it is unbounded below (the
  authors' configs set no ``contrast_margin``; with a margin m, p is clamped to [m, 1] before the
  log, so the loss stops at log m and clusters below m get no gradient). ``form="log1m"``:
  -log(1 - sum_k q_k p_k), a bounded binary cross-entropy with the same minimiser.
  ``contrast_freeze`` (the authors' name; default True) detaches q.
- "dlsa_balance": KL(p_bar || uniform) = log M - Ent(p_bar) (supplement Sec. 2.1, Eq. 1) of the
  mean cluster posterior p_bar, estimated with momentum and bias correction 1 / (1 - eta^t)
  (supplement Sec. 2.2, Eq. 2-4: unbiased, variance below the batch estimate's).
- "dlsa": lambda_lh * MLE + lambda_bal * balance + lambda_pure * purity (the authors' ImageNet-LT config:
  lambda_lh 2, lambda_bal 1, lambda_pure 0.02; supplement Sec. 5 gives the last two).

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
from ltzoo.validation import as_number, check_num_classes, class_counts_tensor

__all__ = ["PURITY_FORMS", "mle_class_weights", "kl_to_uniform", "MomentumEstimator", "DLSAMLELoss", "DLSAPurityLoss",
           "ClusterBalanceLoss", "DLSALoss"]


PURITY_FORMS = ("soft_ce", "log1m")


def mle_class_weights(class_counts: Sequence[float] | torch.Tensor, q: float = 2.0) -> torch.Tensor:
    """Per-class MLE weights w_c = (n_max / n_c)^q / sum_j (n_max / n_j)^q (they sum to 1 over classes).

    The authors' weighting (q = 2), meant for anchors drawn uniformly over classes: a batch's mean
    weight is then about 1 / K. A class with no samples (a deeper DLSA level may lack some) gets
    weight 0 and is left out of the sum, as the authors' sampler only knows the classes present.

    Args:
        class_counts: (K,) training class counts, >= 0 with at least one > 0.
        q: Exponent q >= 0 (0: every present class weighted equally).

    Returns:
        The (K,) float32 weights.
    """
    n = class_counts_tensor(class_counts, name="class_counts", allow_zero=True)
    if float(n.sum()) <= 0:
        raise ValueError("class_counts must have at least one class with samples")
    q = _check_weight(q, "q")
    present = n > 0
    w = torch.where(present, n.max() / n.clamp_min(1e-30), torch.zeros_like(n)) ** q
    w = torch.where(present, w, torch.zeros_like(w))  # 0 ** 0 = 1 for absent classes when q = 0
    return w / w.sum()


def kl_to_uniform(p: torch.Tensor) -> torch.Tensor:
    """KL(p || u) = sum_k p_k log(M p_k) of a (M,) distribution p (0 log 0 = 0)."""
    m = p.shape[-1]
    return torch.where(p > 0, p * torch.log(p.clamp_min(1e-30) * m), torch.zeros_like(p)).sum(-1)


def _check_rate(value: Any, name: str) -> float:
    value = as_number(value)  # numpy / 0-d tensor scalars are numbers too
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
    return float(value)


def _check_weight(value: Any, name: str) -> float:
    value = as_number(value)  # numpy / 0-d tensor scalars are numbers too
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
        class_counts: (K,) training class counts (an absent class, count 0, gets weight 0).
        q: Exponent of the class weights (the authors' 2).
        reduction: "mean", "sum" or "none".
    """

    def __init__(self, class_counts: Sequence[float] | torch.Tensor, q: float = 2.0, reduction: str = "mean") -> None:
        super().__init__()
        self.register_buffer("weights", mle_class_weights(class_counts, q))
        self.reduction = check_reduction(reduction)

    def forward(self, log_likelihood: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Args: log_likelihood (B,) log p(x), target (B,) labels. Returns: the reduced loss."""
        if not isinstance(log_likelihood, torch.Tensor) or log_likelihood.ndim != 1:
            raise ValueError(f"log_likelihood must be a (B,) tensor, got {getattr(log_likelihood, 'shape', None)}")
        check_class_targets(target, log_likelihood.shape[0], self.weights.numel())
        return reduce_loss(-self.weights.to(log_likelihood.dtype)[target] * log_likelihood, self.reduction)


@LOSSES.register("dlsa_purity")
class DLSAPurityLoss(nn.Module):
    """Purity loss between an anchor's cluster posterior q and that of a sample of another class p.

    ``form="soft_ce"`` (the authors' "soft_ce"): sum_k q_k log p_k, i.e. minus the cross-entropy
    H(q, p); <= 0 and unbounded below unless ``margin`` clamps p to [margin, 1] before the log.
    ``form="log1m"``: -log(1 - sum_k q_k p_k) >= 0. Both are minimised by p putting no mass on the
    clusters q occupies.

    Args:
        reduction: "mean", "sum" or "none".
        detach_anchor: Treat the anchor's posterior as a fixed target (the authors' ``contrast_freeze``).
        form: "soft_ce" or "log1m".
        margin: soft_ce only: clamp p to [margin, 1] (the authors' ``contrast_margin``; None: no clamp).
    """

    def __init__(self, reduction: str = "mean", detach_anchor: bool = True, form: str = "soft_ce",
                 margin: float | None = None) -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)
        self.detach_anchor = bool(detach_anchor)
        if form not in PURITY_FORMS:
            raise ValueError(f"form must be one of {PURITY_FORMS}, got {form!r}")
        self.form = form
        if margin is not None and (isinstance(margin, bool) or not isinstance(margin, (int, float))
                                   or not 0 < margin < 1):
            raise ValueError(f"margin must be None or a number in (0, 1), got {margin!r}")
        if margin is not None and form != "soft_ce":
            raise ValueError("margin applies to form='soft_ce' only")
        self.margin = None if margin is None else float(margin)

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
        if self.form == "soft_ce":
            log_p = negative_cluster_logits.log_softmax(dim=1)
            if self.margin is not None:  # clamp(p, m, 1).log() = max(log p, log m)
                log_p = log_p.clamp_min(math.log(self.margin))
            return reduce_loss((log_q.exp() * log_p).sum(dim=1), self.reduction)
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
    """L = lambda_lh L_MLE + lambda_bal L_bal + lambda_pure L_pure; called as ``loss(output, target, negative_output)``.

    Args:
        class_counts: (K,) training class counts, an absent class (0) weighted 0 (MLE weights).
        num_components: Mixture components M.
        lambda_lh: Weight of the MLE loss (the authors' 2).
        lambda_bal: Weight of the balancedness loss (ImageNet-LT 1, Places-LT 2).
        lambda_pure: Weight of the purity loss (ImageNet-LT 0.02, Places-LT 0.03).
        momentum: eta of the balancedness estimator (the authors' posterior momentum 0.7).
        q: Exponent of the MLE class weights (the authors' 2).
        purity: Purity form, "soft_ce" (the authors') or "log1m" (:class:`DLSAPurityLoss`).
        purity_margin: soft_ce clamp (None: none, as the authors' configs).
        contrast_freeze: Detach the anchor's posterior in the purity loss (the authors' True).
        reduction: "mean" or "sum" (of the per-sample MLE and purity terms).
    """

    def __init__(self, class_counts: Sequence[float] | torch.Tensor, num_components: int, lambda_bal: float = 1.0,
                 lambda_pure: float = 0.02, momentum: float = 0.7, reduction: str = "mean", lambda_lh: float = 2.0,
                 q: float = 2.0, purity: str = "soft_ce", purity_margin: float | None = None,
                 contrast_freeze: bool = True) -> None:
        super().__init__()
        if check_reduction(reduction) == "none":
            raise ValueError("reduction must be 'mean' or 'sum' (the balancedness term is batch-level)")
        self.mle = DLSAMLELoss(class_counts, q, reduction)
        self.purity = DLSAPurityLoss(reduction, contrast_freeze, purity, purity_margin)
        self.balance = ClusterBalanceLoss(num_components, momentum)
        self.lambda_lh = _check_weight(lambda_lh, "lambda_lh")
        self.lambda_bal = _check_weight(lambda_bal, "lambda_bal")
        self.lambda_pure = _check_weight(lambda_pure, "lambda_pure")
        self.last: dict[str, float] = {}

    def forward(self, output: Any, target: torch.Tensor, negative_output: Any = None) -> torch.Tensor:
        """Args: FlowOutput of the batch (the anchors), (B,) labels, FlowOutput of one other-class sample
        per row (None: no purity term). Returns: the total loss; ``self.last`` holds its unweighted terms."""
        if not hasattr(output, "log_likelihood") or not hasattr(output, "cluster_logits"):
            raise TypeError(f"output must be a FlowOutput, got {type(output).__name__}")
        terms = {"mle": self.mle(output.log_likelihood, target)}
        if self.lambda_bal > 0:
            terms["balance"] = self.balance(output.cluster_logits)
        if self.lambda_pure > 0 and negative_output is not None:
            terms["purity"] = self.purity(output.cluster_logits, negative_output.cluster_logits)
        total = (self.lambda_lh * terms["mle"] + self.lambda_bal * terms.get("balance", 0.0)
                 + self.lambda_pure * terms.get("purity", 0.0))
        self.last = {k: float(v.detach()) for k, v in terms.items()}
        return total

    def extra_repr(self) -> str:
        return (f"lambda_lh={self.lambda_lh}, lambda_bal={self.lambda_bal}, lambda_pure={self.lambda_pure}, "
                f"purity={self.purity.form!r}")
