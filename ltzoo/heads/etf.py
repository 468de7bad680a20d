"""Fixed simplex-ETF heads: "etf" (ETF + dot-regression), "wetf", "ms" and "ms_wetf".

- "etf" (Yang et al., "Inducing Neural Collapse in Imbalanced Learning", NeurIPS 2022): pooled
  features pass BatchNorm1d then L2 normalisation; logits = h @ M with M a fixed simplex
  equiangular tight frame (a buffer: saved with ``state_dict``, never trained). Trained with
  the "dot_regression" loss, which reuses :meth:`ETFHead.normalize_features`.
- "wetf" (BMLS paper, Appendix F): logits = h @ (M * s), s a learnable per-class scale (init 1),
  no global scale factor; on the raw pooled features by default, or BatchNorm'd + L2-normalised
  ones with ``feature_norm=True`` (the appendix does not say which).
- "ms" / "ms_wetf": the FC and WETF heads trained with the "mixed_singleton" loss. The
  mixed-label class vectors lam * w_a + (1 - lam) * w_b (BMLS Eq. 3) are never built here:
  their logit is lam * s_a + (1 - lam) * s_b, which the loss forms from the singleton logits.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ltzoo.heads.linear import LinearHead
from ltzoo.registry import HEADS
from ltzoo.validation import check_num_classes

__all__ = ["simplex_etf", "ETFHead", "WETFHead", "MSHead", "MSWETFHead"]


def _check_etf_dims(feature_dim: int, num_classes: int, dim_name: str) -> tuple[int, int]:
    """Validate (D, K) for a simplex ETF: K >= 2 and D >= K; the error names wide-enough backbones."""
    feature_dim = check_num_classes(feature_dim, dim_name)
    num_classes = check_num_classes(num_classes)
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2 for a simplex ETF, got {num_classes}")
    if feature_dim < num_classes:
        from ltzoo.backbones.base import feature_dims  # lazy: avoids importing every backbone here

        wide = sorted((d, n) for n, d in feature_dims().items() if d >= num_classes)
        hint = (
            "registered backbones with enough features: " + ", ".join(f"{n} ({d}-d)" for d, n in wide)
            if wide else "no registered backbone has that many features"
        )
        raise ValueError(
            f"an ETF needs feature dim >= num_classes, got {dim_name}={feature_dim} < "
            f"num_classes={num_classes}; {hint}"
        )
    return feature_dim, num_classes


def simplex_etf(feature_dim: int, num_classes: int, seed: int = 0) -> torch.Tensor:
    """A (D, K) simplex equiangular tight frame with unit-norm columns.

    M = sqrt(K / (K - 1)) * P (I - 11^T / K), P a D x K matrix with orthonormal columns from the
    QR decomposition of a seeded Gaussian matrix. Columns have unit norm and pairwise cosine
    -1 / (K - 1).

    Args:
        feature_dim: Feature dimension D (must be >= num_classes).
        num_classes: Number of classes K (must be >= 2).
        seed: Seed of the Gaussian matrix (same seed, same M).

    Returns:
        The (D, K) ETF in the default float dtype.
    """
    d, k = _check_etf_dims(feature_dim, num_classes, "feature_dim")
    gen = torch.Generator().manual_seed(int(seed))
    p, _ = torch.linalg.qr(torch.randn(d, k, generator=gen, dtype=torch.float64))  # (D, K) orthonormal
    centre = torch.eye(k, dtype=torch.float64) - torch.full((k, k), 1.0 / k, dtype=torch.float64)
    m = math.sqrt(k / (k - 1)) * p @ centre
    return m.to(torch.get_default_dtype())


def _check_features(features: torch.Tensor, in_features: int) -> None:
    if not isinstance(features, torch.Tensor):
        raise TypeError(f"features must be a torch.Tensor, got {type(features).__name__}")
    if features.ndim != 2 or features.shape[1] != in_features:
        raise ValueError(
            f"features must have shape (B, {in_features}) (pooled features), got {tuple(features.shape)}"
        )


def batch_norm_1d(bn: nn.BatchNorm1d, features: torch.Tensor) -> torch.Tensor:
    """``bn(features)``, except that a training batch of ONE sample is normalised with the running
    statistics (and does not update them): its batch variance is undefined and torch would raise
    (a last batch of 1 with drop_last off, or batch_size 1).

    Args:
        bn: The BatchNorm1d layer.
        features: (B, D) features.

    Returns:
        (B, D) normalised features.
    """
    if bn.training and features.shape[0] == 1:
        return F.batch_norm(features, bn.running_mean, bn.running_var, bn.weight, bn.bias, training=False,
                            momentum=0.0, eps=bn.eps)
    return bn(features)


@HEADS.register("etf")
class ETFHead(nn.Module):
    """Fixed simplex-ETF classifier on BatchNorm'd, L2-normalised features (Yang et al. 2022).

    Args:
        in_features: Pooled feature dimension D (>= num_classes).
        num_classes: Number of classes K (>= 2).
        seed: Seed of the ETF (the ETF itself is saved in the state dict).
    """

    default_loss = "dot_regression"

    def __init__(self, in_features: int, num_classes: int, seed: int = 0) -> None:
        super().__init__()
        self.in_features, self.num_classes = _check_etf_dims(in_features, num_classes, "in_features")
        self.bn = nn.BatchNorm1d(self.in_features)
        self.register_buffer("etf", simplex_etf(self.in_features, self.num_classes, seed))  # (D, K), fixed

    def normalize_features(self, features: torch.Tensor) -> torch.Tensor:
        """BatchNorm1d then L2 normalisation of pooled features (B, D) -> (B, D)."""
        _check_features(features, self.in_features)
        return F.normalize(batch_norm_1d(self.bn, features), p=2.0, dim=1, eps=1e-8)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Singleton logits h @ M, (B, K)."""
        return self.normalize_features(features) @ self.etf

    def cam_weights(self) -> torch.Tensor:
        """(K, D) class vectors in pooled-feature space, through the BN's eval-mode affine map.

        In eval mode BN(x) = a * x + c with a = weight / sqrt(running_var + eps), so
        logit_k = (x . (a * m_k) + c . m_k) / ||BN(x)||: the returned rows are a * m_k. The
        dropped parts are a per-class constant c . m_k and a positive per-sample scale
        1 / ||BN(x)||, both of which a min-max-normalised class activation map ignores.
        (In training mode the BN uses batch statistics; these weights always use running ones.)
        """
        bn = self.bn
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        return self.etf.T * scale


