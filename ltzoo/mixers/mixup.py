"""Mixup (Zhang et al., "mixup: Beyond Empirical Risk Minimization", ICLR 2018).

x' = lam * x + (1 - lam) * x_partner with lam ~ Beta(alpha, alpha); the loss weights the
target label by lam and the partner's by 1 - lam.
"""
from __future__ import annotations

from ltzoo.mixers.base import PairMixer
from ltzoo.registry import MIXERS

__all__ = ["Mixup"]


@MIXERS.register("mixup")
class Mixup(PairMixer):
    """Mixup of each image with a partner from the batch or an explicit one (see :class:`PairMixer`)."""

    def mix(self, x, partner_x, lam, generator):
        w = lam.to(x.dtype).view(-1, 1, 1, 1)
        mixed = w * x + (1.0 - w) * partner_x  # Zhang et al. Eq. (1): x~ = lam x_i + (1 - lam) x_j
        return mixed, lam, None
