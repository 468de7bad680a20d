"""UDAL: Unifying Distribution Alignment as a Loss (Lazarow et al., WACV 2023).

Progressive logit adjustment towards a target that moves from the data distribution to a
flattened one: alpha_t = 1 - (1 - alpha_min) (t / T)^k (UDAL Eq. 10), target =
normalize(p_data^alpha_t) (UDAL Eq. 2), and

    supervised:   CE(logits + log(p_data / (target + 1e-9)), y)          (UDAL Eq. 6)
    unsupervised: CE(logits + log(p_hat  / (target + 1e-9)), y_pseudo)   (UDAL Eq. 9)

with p_hat a moving average of the model's predictions on unlabeled data (EMA 0.999 starting
uniform, as public re-implementations do; the paper says only "moving average").

A FixMatch recipe builds one loss per branch and advances both::

    sup = ltzoo.create_loss("udal", class_counts=n, total_steps=T)
    unsup = ltzoo.create_loss("udal", class_counts=n, total_steps=T, mode="unsupervised",
                              reduction="none")
    unsup.update(weak_probs)                       # every iteration, before the loss
    loss = sup(logits_x, y) + lambda_u * (mask * unsup(logits_strong, pseudo)).mean()
    sup.step(); unsup.step()                       # per iteration or epoch: T in that unit
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ltzoo.distributed import all_reduce_sum
from ltzoo.losses.checks import check_logits_and_target
from ltzoo.losses.reduction import check_reduction, reduce_loss
from ltzoo.registry import LOSSES
from ltzoo.validation import as_number, class_counts_tensor

__all__ = ["UDALLoss"]

MODES = ("supervised", "unsupervised")
EPS = 1e-9  # UDAL Algorithm 1: current_dist / (target_dist + 1e-9)
P_HAT_FLOOR = 1e-12  # keeps log(p_hat) finite if a class's average prediction underflows to 0


def _check_number(value: float, name: str, low: float, high: float, high_open: bool = False) -> float:
    value = as_number(value)  # numpy / 0-d tensor scalars are numbers too
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < low or value > high or (high_open and value == high):
        interval = f"[{low}, {high})" if high_open else f"[{low}, {high}]"
        raise ValueError(f"{name} must be a number in {interval}, got {value!r}")
    return float(value)


@LOSSES.register("udal")
class UDALLoss(nn.Module):
    """One UDAL branch: logit-adjusted CE aligned to normalize(p_data^alpha_t).

    Args:
        class_counts: (K,) labeled class counts, all > 0; p_data = counts / sum.
        total_steps: T, the step at which alpha reaches alpha_min (same unit as :meth:`step`).
        mode: "supervised" (adjust from p_data) or "unsupervised" (adjust from p_hat).
        alpha_min: Final alpha, in [0, 1] (paper: 0.1; 0.5-0.6 on ImageNet-127).
        k: Rate exponent, > 0 (paper: 2).
        ema: EMA weight of p_hat, in [0, 1) (unsupervised mode only).
        reduction: "mean", "sum" or "none" (use "none" to apply FixMatch's confidence mask).
        num_classes: When given, the required length of ``class_counts``.

    Buffers: ``p_data`` (K,), ``step_count`` (t, int64 scalar) and, in unsupervised mode,
    ``p_hat`` (K,).
    """

    def __init__(self, class_counts: Sequence[float] | torch.Tensor, total_steps: int,
                 mode: str = "supervised", alpha_min: float = 0.1, k: float = 2.0, ema: float = 0.999,
                 reduction: str = "mean", num_classes: int | None = None) -> None:
        super().__init__()
        counts = class_counts_tensor(class_counts, num_classes, name="class_counts")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 1:
            raise ValueError(f"total_steps must be an integer >= 1 (T, in the unit of step()), got {total_steps!r}")
        self.mode = mode
        self.total_steps = total_steps
        self.alpha_min = _check_number(alpha_min, "alpha_min", 0.0, 1.0)
        self.k = _check_number(k, "k", 0.0, math.inf)
        if self.k == 0:
            raise ValueError("k must be > 0, got 0")
        self.ema = _check_number(ema, "ema", 0.0, 1.0, high_open=True)
        self.reduction = check_reduction(reduction)
        self.num_classes = counts.numel()
        self.register_buffer("p_data", counts / counts.sum())
        self.register_buffer("step_count", torch.zeros((), dtype=torch.long))
        if mode == "unsupervised":
            self.register_buffer("p_hat", torch.full((self.num_classes,), 1.0 / self.num_classes))

    # -- progress --------------------------------------------------------------------------
    def step(self) -> None:
        """Advance t by 1 (call once per iteration or epoch, the unit of ``total_steps``)."""
        self.step_count += 1

    def set_step(self, t: int) -> None:
        """Set t (e.g. when resuming); values beyond T act as T."""
        if isinstance(t, bool) or not isinstance(t, int) or t < 0:
            raise ValueError(f"t must be an integer >= 0, got {t!r}")
        self.step_count.fill_(t)

    def _alpha_tensor(self) -> torch.Tensor:
        t = self.step_count.clamp(max=self.total_steps).to(torch.float64)
        return 1.0 - (1.0 - self.alpha_min) * (t / self.total_steps) ** self.k  # UDAL Eq. 10

    @property
    def alpha(self) -> float:
        """alpha_t = 1 - (1 - alpha_min) (min(t, T) / T)^k."""
        return float(self._alpha_tensor())

    def target_distribution(self) -> torch.Tensor:
        """normalize(p_data^alpha_t) (UDAL Eq. 2), computed as softmax(alpha_t * log p_data)."""
        alpha = self._alpha_tensor().to(self.p_data.dtype)
        return torch.softmax(alpha * torch.log(self.p_data), dim=0)

    def adjustment(self) -> torch.Tensor:
        """The (K,) offset added to the logits: log(source / (target + 1e-9)).

        source is p_data (supervised) or p_hat (unsupervised) (UDAL Algorithm 1).
        """
        source = self.p_data if self.mode == "supervised" else self.p_hat.clamp_min(P_HAT_FLOOR)
        return torch.log(source / (self.target_distribution() + EPS))

    # -- p_hat --------------------------------------------------------------------------------
    @torch.no_grad()
    def update(self, probs: torch.Tensor) -> None:
        """EMA update of p_hat with the batch's mean predicted distribution (unsupervised mode).

        Under torch.distributed the per-class sum and the count are all-reduced first, so every
        rank holds the same p_hat. An empty batch (on all ranks) leaves p_hat unchanged.

        Args:
            probs: (B, K) predicted probabilities on weakly augmented unlabeled data, rows
                summing to 1 (all of them, before any confidence mask).
        """
        if self.mode != "unsupervised":
            raise ValueError("update(probs) feeds p_hat of the unsupervised branch; this loss has mode='supervised'")
        if not isinstance(probs, torch.Tensor) or probs.ndim != 2 or probs.shape[1] != self.num_classes:
            raise ValueError(f"probs must be a tensor of shape (B, {self.num_classes}), "
                             f"got {getattr(probs, 'shape', type(probs).__name__)}")
        if probs.numel() and not (bool(torch.isfinite(probs).all()) and bool((probs >= 0).all())):
            raise ValueError("probs must be finite, non-negative probabilities; got NaN / infinite or negative "
                             "entries (p_hat would be corrupted for the rest of the run)")
        probs = probs.detach().to(device=self.p_hat.device, dtype=self.p_hat.dtype)
        stats = all_reduce_sum(torch.cat([probs.sum(0), probs.new_tensor([probs.shape[0]])]))
        total, count = stats[:-1], stats[-1]
        updated = self.ema * self.p_hat + (1.0 - self.ema) * total / count.clamp_min(1.0)
        self.p_hat.copy_(torch.where(count > 0, updated, self.p_hat))

    # -- loss -----------------------------------------------------------------------------------
    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Args: logits (B, K) (strongly augmented in unsupervised mode), target (B,) labels or
        pseudo-labels. Returns: the reduced loss."""
        check_logits_and_target(logits, target, self.num_classes)
        adjusted = logits + self.adjustment().to(device=logits.device, dtype=logits.dtype)
        return reduce_loss(F.cross_entropy(adjusted, target, reduction="none"), self.reduction)

    def extra_repr(self) -> str:
        return (f"num_classes={self.num_classes}, mode={self.mode!r}, total_steps={self.total_steps}, "
                f"alpha_min={self.alpha_min}, k={self.k}, ema={self.ema}, reduction={self.reduction!r}")
