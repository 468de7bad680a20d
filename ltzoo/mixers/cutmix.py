"""CutMix (Yun et al., "CutMix: Regularization Strategy to Train Strong Classifiers with
Localizable Features", ICCV 2019).

lam ~ Beta(alpha, alpha); a box of area ratio about 1 - lam at a uniform random centre
(clipped to the image) is cut from the partner and pasted at the same place in the target;
lam is then recomputed as 1 - (exact box area) / (H W).
"""
from __future__ import annotations

from typing import Any

import torch

from ltzoo.mixers.base import (
    MixedBatch, box_area_ratio, check_alpha, check_batch, check_generator, paste_boxes, random_boxes,
    resolve_partner, sample_beta,
)
from ltzoo.registry import MIXERS

__all__ = ["CutMix"]


@MIXERS.register("cutmix")
class CutMix:
    """CutMix with a partner from the batch or an explicit one.

    Args:
        alpha: Beta(alpha, alpha) concentration (> 0).
        per_sample: Draw a lam and a box per sample; by default one lam and one box serve
            the whole batch, as in the reference code.
        generator: Default ``torch.Generator`` for the permutation, lam and box centres.
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
        """Paste a box of each partner into ``x`` (B, C, H, W).

        Args:
            x: Target images.
            y: Target labels (B, ...), returned as ``y_a``.
            partner_x: Explicit partner images (same shape as ``x``); None permutes the batch.
            partner_y: Labels of ``partner_x`` (required with it).
            generator: Overrides the constructor's generator for this call.

        Returns:
            The mixed batch with ``boxes`` and ``lam = 1 - box area / (H W)``.
        """
        x, y = check_batch(x, y)
        gen = check_generator(generator) or self.generator
        px, py, index = resolve_partner(x, y, partner_x, partner_y, gen)
        n, height, width = x.shape[0], x.shape[-2], x.shape[-1]
        k = n if self.per_sample else 1
        lam = sample_beta(self.alpha, k, gen)
        boxes = random_boxes(lam, height, width, gen).expand(n, 4).contiguous().to(x.device)
        lam = 1.0 - box_area_ratio(boxes, height, width)  # Yun et al. Alg. A1: lam = 1 - box area / (W H)
        return MixedBatch(paste_boxes(x, px, boxes), y, py, lam, boxes=boxes, partner_index=index)

    def __repr__(self) -> str:
        return f"CutMix(alpha={self.alpha}, per_sample={self.per_sample})"
