"""DLSA (Xu et al., "Constructing Balance from Imbalance for Long-tailed Image Recognition", ECCV 2022).

Head "dlsa" on pooled features of a trained backbone. Each of ``depth`` levels holds a flow
filter (a masked autoregressive flow, ltzoo/heads/made.py, into a Gaussian mixture with M fixed
random means, identity covariance, uniform weights), a log-likelihood threshold and a
cluster-aided classifier. By default the cluster-aided classifier takes "XP", Linear(x) +
Linear([x, P]) with P the training class histogram of the sample's most likely cluster, and the
regular classifier for the rest takes "X", Linear(x). That is what the authors' released entry
point computes: their configs name the inputs "XZP" / "XZ", but it passes the features themselves
as "Z" (``divide_and_conquer(features, features, ...)``). ``aided_inputs="XZP"`` and
``regular_inputs="XZ"`` use the flow latent z instead: Linear(x) + Linear([z, P]) and
Linear(x) + Linear(z), z the last level's latent for the rest (worse on digits-LT, README).
A sample whose likelihood reaches a level's threshold (set so that
``filter_ratio`` of the training samples reaching that level pass) and, with the optional
cluster filter, whose cluster is well clustered (training purity >= 0.7 and size >= 10, the
authors' base-config values) is classified there; the rest go to the next level, and after the
last to the regular classifier. Thresholds, means, histograms and the cluster mask are buffers,
so a saved head reloads identically. An unfitted head (thresholds +inf) routes every sample to
the regular classifier. Training: ltzoo/recipes/dlsa.py.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from ltzoo.heads.made import MAF
from ltzoo.registry import HEADS
from ltzoo.validation import as_number, check_num_classes

__all__ = ["FlowOutput", "FlowFilter", "ClusterAidedClassifier", "RegularClassifier", "DLSALevel", "DLSAHead",
           "default_sigma", "AIDED_INPUTS", "REGULAR_INPUTS"]

AIDED_INPUTS = ("XZP", "XP")
REGULAR_INPUTS = ("XZ", "X")


def default_sigma(dim: int) -> float:
    """sigma = sqrt(3 / (2 D)): E||mu_p - mu_q||^2 = 2 D sigma^2 = 3 (supplement Sec. 3, Eq. 5)."""
    return math.sqrt(3.0 / (2.0 * check_num_classes(dim, "in_features")))


def _check_features(features: torch.Tensor, in_features: int) -> None:
    if not isinstance(features, torch.Tensor):
        raise TypeError(f"features must be a torch.Tensor, got {type(features).__name__}")
    if features.ndim != 2 or features.shape[1] != in_features or not features.is_floating_point():
        raise ValueError(f"features must be a floating (B, {in_features}) tensor, got "
                         f"{features.dtype} {tuple(features.shape)}")


class FlowOutput(NamedTuple):
    """What a :class:`FlowFilter` returns for a batch of B samples (M mixture components)."""

    z: torch.Tensor  # (B, D) latent codes
    log_det: torch.Tensor  # (B,) log|det dz/dx|
    cluster_logits: torch.Tensor  # (B, M) log p(x, h=k); softmax over k = cluster posterior
    log_likelihood: torch.Tensor  # (B,) log p(x) = logsumexp_k log p(x, h=k)


class FlowFilter(nn.Module):
    """MAF into a Gaussian mixture: means N(0, sigma^2 I) fixed (a buffer), covariance I, weights 1/M.

    Args:
        in_features: Feature dimension D.
        num_components: Number of mixture components M.
        sigma: Standard deviation of the means; None -> sqrt(3 / (2 D)) (supplement Sec. 3).
        flow_blocks: Number of MADE (+ BatchNorm) blocks.
        hidden: Hidden units of each MADE; None -> D.
        seed: Seed of the means and of the flow's initial weights.
    """

    def __init__(self, in_features: int, num_components: int, sigma: float | None = None,
                 flow_blocks: int = 2, hidden: int | None = None, seed: int = 0) -> None:
        super().__init__()
        self.in_features = check_num_classes(in_features, "in_features")
        self.num_components = check_num_classes(num_components, "num_components")
        sigma = default_sigma(self.in_features) if sigma is None else sigma
        sigma = as_number(sigma)  # numpy / 0-d tensor scalars are numbers too
        if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not 0 < sigma < math.inf:
            raise ValueError(f"sigma must be a finite number > 0 or None, got {sigma!r}")
        self.sigma = float(sigma)
        hidden = self.in_features if hidden is None else check_num_classes(hidden, "hidden")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            self.flow = MAF(self.in_features, hidden, flow_blocks)
            self.register_buffer("means", torch.randn(self.num_components, self.in_features) * self.sigma)

    def forward(self, x: torch.Tensor) -> FlowOutput:
        """Args: x (B, D) features. Returns: a :class:`FlowOutput`."""
        _check_features(x, self.in_features)
        z, log_det = self.flow(x)
        # ||z - mu_k||^2 without a (B, M, D) tensor
        sq = (z * z).sum(1, keepdim=True) - 2.0 * z @ self.means.T + (self.means * self.means).sum(1)
        const = -0.5 * self.in_features * math.log(2 * math.pi) - math.log(self.num_components)
        cluster_logits = -0.5 * sq + const + log_det[:, None]
        return FlowOutput(z, log_det, cluster_logits, torch.logsumexp(cluster_logits, dim=1))

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        """Features x from latent codes z (eval-mode map)."""
        return self.flow.inverse(z)


class ClusterAidedClassifier(nn.Module):
    """logits = fc(x) + fc_aided([x, P]) ("XP", what the authors' code computes) or fc(x) + fc_aided([z, P]) ("XZP").

    P (B, K) is the class histogram of each sample's cluster, z (B, D) its flow latent.

    Args:
        in_features: Feature dimension D.
        num_classes: Number of classes K.
        inputs: "XP" or "XZP".
    """

    def __init__(self, in_features: int, num_classes: int, inputs: str = "XP") -> None:
        super().__init__()
        if inputs not in AIDED_INPUTS:
            raise ValueError(f"aided_inputs must be one of {AIDED_INPUTS}, got {inputs!r}")
        self.inputs = inputs
        self.fc = nn.Linear(in_features, num_classes)
        self.fc_aided = nn.Linear(in_features + num_classes, num_classes)

    def forward(self, x: torch.Tensor, hist: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """Args: x (B, D) features, hist (B, K) cluster histograms, z (B, D) latents ("XZP" only).
        Returns: (B, K) logits."""
        if self.inputs == "XZP" and z is None:
            raise ValueError("z must be given for aided_inputs='XZP'")
        second = z if self.inputs == "XZP" else x
        return self.fc(x) + self.fc_aided(torch.cat([second.to(x.dtype), hist.to(x.dtype)], dim=1))


class RegularClassifier(nn.Module):
    """logits = fc(x) ("X", what the authors' code computes) or fc(x) + fc_z(z) ("XZ"), z the last level's latent.

    Args:
        in_features: Feature dimension D.
        num_classes: Number of classes K.
        inputs: "X" or "XZ".
    """

    def __init__(self, in_features: int, num_classes: int, inputs: str = "X") -> None:
        super().__init__()
        if inputs not in REGULAR_INPUTS:
            raise ValueError(f"regular_inputs must be one of {REGULAR_INPUTS}, got {inputs!r}")
        self.inputs = inputs
        self.fc = nn.Linear(in_features, num_classes)
        self.fc_z = nn.Linear(in_features, num_classes) if inputs == "XZ" else None

    def forward(self, x: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """Args: x (B, D) features, z (B, D) latents ("XZ" only). Returns: (B, K) logits."""
        if self.fc_z is None:
            return self.fc(x)
        if z is None:
            raise ValueError("z must be given for regular_inputs='XZ'")
        return self.fc(x) + self.fc_z(z.to(x.dtype))


class DLSALevel(nn.Module):
    """One depth level: flow filter, likelihood threshold, cluster mask and cluster-aided classifier."""

    def __init__(self, in_features: int, num_classes: int, num_components: int, sigma: float | None,
                 flow_blocks: int, hidden: int | None, seed: int, aided_inputs: str = "XP") -> None:
        super().__init__()
        self.filter = FlowFilter(in_features, num_components, sigma, flow_blocks, hidden, seed)
        self.classifier = ClusterAidedClassifier(in_features, num_classes, aided_inputs)
        self.register_buffer("threshold", torch.tensor(math.inf))  # +inf: nothing passes (unfitted)
        self.register_buffer("cluster_hist", torch.zeros(num_components, num_classes))  # (M, K), rows sum to 1
        self.register_buffer("cluster_ok", torch.ones(num_components, dtype=torch.bool))  # optional cluster filter

    def clusters(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Args: x (B, D). Returns: log-likelihood (B,) and most likely cluster (B,) under the filter's
        eval-mode map (the one the threshold and histograms were set with), whatever the module mode."""
        ll, c, _ = self.encode(x)
        return ll, c

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Log-likelihood (B,), most likely cluster (B,) and latent z (B, D) under the eval-mode map."""
        was_training = self.filter.training
        self.filter.eval()
        try:
            out = self.filter(x)
        finally:
            self.filter.train(was_training)
        return out.log_likelihood, out.cluster_logits.argmax(dim=1), out.z

    def passes(self, ll: torch.Tensor, cluster: torch.Tensor) -> torch.Tensor:
        """(B,) bool: likelihood at least the threshold and the cluster kept by the cluster filter."""
        return (ll >= self.threshold) & self.cluster_ok[cluster]

    def classify(self, x: torch.Tensor, cluster: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """Cluster-aided logits (B, K) of samples x (B, D) with latents z in clusters ``cluster`` (B,)."""
        return self.classifier(x, self.cluster_hist[cluster], z)


@HEADS.register("dlsa")
class DLSAHead(nn.Module):
    """DLSA flow-filter head: routes each sample through ``depth`` filter levels (see module doc).

    Args:
        in_features: Pooled feature dimension D.
        num_classes: Number of classes K.
        num_components: Mixture components M per filter; None -> min(500, 4 K) (500 as the
            authors used for ImageNet-LT and Places-LT).
        depth: Number of filter levels (>= 1).
        filter_ratio: Fraction of the training samples reaching a level that it classifies
            (the most likely ones), in (0, 1).
        sigma: Std of the mixture means; None -> sqrt(3 / (2 D)) (supplement Sec. 3).
        flow_blocks: MADE + BatchNorm blocks per flow.
        hidden: Hidden units of each MADE; None -> D.
        seed: Seed of level 0 (level d uses seed + d).
        aided_inputs: Cluster-aided classifier inputs, "XP" (default: what the authors' released code
            computes, and better on digits-LT, README) or "XZP" (z the flow latent).
        regular_inputs: Regular (last-level) classifier inputs, "X" (default, as "XP") or "XZ".
    """

    default_loss = "dlsa"

    def __init__(self, in_features: int, num_classes: int, num_components: int | None = None, depth: int = 1,
                 filter_ratio: float = 0.3, sigma: float | None = None, flow_blocks: int = 2,
                 hidden: int | None = None, seed: int = 0, aided_inputs: str = "XP",
                 regular_inputs: str = "X") -> None:
        super().__init__()
        if aided_inputs not in AIDED_INPUTS:
            raise ValueError(f"aided_inputs must be one of {AIDED_INPUTS}, got {aided_inputs!r}")
        if regular_inputs not in REGULAR_INPUTS:
            raise ValueError(f"regular_inputs must be one of {REGULAR_INPUTS}, got {regular_inputs!r}")
        self.aided_inputs, self.regular_inputs = aided_inputs, regular_inputs
        self.in_features = check_num_classes(in_features, "in_features")
        self.num_classes = check_num_classes(num_classes)
        self.num_components = (min(500, 4 * self.num_classes) if num_components is None
                               else check_num_classes(num_components, "num_components"))
        self.depth = check_num_classes(depth, "depth")
        filter_ratio = as_number(filter_ratio)  # numpy / 0-d tensor scalars are numbers too
        if isinstance(filter_ratio, bool) or not isinstance(filter_ratio, (int, float)) or not 0 < filter_ratio < 1:
            raise ValueError(f"filter_ratio must be a number in (0, 1), got {filter_ratio!r}")
        self.filter_ratio = float(filter_ratio)
        with torch.random.fork_rng(devices=[]):  # same seed, same head
            torch.manual_seed(int(seed))
            self.levels = nn.ModuleList(
                DLSALevel(self.in_features, self.num_classes, self.num_components, sigma, flow_blocks, hidden, seed + d,
                          aided_inputs)
                for d in range(self.depth))
            self.classifier = RegularClassifier(self.in_features, self.num_classes, regular_inputs)  # for the rest

    def route(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Where each sample is classified.

        Args:
            features: (B, D) pooled features.

        Returns:
            level (B,) in [0, depth] (depth = the regular classifier) and the sample's most likely
            cluster at that level (B,) (-1 for the regular classifier).
        """
        level, cluster, _ = self.route_with_latents(features)
        return level, cluster

    def route_with_latents(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """:meth:`route` plus each sample's latent z (B, D): that of the level classifying it, and for the
        regular classifier that of the last level (its "XZ" input)."""
        _check_features(features, self.in_features)
        n = features.shape[0]
        level = torch.full((n,), self.depth, dtype=torch.long, device=features.device)
        cluster = torch.full((n,), -1, dtype=torch.long, device=features.device)
        z = torch.zeros_like(features)
        for d, lvl in enumerate(self.levels):
            open_ = level == self.depth
            if not bool(open_.any()):
                break
            ll, c, zd = lvl.encode(features[open_])
            take = lvl.passes(ll, c)
            idx = open_.nonzero().squeeze(1)
            z[idx] = zd.to(z.dtype)  # the rest keep the deepest latent they reached
            level[idx[take]], cluster[idx[take]] = d, c[take]
        return level, cluster, z

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Singleton logits (B, K), each sample scored by the classifier it is routed to."""
        level, cluster, z = self.route_with_latents(features)
        logits = features.new_zeros(features.shape[0], self.num_classes)
        for d in range(self.depth + 1):
            m = level == d
            if bool(m.any()):
                out = (self.classifier(features[m], z[m]) if d == self.depth
                       else self.levels[d].classify(features[m], cluster[m], z[m]))
                logits[m] = out.to(logits.dtype)
        return logits

    def cam_weights(self) -> None:
        """None: the routed head has no single linear map per class."""
        return None

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, num_classes={self.num_classes}, num_components="
                f"{self.num_components}, depth={self.depth}, filter_ratio={self.filter_ratio}, "
                f"aided_inputs={self.aided_inputs!r}, regular_inputs={self.regular_inputs!r}")
