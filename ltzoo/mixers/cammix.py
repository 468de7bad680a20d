"""CamMix (Zheng et al., "BEM: Balanced and Entropy-based Mix for Long-Tailed Semi-Supervised
Learning", CVPR 2024, Sec. 4.1 and Algorithm 2).

SaliencyMix with the saliency map replaced by the class activation map of the partner image
for its (pseudo-)label: threshold the normalised CAM at tau_c, take the bounding box of the
largest connected region, fall back to a random CutMix box when that region covers less than
tau_a of the image, and paste the partner's box into the target at the same place.

Cost: Algorithm 2 line 2 already forwards the partner to get its pseudo-label. Given that
forward's features (``partner_features``) and pseudo-labels (``partner_y``) and a head with
``cam_weights()``, CamMix calls no part of the model (CAM is a weighted channel sum); given
only the features, it reruns the pooling + head for the argmax. Without features it runs one
``forward_features`` under ``no_grad``; for a head without ``cam_weights()`` (or an explicit
``target_layer``) one Grad-CAM forward + backward that leaves no parameter gradients behind.
Pass the bare model, not a DistributedDataParallel wrapper (use its ``.module``).
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ltzoo.mixers.base import (
    MixedBatch,
    box_area_ratio,
    check_alpha,
    check_batch,
    check_generator,
    paste_boxes,
    random_boxes,
    resolve_partner,
    sample_beta,
)
from ltzoo.mixers.cam import (
    as_class_index,
    class_activation_map,
    eval_mode,
    grad_cam,
    head_cam_weights,
    largest_region_boxes,
    resolve_layer,
)
from ltzoo.registry import MIXERS
from ltzoo.validation import as_number

__all__ = ["CamMix", "check_unit_interval"]


def check_unit_interval(value: float, name: str) -> float:
    """Return ``value`` as a float, or raise unless it lies in the open interval (0, 1)."""
    value = as_number(value)  # numpy / 0-d tensor scalars are numbers too
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number in (0, 1), got {type(value).__name__}")
    if not (math.isfinite(value) and 0.0 < value < 1.0):
        raise ValueError(f"{name} must lie in (0, 1), got {value}")
    return float(value)


@MIXERS.register("cammix")
class CamMix:
    """Paste the partner's class-activated region into the target image.

    Args:
        tau_c: CAM threshold in (0, 1) on the min-max-normalised map (BEM: 0.8).
        tau_a: Minimum area ratio in (0, 1) of the largest region (BEM: 0.1); below it a random
            CutMix box is used instead (Algorithm 2, lines 6-7).
        alpha: Beta(alpha, alpha) concentration of the fallback box's lam.
        target_layer: Layer to explain (a module of the model or its dotted name). None: the
            backbone's output (BEM's "final block"), via CAM when the head has ``cam_weights()``
            and Grad-CAM otherwise. A layer given here always uses Grad-CAM and a forward of
            ``partner_x`` (``partner_features`` cannot stand in for it).
        eval_mode: Compute the map with the model in eval mode (restored afterwards), so that
            CamMix never updates BatchNorm statistics and dropout does not perturb the map.
        generator: Default ``torch.Generator`` for the permutation and the fallback boxes.
    """

    def __init__(self, tau_c: float = 0.8, tau_a: float = 0.1, alpha: float = 1.0,
                 target_layer: nn.Module | str | None = None, eval_mode: bool = True,
                 generator: torch.Generator | None = None) -> None:
        self.tau_c = check_unit_interval(tau_c, "tau_c")
        self.tau_a = check_unit_interval(tau_a, "tau_a")
        self.alpha = check_alpha(alpha)
        if target_layer is not None and not isinstance(target_layer, (nn.Module, str)):
            raise TypeError("target_layer must be an nn.Module, a submodule name or None, "
                            f"got {type(target_layer).__name__}")
        self.target_layer = target_layer
        self.eval_mode = bool(eval_mode)
        self.generator = check_generator(generator)

    def partner_cam(
        self,
        model: nn.Module,
        partner_x: torch.Tensor | None,
        partner_y: Any = None,
        partner_features: torch.Tensor | None = None,
        size: tuple[int, int] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised class activation maps of the partners and the classes they explain.

        Args:
            model: The model being trained (``forward_features``, ``forward_head``, ``get_classifier``).
            partner_x: Partner images (B, C, H, W); may be None when ``partner_features`` suffice.
            partner_y: (B,) classes to explain; None uses the head's argmax (Algorithm 2 line 2).
            partner_features: ``model.forward_features(partner_x)`` from the caller's forward.
            size: Output (H, W); defaults to the image size.

        Returns:
            ``(cam, labels)``: (B, H, W) maps in [0, 1] and (B,) int64 classes.
        """
        if size is None:
            if partner_x is None:
                raise ValueError("size is required when partner_x is None")
            size = tuple(partner_x.shape[-2:])
        layer = resolve_layer(model, self.target_layer)
        weights = head_cam_weights(model) if layer is None else None
        if weights is not None and partner_features is not None and partner_y is not None:
            # the recipe's forward gave features and (pseudo-)labels: no model call at all
            q = as_class_index(partner_y, partner_features.shape[0], weights.shape[0], "partner_y")
            return class_activation_map(partner_features, weights, q, size=size), q
        with eval_mode(model, self.eval_mode):
            if weights is None:  # Algorithm 2 line 3: Grad-CAM
                return grad_cam(model, partner_y, x=partner_x, features=partner_features, target_layer=layer,
                                size=size)
            with torch.no_grad():  # linear head: CAM = Grad-CAM, no backward needed
                feats = model.forward_features(partner_x) if partner_features is None else partner_features
                if partner_y is None:
                    q = model.forward_head(feats).argmax(dim=1)
                else:
                    q = as_class_index(partner_y, feats.shape[0], weights.shape[0], "partner_y")
                cam = class_activation_map(feats, weights, q, size=size)
        return cam, q

    def __call__(
        self,
        x: torch.Tensor,
        y: Any,
        partner_x: torch.Tensor | None = None,
        partner_y: Any = None,
        model: nn.Module | None = None,
        partner_features: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> MixedBatch:
        """Mix ``x`` (B, C, H, W) with partners cut at their class-activated regions.

        Args:
            x: Target images (BEM: the strongly augmented unlabeled images).
            y: Target labels or pseudo-labels (B,), returned as ``y_a``.
            partner_x: Partner images (BEM: from the mix bank); None permutes the batch.
            partner_y: Partner labels; None uses the model's pseudo-labels (returned as ``y_b``).
            model: The model whose CAM locates the partner's object (required).
            partner_features: ``model.forward_features(partner_x)`` if already computed (needs
                ``partner_x``); then a head with ``cam_weights()`` costs no forward.
            generator: Overrides the constructor's generator for this call.

        Returns:
            The mixed batch with ``boxes``, per-sample ``lam = 1 - box area / (H W)`` (Algorithm 2
            line 13; their mean is line 15's lambda) and ``extras``: ``cam_fallback`` (B,) bool,
            where a random box was used, and ``region_ratio`` (B,) of the largest region.
        """
        x, y = check_batch(x, y)
        if model is None or not (hasattr(model, "forward_features") and hasattr(model, "forward_head")):
            raise TypeError("model must be given: a model with forward_features and forward_head")
        if partner_features is not None:
            if partner_x is None:
                raise ValueError("partner_features needs partner_x (the images they were computed from)")
            if not isinstance(partner_features, torch.Tensor) or partner_features.ndim != 4 \
                    or partner_features.shape[0] != x.shape[0]:
                raise ValueError(f"partner_features must be a ({x.shape[0]}, C, h, w) tensor, "
                                 f"got {getattr(partner_features, 'shape', type(partner_features).__name__)}")
        gen = check_generator(generator) or self.generator
        px, py, index = resolve_partner(x, y, partner_x, partner_y, gen, require_partner_y=False)
        n, height, width = x.shape[0], x.shape[-2], x.shape[-1]
        cam, q = self.partner_cam(model, px, py, partner_features, size=(height, width))
        boxes, region = largest_region_boxes(cam, self.tau_c)  # lines 3-5
        fallback = region < self.tau_a  # line 6
        rand = random_boxes(sample_beta(self.alpha, n, gen), height, width, gen).to(boxes.device)  # line 7
        boxes = torch.where(fallback[:, None], rand, boxes).to(x.device)  # line 9: the region's bounding box
        lam = 1.0 - box_area_ratio(boxes, height, width)  # line 13: 1 - lam = area ratio of the box
        y_b = py if py is not None else q.to(x.device)
        return MixedBatch(paste_boxes(x, px, boxes), y, y_b, lam, boxes=boxes, partner_index=index,
                          extras={"cam_fallback": fallback.to(x.device), "region_ratio": region.to(x.device)})

    def __repr__(self) -> str:
        return (f"CamMix(tau_c={self.tau_c}, tau_a={self.tau_a}, alpha={self.alpha}, "
                f"target_layer={self.target_layer!r}, eval_mode={self.eval_mode})")
