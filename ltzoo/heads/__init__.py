"""Classifier heads: pooled features (B, D) -> singleton logits (B, K).

Every head is built as ``head(in_features, num_classes, **kwargs)`` and exposes
``cam_weights()``: its (K, D) per-class weight vectors in feature space, or None when the
head is not linear (class activation maps need them).
"""
from ltzoo.heads.etf import ETFHead, MSHead, MSWETFHead, WETFHead, simplex_etf
from ltzoo.heads.flow import DLSAHead, FlowFilter  # noqa: F401  (registers "dlsa")
from ltzoo.heads.linear import LinearHead

__all__ = ["LinearHead", "ETFHead", "WETFHead", "MSHead", "MSWETFHead", "simplex_etf"]
