"""Cross-entropy over mixed labels ("mixed_singleton"), in O(K) per sample.

BMLS paper (Sec. 4.2): the mixed-singleton classifier has one class vector per mixed label
(a, b), a < b: w^lam_ab = lam * w_a + (1 - lam) * w_b (Eq. 3), and a mixed sample is trained
with the one-hot target of its pair (Eq. 4). Its logit is linear in the singleton logits s:

    z_ab = lam * s_a + (1 - lam) * s_b,

so the K(K-1)/2 class vectors are never built. The normaliser factorises:

    LSE_{a<b} z_ab = LSE_a [lam * s_a + T_a],   T_a = LSE_{b>a} (1 - lam) * s_b,

T being a suffix log-cumsum-exp: only (B, K) tensors, O(K) time and memory per sample.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ltzoo.losses.checks import check_class_targets, check_logits
from ltzoo.losses.reduction import check_reduction, reduce_loss
from ltzoo.registry import LOSSES
from ltzoo.validation import check_class_counts, check_num_classes

__all__ = ["MixedSingletonLoss", "mixed_label_index", "mixed_label_pair", "num_mixed_labels"]


def num_mixed_labels(num_classes: int) -> int:
    """K(K-1)/2, the number of mixed labels (a, b) with a < b."""
    k = check_num_classes(num_classes)
    return k * (k - 1) // 2


def _row_start(a, k: int):
    """Index of the first pair (a, a+1) of row a in the row-major a < b enumeration."""
    return a * (2 * k - a - 1) // 2


def mixed_label_index(a, b, num_classes: int):
    """Index of mixed label (a, b), a < b, in the row-major enumeration of the K(K-1)/2 pairs.

    (0, 1) -> 0, (0, 2) -> 1, ..., (0, K-1) -> K-2, (1, 2) -> K-1, ..., (K-2, K-1) -> K(K-1)/2 - 1.

    Args:
        a: The smaller class: an int, a numpy array or a torch tensor.
        b: The larger class, same form as ``a``.
        num_classes: K.

    Returns:
        The index (int for int inputs, else an int64 array / tensor of the broadcast shape).
    """
    k = check_num_classes(num_classes)
    is_torch = isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor)
    aa = torch.as_tensor(a, dtype=torch.int64) if is_torch else np.asarray(a, dtype=np.int64)
    bb = torch.as_tensor(b, dtype=torch.int64, device=aa.device) if is_torch else np.asarray(b, dtype=np.int64)
    ok = (aa >= 0) & (aa < bb) & (bb < k)
    if not bool(ok.all()):
        raise ValueError(f"a and b must satisfy 0 <= a < b < num_classes={k}, got a={a!r}, b={b!r}")
    idx = _row_start(aa, k) + (bb - aa - 1)
    return int(idx) if not is_torch and np.ndim(a) == 0 and np.ndim(b) == 0 else idx


def mixed_label_pair(index, num_classes: int):
    """Inverse of :func:`mixed_label_index`: the pair (a, b), a < b, at ``index``.

    Args:
        index: An int, numpy array or torch tensor of indices in [0, K(K-1)/2).
        num_classes: K.

    Returns:
        (a, b): ints for an int input, else int64 arrays / tensors shaped like ``index``.
    """
    n = num_mixed_labels(num_classes)
    k = int(num_classes)
    is_torch = isinstance(index, torch.Tensor)
    idx = torch.as_tensor(index, dtype=torch.int64) if is_torch else np.asarray(index, dtype=np.int64)
    if not bool(((idx >= 0) & (idx < n)).all()):
        raise ValueError(f"index must lie in [0, {n}) for num_classes={k} (K(K-1)/2 mixed labels), got {index!r}")
    if is_torch:
        starts = _row_start(torch.arange(max(k - 1, 1), dtype=torch.int64, device=idx.device), k)
        a = torch.searchsorted(starts, idx, right=True) - 1
    else:
        starts = _row_start(np.arange(max(k - 1, 1), dtype=np.int64), k)
        a = np.searchsorted(starts, idx, side="right") - 1
    b = idx - _row_start(a, k) + a + 1
    if not is_torch and np.ndim(index) == 0:
        return int(a), int(b)
    return a, b


def _check_lam(lam: Any, batch_size: int, like: torch.Tensor) -> torch.Tensor:
    """Return lam as a (B,) tensor on ``like``'s device and dtype; raise if not in [0, 1]."""
    if isinstance(lam, torch.Tensor):
        if lam.ndim == 0:
            lam = lam.expand(batch_size)
        elif lam.shape != (batch_size,):
            raise ValueError(f"lam must be a float or a (B,) tensor with B={batch_size}, got shape {tuple(lam.shape)}")
        lam_t = lam.to(device=like.device, dtype=like.dtype)
    elif isinstance(lam, (int, float)) and not isinstance(lam, bool):
        lam_t = torch.full((batch_size,), float(lam), device=like.device, dtype=like.dtype)
    else:
        raise TypeError(f"lam must be a float or a (B,) tensor in [0, 1], got {type(lam).__name__}")
    if lam_t.numel() and not bool(((lam_t >= 0) & (lam_t <= 1)).all()):  # also refuses NaN
        raise ValueError(f"lam must lie in [0, 1], got values in [{lam_t.min().item()}, {lam_t.max().item()}]")
    return lam_t


