"""Samplers: ``torch.utils.data.Sampler``s with ``set_epoch``, a seed and rank sharding, plus
BEM's class-balanced mix bank (an online store, not a DataLoader sampler)."""
from ltzoo.samplers.base import EpochSampler
from ltzoo.samplers.bmls import BalancedMixedLabelSampler
from ltzoo.samplers.class_aware import ClassAwareSampler, ClassBalancedSampler
from ltzoo.samplers.mix_bank import ClassBalancedMixBank
from ltzoo.samplers.paired import PairedDataset
from ltzoo.samplers.uniform import RandomSampler

__all__ = [
    "EpochSampler", "BalancedMixedLabelSampler", "ClassAwareSampler", "ClassBalancedSampler",
    "ClassBalancedMixBank", "PairedDataset", "RandomSampler",
]
