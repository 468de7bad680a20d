"""Long-tailed classification metrics: per-class recall, many / medium / few, H-mean, G-mean, lowest.

* :mod:`ltzoo.metrics.recall`: confusion matrix, per-class recall, harmonic / geometric means
  (recalls below 1e-3 raised to 1e-3 first, the BTM convention).
* :mod:`ltzoo.metrics.groups`: many / medium / few groups and the conventional split each
  dataset carries (CIFAR-LT by class index, ImageNet-style sets by > 100 / < 20 training images).
* :mod:`ltzoo.metrics.summary`: :func:`summarize` (predictions) and :func:`evaluate` (model + loader).
"""
from ltzoo.metrics.groups import (
    CIFAR10_SPLIT,
    CIFAR100_SPLIT,
    GROUP_NAMES,
    THRESHOLD_SPLIT,
    check_group_split,
    class_groups,
    conventional_split,
    describe_split,
    split_of,
)
from ltzoo.metrics.recall import confusion_matrix, geometric_mean, harmonic_mean, per_class_recall
from ltzoo.metrics.summary import evaluate, summarize

__all__ = [
    "GROUP_NAMES", "THRESHOLD_SPLIT", "CIFAR10_SPLIT", "CIFAR100_SPLIT", "confusion_matrix", "per_class_recall",
    "harmonic_mean", "geometric_mean", "class_groups", "check_group_split", "conventional_split", "split_of",
    "describe_split", "summarize", "evaluate",
]