@HEADS.register("wetf")
class WETFHead(nn.Module):
    """Weighted fixed ETF (BMLS Appendix F): logits = h @ (M * s), s a learnable (K,) scale.

    No global scale factor: s (initialised to ones) sets each class vector's length. Appendix F
    does not say whether the features still pass the ETF head's BatchNorm + L2 normalisation:
    ``feature_norm=False`` (the default, the literal reading) uses the pooled features as they
    come; ``feature_norm=True`` normalises them as the "etf" head does. On CIFAR-10-LT (BMLS +
    MS-WETF, 30 epochs, 2 seeds) the two are within the seed spread (benchmarks/results/
    wetf_feature_norm.json), so the literal reading stays the default.

    Args:
        in_features: Pooled feature dimension D (>= num_classes).
        num_classes: Number of classes K (>= 2).
        seed: Seed of the ETF (the ETF itself is saved in the state dict).
        feature_norm: BatchNorm1d + L2 normalisation of the features before the ETF.
    """

    default_loss = "ce"

    def __init__(self, in_features: int, num_classes: int, seed: int = 0, feature_norm: bool = False) -> None:
        super().__init__()
        self.in_features, self.num_classes = _check_etf_dims(in_features, num_classes, "in_features")
        if not isinstance(feature_norm, bool):
            raise TypeError(f"feature_norm must be a bool, got {type(feature_norm).__name__}")
        self.feature_norm = feature_norm
        self.bn = nn.BatchNorm1d(self.in_features) if feature_norm else None
        self.register_buffer("etf", simplex_etf(self.in_features, self.num_classes, seed))  # (D, K), fixed
        self.scale = nn.Parameter(torch.ones(self.num_classes))

    def weight_matrix(self) -> torch.Tensor:
        """The (D, K) classifier M * s (BMLS Appendix F: W_WETF = s . W_ETF)."""
        return self.etf * self.scale

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Singleton logits h @ (M * s), (B, K); h normalised first with ``feature_norm``."""
        _check_features(features, self.in_features)
        if self.bn is not None:
            features = F.normalize(batch_norm_1d(self.bn, features), p=2.0, dim=1, eps=1e-8)
        return features @ self.weight_matrix()

    def cam_weights(self) -> torch.Tensor:
        """The (K, D) class vectors (M * s)^T (through the BN's eval-mode scale with ``feature_norm``,
        as :meth:`ETFHead.cam_weights`)."""
        weights = self.weight_matrix().T
        if self.bn is not None:
            weights = weights * (self.bn.weight / torch.sqrt(self.bn.running_var + self.bn.eps))
        return weights

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, num_classes={self.num_classes}, feature_norm={self.feature_norm}"


@HEADS.register("ms")
class MSHead(LinearHead):
    """Mixed-singleton classifier on an FC layer (BMLS Sec. 4.2): the "fc" forward, singleton
    logits (B, K), trained with the "mixed_singleton" loss, which forms each mixed label's
    logit lam * s_a + (1 - lam) * s_b (BMLS Eq. 3-4) in O(K) per sample.

    Args:
        in_features: Pooled feature dimension D.
        num_classes: Number of classes K.
        bias: Whether to learn a per-class bias.
    """

    default_loss = "mixed_singleton"


@HEADS.register("ms_wetf")
class MSWETFHead(WETFHead):
    """Mixed-singleton weighted ETF (BMLS Appendix F, "MS-WETF"): the "wetf" forward, trained
    with the "mixed_singleton" loss.

    Args:
        in_features: Pooled feature dimension D (>= num_classes).
        num_classes: Number of classes K (>= 2).
        seed: Seed of the ETF.
        feature_norm: BatchNorm1d + L2 normalisation of the features first (see :class:`WETFHead`).
    """

    default_loss = "mixed_singleton"
