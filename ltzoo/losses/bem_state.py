"""BEM's running estimates (Balanced and Entropy-based Mix, Sec. 4.2-4.3), in one shared object.

One :class:`BEMState` per run is shared by the class-balanced mix bank, which samples classes
from ``s_hat()`` (Eq. 7 over labeled + unlabeled data), and the "ecb" loss, which weights
pseudo-labelled samples by ``s_hat_unlabeled()`` (Eq. 7 from unlabeled statistics, Eq. 11).

A training iteration (BEM Algorithm 1, lines 5-9)::

    probs_x, probs_u = logits_x_weak.softmax(1), logits_u_weak.softmax(1)   # detached
    state.update(probs_x, y, probs_u)        # lines 6-9: E (Eq. 2-3), e (Eq. 5-6), tau_e (Eq. 10)
    bank.update(idx, labels, is_labeled)     # line 5 (the mix bank reads state.s_hat())
    partners, classes = bank.sample(B)       # line 11
    high, low = state.entropy_masks(probs_u) # Eq. 8-9: pick labeled / unlabeled partners
    ... CamMix, then ecb_loss(logits_strong, pseudo_labels) (reads s_hat^u, Eq. 11-12)

All estimates are buffers (``state_dict`` round-trips them; ``.to(device)`` moves them), and
``update`` never synchronises host and device. Outputs of ``s``, ``s_hat`` and
``s_hat_unlabeled`` are probability vectors summing to 1; the ECB loss rescales them.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from ltzoo.distributed import all_reduce_sum
from ltzoo.losses.effective_number import check_beta, effective_number
from ltzoo.validation import as_number, check_num_classes, class_counts_tensor

__all__ = ["BEMState"]

DELTAS = ("softmax", "convex")


def _check_unit(value: float, name: str, closed: bool = False) -> float:
    """A number in [0, 1) ([0, 1] if ``closed``)."""
    value = as_number(value)  # numpy / 0-d tensor scalars are numbers too
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0.0 <= value <= 1.0
    if not ok or (not closed and value == 1.0):
        raise ValueError(f"{name} must be a number in [0, 1{']' if closed else ')'}, got {value!r}")
    return float(value)


def _normalize_or_uniform(x: torch.Tensor) -> torch.Tensor:
    """x / sum(x), or the uniform vector when the sum is 0 (no host synchronisation)."""
    total = x.sum()
    return torch.where(total > 0, x / total.clamp_min(torch.finfo(x.dtype).tiny), torch.full_like(x, 1.0 / x.numel()))


class BEMState(nn.Module):
    """Running class statistics of BEM, shared by the mix bank ("s_hat") and the ECB loss.

    Args:
        labeled_counts: (K,) labeled class counts, all > 0 (E^x from them, BEM Eq. 2).
        num_unlabeled: M, the size of the unlabeled set (E^u from M * d^u).
        beta: Effective-number hyper-parameter in [0, 1) (paper: 0.999).
        alpha: Balance between effective number and entropy in Eq. 7, in [0, 1] (paper: 0.5;
            0.2 on ImageNet-127).
        ema: Default EMA weight for lambda_d, lambda_e and lambda_tau (paper: all 0.999).
        lambda_d, lambda_e, lambda_tau: Overrides for d^u (Eq. 3), e^x/e^u (Eq. 6), tau_e (Eq. 10).
        delta: The mapping delta of Eq. 7 (see :meth:`delta_map`): "softmax" over classes
            (Appendix B, the default) or "convex", FlexMatch's convex mapping (the main text).
            A softmax of a probability vector is close to uniform (its entries differ by less
            than 1: on CIFAR-10-LT N1=500/M1=4000 it turns a tail/head ratio of 31 into 1.4);
            ``temperature`` < 1 sharpens it.
        temperature: T of "softmax": delta(x) = softmax(x / T) (1 = the paper's Softmax).
            Only "softmax" uses it.
        warmup_steps: Calls to :meth:`update` before estimation starts (the paper: 5 epochs;
            the caller converts them to iterations). Until then only the step counter moves.
        num_classes: When given, the required length of ``labeled_counts``.

    Buffers: ``labeled_counts``, ``effective_labeled`` (E^x), ``unlabeled_dist`` (d^u, starts
    uniform), ``entropy_labeled`` / ``entropy_unlabeled`` (e^x, e^u) with ``*_seen`` flags,
    ``tau_e`` with ``tau_e_seen``, ``step_count``. Each class's entropy EMA, and tau_e, is
    initialised with its first observation (not 0, which would bias it low for ~1/(1-lambda)
    steps); a class absent from a batch keeps its value. Before its first observation tau_e is
    0, so every sample with non-zero entropy counts as "high" (mixed with labeled data).
    """

    def __init__(self, labeled_counts: Sequence[float] | torch.Tensor, num_unlabeled: int, beta: float = 0.999,
                 alpha: float = 0.5, ema: float = 0.999, lambda_d: float | None = None,
                 lambda_e: float | None = None, lambda_tau: float | None = None, delta: str = "softmax",
                 warmup_steps: int = 0, num_classes: int | None = None, temperature: float = 1.0) -> None:
        super().__init__()
        counts = class_counts_tensor(labeled_counts, num_classes, name="labeled_counts")
        self.num_classes = k = counts.numel()
        self.num_unlabeled = check_num_classes(num_unlabeled, "num_unlabeled")
        self.beta = check_beta(beta)
        self.alpha = _check_unit(alpha, "alpha", closed=True)
        ema = _check_unit(ema, "ema")
        self.lambda_d = ema if lambda_d is None else _check_unit(lambda_d, "lambda_d")
        self.lambda_e = ema if lambda_e is None else _check_unit(lambda_e, "lambda_e")
        self.lambda_tau = ema if lambda_tau is None else _check_unit(lambda_tau, "lambda_tau")
        if delta not in DELTAS:
            raise ValueError(f"delta must be one of {DELTAS}, got {delta!r}")
        self.delta = delta
        temperature = as_number(temperature)  # numpy / 0-d tensor scalars are numbers too
        ok = isinstance(temperature, (int, float)) and not isinstance(temperature, bool) \
            and math.isfinite(temperature) and temperature > 0
        if not ok:
            raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
        self.temperature = float(temperature)
        if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or warmup_steps < 0:
            raise ValueError(f"warmup_steps must be an integer >= 0 (iterations), got {warmup_steps!r}")
        self.warmup_steps = warmup_steps
        self.register_buffer("labeled_counts", counts)
        self.register_buffer("effective_labeled", effective_number(counts, self.beta))  # BEM Eq. 2: E^x
        self.register_buffer("unlabeled_dist", torch.full((k,), 1.0 / k))  # d^u
        self.register_buffer("entropy_labeled", torch.zeros(k))  # e^x
        self.register_buffer("entropy_labeled_seen", torch.zeros(k, dtype=torch.bool))
        self.register_buffer("entropy_unlabeled", torch.zeros(k))  # e^u
        self.register_buffer("entropy_unlabeled_seen", torch.zeros(k, dtype=torch.bool))
        self.register_buffer("tau_e", torch.zeros(()))
        self.register_buffer("tau_e_seen", torch.zeros((), dtype=torch.bool))
        self.register_buffer("step_count", torch.zeros((), dtype=torch.long))

    # -- estimation -----------------------------------------------------------------------------
    def _check_probs(self, probs: torch.Tensor, name: str) -> torch.Tensor:
        if not isinstance(probs, torch.Tensor) or probs.ndim != 2 or probs.shape[1] != self.num_classes:
            raise ValueError(f"{name} must be a tensor of shape (B, {self.num_classes}), "
                             f"got {getattr(probs, 'shape', type(probs).__name__)}")
        return probs.detach().to(device=self.unlabeled_dist.device, dtype=self.unlabeled_dist.dtype)

    def _check_labels(self, labels: torch.Tensor, batch: int, name: str) -> torch.Tensor:
        if not isinstance(labels, torch.Tensor) or labels.dtype.is_floating_point or labels.dtype == torch.bool:
            raise TypeError(f"{name} must be an integer tensor of class indices, got {labels!r:.80}")
        if labels.shape != (batch,):
            raise ValueError(f"{name} must have shape ({batch},) to match the probabilities, got {tuple(labels.shape)}")
        return labels.to(self.unlabeled_dist.device)

    @torch.no_grad()
    def update(self, labeled_probs: torch.Tensor, labels: torch.Tensor, unlabeled_probs: torch.Tensor,
               pseudo_labels: torch.Tensor | None = None) -> None:
        """One iteration's update (BEM Algorithm 1, lines 6-9); call once per iteration.

        Counts the step; after ``warmup_steps`` calls also updates d^u (Eq. 3), e^x and e^u
        (Eq. 5-6, classes present in the batch only) and tau_e (Eq. 10). Per-class counts and
        entropy sums are all-reduced (one ``all_reduce_sum``) first, so all ranks agree.

        Args:
            labeled_probs: (B_x, K) predictions on weakly augmented labeled data.
            labels: (B_x,) their ground-truth classes.
            unlabeled_probs: (B_u, K) predictions on weakly augmented unlabeled data.
            pseudo_labels: (B_u,) pseudo-labels q; default ``unlabeled_probs.argmax(1)``.
        """
        k = self.num_classes
        probs_x = self._check_probs(labeled_probs, "labeled_probs")
        probs_u = self._check_probs(unlabeled_probs, "unlabeled_probs")
        labels = self._check_labels(labels, probs_x.shape[0], "labels")
        if pseudo_labels is None:
            q = probs_u.argmax(1)
        else:
            q = self._check_labels(pseudo_labels, probs_u.shape[0], "pseudo_labels")
        ent_x, ent_u = self.sample_entropy(probs_x), self.sample_entropy(probs_u)
        zeros = torch.zeros(k, device=probs_u.device, dtype=probs_u.dtype)
        stats = all_reduce_sum(torch.cat([
            zeros.index_add(0, labels, torch.ones_like(ent_x)),  # N_c^t
            zeros.index_add(0, labels, ent_x),
            zeros.index_add(0, q, torch.ones_like(ent_u)),  # M_c^t
            zeros.index_add(0, q, ent_u),
            torch.stack([ent_u.sum(), ent_u.new_tensor(float(ent_u.numel()))]),
        ]))
        n_x, sum_x, n_u, sum_u = stats[:4 * k].view(4, k)
        sum_all, m = stats[-2], stats[-1]
        active = self.step_count >= self.warmup_steps
        has_u = active & (m > 0)
        d_t = n_u / m.clamp_min(1.0)  # class distribution of this batch's pseudo-labels
        d_new = self.lambda_d * self.unlabeled_dist + (1.0 - self.lambda_d) * d_t  # BEM Eq. 3
        self.unlabeled_dist.copy_(torch.where(has_u, d_new, self.unlabeled_dist))
        self._class_ema(self.entropy_labeled, self.entropy_labeled_seen, sum_x, n_x, active)  # Eq. 5-6
        self._class_ema(self.entropy_unlabeled, self.entropy_unlabeled_seen, sum_u, n_u, active)
        e_t = sum_all / m.clamp_min(1.0)
        tau_new = torch.where(self.tau_e_seen, self.lambda_tau * self.tau_e + (1.0 - self.lambda_tau) * e_t, e_t)
        self.tau_e.copy_(torch.where(has_u, tau_new, self.tau_e))  # BEM Eq. 10
        self.tau_e_seen |= has_u
        self.step_count += 1

    def _class_ema(self, value: torch.Tensor, seen: torch.Tensor, sums: torch.Tensor, counts: torch.Tensor,
                   active: torch.Tensor) -> None:
        present = active & (counts > 0)
        mean = sums / counts.clamp_min(1.0)  # e_c^{xt} / e_c^{ut}, BEM Eq. 5
        new = torch.where(seen, self.lambda_e * value + (1.0 - self.lambda_e) * mean, mean)  # Eq. 6
        value.copy_(torch.where(present, new, value))
        seen |= present

    # -- read-outs -------------------------------------------------------------------------------
    def effective_unlabeled(self) -> torch.Tensor:
        """E^u: effective number (Eq. 2) of N^u = M * d^u."""
        return effective_number(self.num_unlabeled * self.unlabeled_dist, self.beta)

    def delta_map(self, x: torch.Tensor) -> torch.Tensor:
        """The mapping delta of BEM Eq. 7 applied to a (K,) non-negative vector; returns a probability vector.

        * "softmax" (Appendix B): softmax(x / T) over classes (T = ``temperature``, 1 by default).
        * "convex" (Sec. 4.3, after FlexMatch): y = x / max(x) in [0, 1], then the convex map
          y / (2 - y), then normalised to sum 1. The max-normalisation puts the largest entry
          at 1, where the map is steepest; applied to the raw probabilities (all << 1) the map
          would be almost linear, i.e. almost the identity after normalisation.

        Args:
            x: (K,) values, e.g. alpha s + (1 - alpha) s'.

        Returns:
            (K,) probabilities summing to 1.
        """
        if self.delta == "softmax":
            return torch.softmax(x / self.temperature, dim=0)
        y = x / x.max().clamp_min(torch.finfo(x.dtype).tiny)  # x / max(x), in [0, 1]
        y = y / (2.0 - y)  # FlexMatch's convex mapping
        return _normalize_or_uniform(y)

    def s(self) -> torch.Tensor:
        """Quantity-based sampling probability s (BEM Eq. 4): F = 1/E, E = E^x + E^u, normalised."""
        f = 1.0 / (self.effective_labeled + self.effective_unlabeled())
        return f / f.sum()

    def s_hat(self) -> torch.Tensor:
        """Sampling function of the mix bank: delta(alpha s + (1 - alpha) s') (BEM Eq. 7).

        s' = normalize(e^x + e^u) (classes never observed contribute 0); before any entropy
        estimate, delta(s).
        """
        s = self.s()
        s_prime = _normalize_or_uniform(self.entropy_labeled + self.entropy_unlabeled)
        seen = self.entropy_labeled_seen.any() | self.entropy_unlabeled_seen.any()
        return self.delta_map(torch.where(seen, self.alpha * s + (1.0 - self.alpha) * s_prime, s))

    def s_hat_unlabeled(self) -> torch.Tensor:
        """ECB class weights s_hat^u: Eq. 7 from unlabeled statistics only (BEM Eq. 11).

        s^u = normalize(1 / E^u) with N^u = M * d^u floored at 1 sample (so 1/E^u stays
        finite for a class whose estimated share underflows), s'^u = normalize(e^u) (used once
        some class has an estimate). Uniform until the first update after warm-up, since d^u
        is still uniform then and no e^u exists.
        """
        f = 1.0 / effective_number((self.num_unlabeled * self.unlabeled_dist).clamp_min(1.0), self.beta)
        s_u = f / f.sum()
        s_prime = _normalize_or_uniform(self.entropy_unlabeled)
        mixed = torch.where(self.entropy_unlabeled_seen.any(), self.alpha * s_u + (1.0 - self.alpha) * s_prime, s_u)
        return self.delta_map(mixed)

    @staticmethod
    def sample_entropy(probs: torch.Tensor) -> torch.Tensor:
        """Per-sample entropy e_m = -sum_c p_c log p_c (BEM Eq. 8), 0 log 0 = 0; (B, K) -> (B,)."""
        return torch.special.entr(probs).sum(-1)

    def entropy_masks(self, unlabeled_probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(high, low) = (e_m > tau_e, e_m < tau_e) (BEM Eq. 9) with the current tau_e.

        Args:
            unlabeled_probs: (B, K) predictions on weakly augmented unlabeled data.

        Returns:
            Two (B,) bool masks on the device of ``unlabeled_probs``: high entropy (mixed with
            labeled data) and low entropy (mixed with unlabeled data). Ties fall in neither.
        """
        if not isinstance(unlabeled_probs, torch.Tensor) or unlabeled_probs.ndim != 2 \
                or unlabeled_probs.shape[1] != self.num_classes:
            raise ValueError(f"unlabeled_probs must be a tensor of shape (B, {self.num_classes}), "
                             f"got {getattr(unlabeled_probs, 'shape', type(unlabeled_probs).__name__)}")
        e = self.sample_entropy(unlabeled_probs.detach())
        tau = self.tau_e.to(device=e.device, dtype=e.dtype)
        return e > tau, e < tau

    def extra_repr(self) -> str:
        return (f"num_classes={self.num_classes}, num_unlabeled={self.num_unlabeled}, beta={self.beta}, "
                f"alpha={self.alpha}, lambda_d={self.lambda_d}, lambda_e={self.lambda_e}, "
                f"lambda_tau={self.lambda_tau}, delta={self.delta!r}, temperature={self.temperature}, "
                f"warmup_steps={self.warmup_steps}")