def mixed_label_logsumexp(logits: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
    """LSE over all a < b of lam * s_a + (1 - lam) * s_b, in O(K) per sample.

    Args:
        logits: (B, K) singleton logits s, K >= 2.
        lam: (B,) ratio of the smaller class of each pair.

    Returns:
        (B,) log-sum-exp of the K(K-1)/2 mixed-label logits (BMLS Eq. 3 class vectors).
    """
    lam = lam[:, None]
    head = lam * logits[:, :-1]  # lam * s_a for a = 0..K-2
    rest = (1 - lam) * logits
    suffix = torch.logcumsumexp(rest.flip(1), dim=1).flip(1)  # suffix[:, a] = LSE_{b>=a} (1-lam) s_b
    return torch.logsumexp(head + suffix[:, 1:], dim=1)  # T_a = suffix[:, a+1]


@LOSSES.register("mixed_singleton")
class MixedSingletonLoss(nn.Module):
    """Softmax cross-entropy over the K(K-1)/2 mixed labels (a, b), a < b (BMLS Eq. 3-4).

    Called as ``loss(logits, y_a, y_b, lam)`` with singleton logits s (B, K) from any head
    ("ms", "ms_wetf", ...). A sample mixes class y_a with ratio lam and y_b with 1 - lam;
    labels come in either order: (b, a, lam) is the mixed label (a, b) with ratio 1 - lam.
    After reordering to a < b, z_ab = lam * s_a + (1 - lam) * s_b and

        loss_i = LSE_{c<d} (lam * s_c + (1 - lam) * s_d) - z_{a b}.

    Same-class pairs (y_a == y_b) have no mixed label. They never come from the "bmls" sampler,
    but a random sampler with mixup makes them (the BMLS paper's "random + MS" ablation, whose
    handling the paper does not state); ``same_class`` says what happens to them.

    Args:
        include_singletons: Also put the K singleton labels (z_aa = s_a) in the normaliser and
            take y_a == y_b as a singleton target (then ``same_class`` is not used).
        same_class: Without singletons, for y_a == y_b: "mask" (default: the sample is left out
            of the loss: 0 with reduction "none", and "mean" averages over the other samples;
            :meth:`kept` tells the recipe which), "singleton" (plain CE over the K singleton
            logits, LSE_c s_c - s_a, as an unmixed image of class a) or "error" (refused).
        reduction: "mean", "sum" or "none".
        class_counts: Accepted and ignored, so every loss can be built with the same call.
    """

    SAME_CLASS = ("mask", "singleton", "error")

    def __init__(self, include_singletons: bool = False, same_class: str = "mask", reduction: str = "mean",
                 class_counts: Any = None) -> None:
        super().__init__()
        if not isinstance(include_singletons, bool):
            raise TypeError(f"include_singletons must be a bool, got {type(include_singletons).__name__}")
        if same_class not in self.SAME_CLASS:
            raise ValueError(f"same_class must be one of {self.SAME_CLASS}, got {same_class!r}")
        self.include_singletons = include_singletons
        self.same_class = same_class
        self.reduction = check_reduction(reduction)
        if class_counts is not None:
            check_class_counts(class_counts)

    def forward(
        self, logits: torch.Tensor, y_a: torch.Tensor, y_b: torch.Tensor, lam: float | torch.Tensor
    ) -> torch.Tensor:
        """Mixed-label cross-entropy.

        Args:
            logits: (B, K) singleton logits.
            y_a: (B,) first labels (weight lam).
            y_b: (B,) second labels (weight 1 - lam).
            lam: A float or (B,) tensor in [0, 1].

        Returns:
            The loss, reduced by ``reduction``.
        """
        logits = check_logits(logits)
        if logits.dtype in (torch.float16, torch.bfloat16):
            logits = logits.float()
        b, k = logits.shape
        check_class_targets(y_a, b, k, "y_a")
        check_class_targets(y_b, b, k, "y_b")
        lam = _check_lam(lam, b, logits)
        same = y_a == y_b
        if not self.include_singletons:
            if k < 2:
                raise ValueError("logits must have K >= 2 classes for mixed labels (or set include_singletons=True)")
            if self.same_class == "error" and bool(same.any()):
                raise ValueError(
                    "y_a and y_b must differ for mixed labels (got y_a == y_b at samples "
                    f"{torch.nonzero(same).flatten()[:10].tolist()}); use same_class='mask' or 'singleton', "
                    "or include_singletons=True"
                )
        swap = y_a > y_b  # reorder to a < b: (b, a, lam) is (a, b, 1 - lam)
        a, bb = torch.minimum(y_a, y_b), torch.maximum(y_a, y_b)
        lam = torch.where(swap, 1 - lam, lam)
        s_a = logits.gather(1, a[:, None]).squeeze(1)
        s_b = logits.gather(1, bb[:, None]).squeeze(1)
        target_logit = lam * s_a + (1 - lam) * s_b  # BMLS Eq. 3: z_ab (= s_a when a == b)
        if k >= 2:
            norm = mixed_label_logsumexp(logits, lam)
            if self.include_singletons:
                norm = torch.logaddexp(norm, torch.logsumexp(logits, dim=1))
        else:
            norm = torch.logsumexp(logits, dim=1)  # K = 1 with singletons: the only label
        loss = norm - target_logit
        if self.include_singletons or not bool(same.any()):
            return reduce_loss(loss, self.reduction)
        if self.same_class == "singleton":  # an image mixed with its own class: CE over singletons
            return reduce_loss(torch.where(same, torch.logsumexp(logits, dim=1) - s_a, loss), self.reduction)
        loss = torch.where(same, torch.zeros_like(loss), loss)  # "mask"
        if self.reduction == "mean":
            return loss.sum() / (~same).sum().clamp_min(1)
        return reduce_loss(loss, self.reduction)

    def kept(self, y_a: torch.Tensor, y_b: torch.Tensor) -> torch.Tensor:
        """(B,) bool: the samples this loss trains on (all but same-class pairs under ``same_class="mask"``)."""
        if self.include_singletons or self.same_class != "mask":
            return torch.ones_like(y_a, dtype=torch.bool)
        return y_a != y_b

    def extra_repr(self) -> str:
        return (f"include_singletons={self.include_singletons}, same_class={self.same_class!r}, "
                f"reduction={self.reduction!r}")
