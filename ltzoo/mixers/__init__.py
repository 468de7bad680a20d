"""Mixers: ``mixer(x, y, **extras) -> MixedBatch(x, y_a, y_b, lam, ...)`` with per-sample ``lam``."""
from ltzoo.mixers.base import MixedBatch
from ltzoo.mixers.cammix import CamMix
from ltzoo.mixers.cutmix import CutMix
from ltzoo.mixers.mixup import Mixup
from ltzoo.mixers.saliencymix import SaliencyMix

__all__ = ["MixedBatch", "CamMix", "CutMix", "Mixup", "SaliencyMix"]
