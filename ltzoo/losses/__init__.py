"""Losses, each an ``nn.Module`` called as ``loss(logits, target)`` with a ``reduction`` argument.

Exceptions by design: "mixed_singleton" is called as ``loss(logits, y_a, y_b, lam)`` and
"dot_regression" as ``loss(pooled_features, target)`` (it is built with the ETF head it trains).
"""
from ltzoo.losses.bem_state import BEMState
from ltzoo.losses.ce import CrossEntropyLoss
from ltzoo.losses.class_balanced import ClassBalancedLoss, EntropyClassBalancedLoss, effective_number
from ltzoo.losses.dlsa import ClusterBalanceLoss, DLSALoss, DLSAMLELoss, DLSAPurityLoss, MomentumEstimator  # noqa: F401
from ltzoo.losses.dot_regression import DotRegressionLoss
from ltzoo.losses.label_aware_smoothing import LabelAwareSmoothingLoss, label_aware_epsilons
from ltzoo.losses.logit_adjusted import BalancedSoftmaxLoss, LogitAdjustedLoss, log_prior, posthoc_adjust
from ltzoo.losses.mixed_singleton import MixedSingletonLoss, mixed_label_index, mixed_label_pair
from ltzoo.losses.udal import UDALLoss

__all__ = [
    "BEMState", "CrossEntropyLoss", "ClassBalancedLoss", "EntropyClassBalancedLoss", "effective_number",
    "DotRegressionLoss", "LabelAwareSmoothingLoss", "label_aware_epsilons", "BalancedSoftmaxLoss",
    "LogitAdjustedLoss", "log_prior", "posthoc_adjust",
    "MixedSingletonLoss", "mixed_label_index", "mixed_label_pair", "UDALLoss",
]
