"""Class activation maps: CAM (Zhou et al., CVPR 2016), Grad-CAM (Selvaraju et al., ICCV 2017)
and the largest thresholded region of a map (BEM Algorithm 2, lines 3-5).

For a head that is linear after global average pooling, Grad-CAM on the backbone's output
equals CAM up to a positive factor: dy_q/dA_k(h, w) = w_qk / (h w), so
ReLU(sum_k alpha_k A_k) = ReLU(sum_k w_qk A_k) / (h w). CAM needs no backward pass, so
:func:`class_activation_map` serves such heads and :func:`grad_cam` the others. Both apply the
ReLU, so a min-max-normalised CAM and Grad-CAM agree exactly for a linear head.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import nn

__all__ = [
    "class_activation_map", "grad_cam", "as_class_index", "normalize_cam", "largest_region_boxes",
    "head_cam_weights", "resolve_layer", "eval_mode",
]


def normalize_cam(cam: torch.Tensor) -> torch.Tensor:
    """Min-max normalise each map of (B, H, W) to [0, 1]; a constant map becomes zeros."""
    flat = cam.flatten(1)
    lo, hi = flat.amin(dim=1), flat.amax(dim=1)
    span = (hi - lo).view(-1, 1, 1)
    return torch.where(span > 0, (cam - lo.view(-1, 1, 1)) / span.clamp_min(torch.finfo(cam.dtype).tiny),
                       torch.zeros_like(cam))


def _finish(cam: torch.Tensor, size: tuple[int, int] | None, normalize: bool) -> torch.Tensor:
    if size is not None:
        cam = F.interpolate(cam[:, None], size=tuple(size), mode="bilinear", align_corners=False)[:, 0]
    return normalize_cam(cam) if normalize else cam


def as_class_index(labels: Any, n: int, num_classes: int, name: str = "labels") -> torch.Tensor:
    """(B,) int64 class indices from hard labels (B,) or soft / one-hot labels (B, K) (their argmax)."""
    labels = torch.as_tensor(labels)
    if labels.ndim == 2:  # soft / one-hot labels: their top class
        labels = labels.argmax(dim=1)
    if labels.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {tuple(labels.shape)}")
    if labels.is_floating_point():
        if not torch.equal(labels, labels.round()):
            raise TypeError(f"{name} must be integer class indices")
        labels = labels.long()
    if n and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"{name} must lie in [0, {num_classes}), got range [{labels.min()}, {labels.max()}]")
    return labels.long()


def class_activation_map(
    features: torch.Tensor,
    weights: torch.Tensor,
    labels: Any,
    size: tuple[int, int] | None = None,
    normalize: bool = True,
) -> torch.Tensor:
    """CAM_q(h, w) = ReLU(sum_c w_{q,c} F_c(h, w)) (Zhou et al., Eq. 2), no backward pass.

    Args:
        features: Unpooled feature maps (B, C, h, w).
        weights: Per-class weight vectors (K, C) in pooled-feature space (``head.cam_weights()``);
            (K, 2C) for "catavgmax" pooling, whose two halves are summed. Biases are left out:
            a per-class constant does not move a normalised map.
        labels: (B,) class of each map (or (B, K) soft labels: their argmax).
        size: Upsample (bilinear) to this (H, W), e.g. the image size.
        normalize: Min-max normalise each map to [0, 1].

    Returns:
        (B, H, W) maps.
    """
    if not isinstance(features, torch.Tensor) or features.ndim != 4:
        got = getattr(features, "shape", type(features).__name__)
        raise ValueError(f"features must be a (B, C, h, w) tensor, got {got}")
    if not isinstance(weights, torch.Tensor) or weights.ndim != 2:
        raise ValueError(f"weights must be a (K, C) tensor, got {getattr(weights, 'shape', type(weights).__name__)}")
    c = features.shape[1]
    if weights.shape[1] == 2 * c:
        weights = weights[:, :c] + weights[:, c:]
    elif weights.shape[1] != c:
        raise ValueError(f"weights must have {c} (or {2 * c}) columns to match the features, got {weights.shape[1]}")
    q = as_class_index(labels, features.shape[0], weights.shape[0]).to(features.device)
    w = weights.detach().to(features.dtype)[q]  # (B, C)
    cam = torch.relu(torch.einsum("bc,bchw->bhw", w, features.detach()))
    return _finish(cam, size, normalize)


def head_cam_weights(model: nn.Module) -> torch.Tensor | None:
    """The model head's (K, D) ``cam_weights()``, or None when the head has none (not linear)."""
    head = model.get_classifier() if hasattr(model, "get_classifier") else None
    fn = getattr(head, "cam_weights", None)
    return fn() if callable(fn) else None


def resolve_layer(model: nn.Module, target_layer: nn.Module | str | None) -> nn.Module | None:
    """``target_layer`` as a submodule of ``model`` (a module, a dotted name, or None)."""
    if target_layer is None:
        return None
    if isinstance(target_layer, str):
        try:
            return model.get_submodule(target_layer)
        except AttributeError:
            raise ValueError(f"target_layer {target_layer!r} is not a submodule of the model") from None
    if not isinstance(target_layer, nn.Module):
        raise TypeError("target_layer must be an nn.Module, a submodule name or None, "
                        f"got {type(target_layer).__name__}")
    if not any(m is target_layer for m in model.modules()):
        raise ValueError("target_layer is not a submodule of the model")
    return target_layer


