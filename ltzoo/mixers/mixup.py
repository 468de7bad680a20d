"""Mixup (Zhang et al., "mixup: Beyond Empirical Risk Minimization", ICLR 2018).

x' = lam * x + (1 - lam) * x_partner with lam ~ Beta(alpha, alpha); the loss weights the
target label by lam and the partner's by 1 - lam.
"""
from __future__ import annotations

from typing import Any

import torch

from ltzoo.mixers.base import MixedBatch, check_alpha, check_batch, check_generator, resolve_partner, sample_beta
from ltzoo.registry import MIXERS

__all__ = ["Mixup"]


@MIXERS.register("mixup")
class Mixup:
    """Mixup of each image with a partner from the batch or an explicit one.

    Args:
        alpha: Beta(alpha, alpha) concentration (> 0); 1.0 draws lam uniformly.
        per_sample: Draw one lam per sample instead of one for the whole batch.
        generator: Default ``torch.Generator`` for the permutation and lam.
    """

    def __init__(self, alpha: float = 1.0, per_sample: bool = False, generator: torch.Generator | None = None) -> None:
        self.alpha = check_alpha(alpha)
        self.per_sample = bool(per_sample)
        self.generator = check_generator(generator)

    def __call__(
        self,
        x: torch.Tensor,
        y: Any,
        partner_x: torch.Tensor | None = None,
        partner_y: Any = None,
        generator: torch.Generator | None = None,
    ) -> MixedBatch:
        """Mix ``x`` (B, C, H, W) with partners.

        Args:
            x: Target images.
            y: Target labels (B, ...), returned as ``y_a``.
            partner_x: Explicit partner images (same shape as ``x``); None permutes the batch.
            partner_y: Labels of ``partner_x`` (required with it).
            generator: Overrides the constructor's generator for this call.

        Returns:
            The mixed batch; ``lam`` (B,) is the weight of ``y_a``.
        """
        x, y = check_batch(x, y)
        gen = check_generator(generator) or self.generator
        px, py, index = resolve_partner(x, y, partner_x, partner_y, gen)
        n = x.shape[0]
        lam = sample_beta(self.alpha, n if self.per_sample else 1, gen, device=x.device).expand(n).contiguous()
        w = lam.to(x.dtype).view(n, 1, 1, 1)
        mixed = w * x + (1.0 - w) * px  # Zhang et al. Eq. (1): x~ = lam x_i + (1 - lam) x_j
        return MixedBatch(mixed, y, py, lam, partner_index=index)

    def __repr__(self) -> str:
        return f"Mixup(alpha={self.alpha}, per_sample={self.per_sample})"
