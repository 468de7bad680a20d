"""CutMix (Yun et al., "CutMix: Regularization Strategy to Train Strong Classifiers with
Localizable Features", ICCV 2019).

lam ~ Beta(alpha, alpha); a box of area ratio about 1 - lam at a uniform random centre
(clipped to the image) is cut from the partner and pasted at the same place in the target;
lam is then recomputed as 1 - (exact box area) / (H W).
"""
from __future__ import annotations

from ltzoo.mixers.base import PairMixer, box_area_ratio, paste_boxes, random_boxes
from ltzoo.registry import MIXERS

__all__ = ["CutMix"]


@MIXERS.register("cutmix")
class CutMix(PairMixer):
    """CutMix with a partner from the batch or an explicit one (see :class:`PairMixer`).

    By default one lam and one box serve the whole batch, as in the reference code;
    ``per_sample=True`` draws a lam and a box per sample.
    """

    def mix(self, x, partner_x, lam, generator):
        n, height, width = x.shape[0], x.shape[-2], x.shape[-1]
        k = n if self.per_sample else 1
        boxes = random_boxes(lam[:k].cpu(), height, width, generator).expand(n, 4).contiguous().to(x.device)
        lam = 1.0 - box_area_ratio(boxes, height, width)  # Yun et al. Alg. A1: lam = 1 - box area / (W H)
        return paste_boxes(x, partner_x, boxes), lam, boxes