@contextmanager
def eval_mode(model: nn.Module, enabled: bool = True) -> Iterator[None]:
    """Temporarily put every module of ``model`` in eval mode; restore each flag afterwards."""
    if not enabled or not isinstance(model, nn.Module):
        yield
        return
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, flag in flags:
            m.training = flag


def _forward_to_layer(model: nn.Module, x: torch.Tensor, layer: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward ``x`` building a graph only from ``layer``'s output on; return (A, logits)."""
    store: dict[str, torch.Tensor] = {}

    def hook(module: nn.Module, inputs: Any, output: Any) -> torch.Tensor:
        if not isinstance(output, torch.Tensor):
            raise TypeError(f"target_layer must output a tensor, got {type(output).__name__}")
        torch.set_grad_enabled(True)  # from here on, record the graph (thread-local, reset below)
        store["a"] = output.detach().requires_grad_(True)
        return store["a"]

    handle = layer.register_forward_hook(hook)
    previous = torch.is_grad_enabled()
    try:
        torch.set_grad_enabled(False)  # no graph (and no parameter grads) upstream of the layer
        logits = model.forward_head(model.forward_features(x))
    finally:
        handle.remove()
        torch.set_grad_enabled(previous)
    if "a" not in store:
        raise ValueError("target_layer was not called in the model's forward")
    return store["a"], logits


def grad_cam(
    model: nn.Module,
    labels: Any = None,
    x: torch.Tensor | None = None,
    features: torch.Tensor | None = None,
    target_layer: nn.Module | str | None = None,
    size: tuple[int, int] | None = None,
    normalize: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Grad-CAM (Selvaraju et al., ICCV 2017) for class ``labels`` with one forward + backward.

    Gradients are taken with ``torch.autograd.grad`` with respect to the layer's activation
    only, so no parameter ``.grad`` is created or changed. The model runs in its current mode
    (wrap in :func:`eval_mode` to keep BatchNorm statistics and samples independent).

    Args:
        model: An ltzoo-style model (``forward_features``, ``forward_head``).
        labels: (B,) class per image; None uses the model's argmax (its pseudo-label).
        x: Images (B, C, H, W); needed unless ``features`` is given and ``target_layer`` is None.
        features: Precomputed ``model.forward_features(x)``; with ``target_layer=None`` only the
            head is differentiated, so the backbone does not run at all.
        target_layer: Layer whose output is explained; None means the backbone's output.
        size: Upsample (bilinear) to this (H, W).
        normalize: Min-max normalise each map to [0, 1].

    Returns:
        ``(cam, labels)``: (B, H, W) maps and the (B,) classes explained.
    """
    layer = resolve_layer(model, target_layer)
    if layer is None:
        if features is None:
            if x is None:
                raise ValueError("grad_cam needs x or features")
            with torch.no_grad():
                features = model.forward_features(x)
        a = features.detach().requires_grad_(True)
        with torch.enable_grad():
            logits = model.forward_head(a)
    else:
        if x is None:
            raise ValueError("grad_cam needs x when target_layer is given")
        a, logits = _forward_to_layer(model, x, layer)
    if a.ndim != 4:
        raise ValueError(f"the explained activation must be (B, C, h, w), got shape {tuple(a.shape)}")
    q = logits.detach().argmax(dim=1) if labels is None else as_class_index(labels, a.shape[0], logits.shape[1])
    q = q.to(logits.device)
    with torch.enable_grad():
        score = logits.gather(1, q[:, None]).sum()  # samples are independent: sum of y^q over the batch
        (grad,) = torch.autograd.grad(score, a)
    alpha = grad.mean(dim=(2, 3), keepdim=True)  # Selvaraju et al. Eq. (1): global-average-pooled gradients
    cam = torch.relu((alpha * a.detach()).sum(dim=1))  # Eq. (2): ReLU(sum_k alpha_k^c A^k)
    return _finish(cam, size, normalize), q


def largest_region_boxes(cam: torch.Tensor, tau_c: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Bounding box and area ratio of the largest region of ``cam > tau_c`` in each map.

    BEM Algorithm 2, lines 4-5: S = int(CAM > tau_c), the largest connected region of S
    (8-connectivity, as skimage's ``label`` default). Ties go to the first region in raster order.

    Args:
        cam: (B, H, W) normalised maps.
        tau_c: Threshold.

    Returns:
        ``(boxes, ratio)``: (B, 4) int64 ``(y0, x0, y1, x1)`` (exclusive ends; zeros where no
        pixel exceeds ``tau_c``) and (B,) float32 region pixels / (H W).
    """
    n, height, width = cam.shape
    mask = (cam > tau_c).cpu().numpy()
    structure = np.zeros((3, 3, 3), dtype=bool)
    structure[1] = True  # connect within an image only: one labelling call for the batch
    lab, count = ndimage.label(mask, structure=structure)
    boxes = np.zeros((n, 4), dtype=np.int64)
    ratio = np.zeros(n, dtype=np.float64)
    if count:
        ids = np.arange(1, count + 1)
        sizes = np.bincount(lab.ravel(), minlength=count + 1)[1:]
        slices = ndimage.find_objects(lab)
        sample = np.array([s[0].start for s in slices])
        order = np.lexsort((ids, -sizes, sample))  # per sample: largest first, then raster order
        first = order[np.unique(sample[order], return_index=True)[1]]
        for i in first:
            _, sy, sx = slices[i]
            boxes[sample[i]] = (sy.start, sx.start, sy.stop, sx.stop)
            ratio[sample[i]] = sizes[i] / (height * width)
    return (torch.from_numpy(boxes).to(cam.device),
            torch.from_numpy(ratio).to(device=cam.device, dtype=torch.float32))
