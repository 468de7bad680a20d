"""What every mixer returns (:class:`MixedBatch`) and the helpers the mixers share.

A mixer is a callable ``mixer(x, y, **extras) -> MixedBatch``. It mixes each image of ``x``
with a partner image, taken either from the batch itself (a permutation drawn from a
``torch.Generator``) or given explicitly as ``partner_x`` / ``partner_y`` (BMLS pairs, BEM's
mix bank). ``lam`` is always a (B,) float32 tensor: the weight of ``y_a`` (the target labels)
for each sample, so LT losses and mixed-singleton heads can use ``lam * l(y_a) + (1 - lam) * l(y_b)``.

Boxes are (B, 4) int64 tensors ``(y0, x0, y1, x1)`` with exclusive ends, in pixels.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ltzoo.validation import as_number

__all__ = [
    "PairMixer",
    "MixedBatch", "check_alpha", "check_batch", "resolve_partner", "sample_beta",
    "centred_boxes", "random_boxes", "box_mask", "paste_boxes", "box_area_ratio",
]


@dataclass
class MixedBatch:
    """A mixed batch and its label bookkeeping.

    Attributes:
        x: Mixed images (B, C, H, W).
        y_a: Labels of the target images (weight ``lam``).
        y_b: Labels (or pseudo-labels) of the partner images (weight ``1 - lam``).
        lam: (B,) float32 per-sample weight of ``y_a``.
        boxes: (B, 4) int64 pasted regions ``(y0, x0, y1, x1)`` (box mixers only), else None.
        partner_index: (B,) int64 partner positions in the batch when partners came from
            the batch, else None.
        extras: Mixer-specific tensors (e.g. CamMix's ``cam_fallback``).
    """

    x: torch.Tensor
    y_a: torch.Tensor
    y_b: torch.Tensor
    lam: torch.Tensor
    boxes: torch.Tensor | None = None
    partner_index: torch.Tensor | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = self.x.shape[0]
        if self.lam.shape != (n,):
            raise ValueError(f"lam must have shape ({n},), got {tuple(self.lam.shape)}")
        if self.boxes is not None and self.boxes.shape != (n, 4):
            raise ValueError(f"boxes must have shape ({n}, 4), got {tuple(self.boxes.shape)}")


def check_alpha(alpha: float, name: str = "alpha") -> float:
    """Return ``alpha`` as a float, or raise unless it is a finite number > 0."""
    alpha = as_number(alpha)  # numpy / 0-d tensor scalars are numbers too
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
        raise TypeError(f"{name} must be a number > 0, got {type(alpha).__name__}")
    if not math.isfinite(alpha) or alpha <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {alpha}")
    return float(alpha)


def check_generator(generator: Any, name: str = "generator") -> torch.Generator | None:
    """Return ``generator`` if it is None or a ``torch.Generator``, else raise TypeError."""
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"{name} must be a torch.Generator or None, got {type(generator).__name__}")
    return generator


def check_batch(x: Any, y: Any, x_name: str = "x", y_name: str = "y") -> tuple[torch.Tensor, torch.Tensor]:
    """Validate images (B, C, H, W) and labels with B rows; return them as tensors.

    Raises:
        TypeError: ``x`` is not a floating tensor.
        ValueError: ``x`` is not 4-D or ``y`` does not have B rows.
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"{x_name} must be a floating-point torch.Tensor (B, C, H, W), got {type(x).__name__}"
                        + (f" of dtype {x.dtype}" if isinstance(x, torch.Tensor) else ""))
    if x.ndim != 4 or x.shape[0] == 0:
        raise ValueError(f"{x_name} must have shape (B, C, H, W) with B >= 1, got {tuple(x.shape)}")
    y = torch.as_tensor(y, device=x.device)
    if y.ndim == 0 or y.shape[0] != x.shape[0]:
        raise ValueError(f"{y_name} must have one row per image ({x.shape[0]}), got shape {tuple(y.shape)}")
    return x, y


def resolve_partner(
    x: torch.Tensor,
    y: torch.Tensor,
    partner_x: torch.Tensor | None,
    partner_y: Any,
    generator: torch.Generator | None,
    require_partner_y: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """The partner images and labels: explicit ones, or a random permutation of the batch.

    Args:
        x: Target images (B, C, H, W), already validated.
        y: Target labels (B, ...).
        partner_x: Explicit partner images of the same shape, or None to permute the batch.
        partner_y: Explicit partner labels (B, ...), or None.
        generator: Drives the permutation.
        require_partner_y: Whether explicit ``partner_x`` needs ``partner_y``.

    Returns:
        ``(partner_x, partner_y, partner_index)``; ``partner_index`` is None for explicit partners.
        A permutation may pair an image with itself, as in the reference mixup/CutMix code.
    """
    if partner_x is None:
        if partner_y is not None:
            raise ValueError("partner_y was given without partner_x")
        if x.shape[0] < 2:
            raise ValueError("a batch of one image has no partner in the batch: pass partner_x (and partner_y)")
        index = torch.randperm(x.shape[0], generator=generator, device=_rng_device(generator)).to(x.device)
        return x[index], y[index], index
    partner_x, _ = check_batch(partner_x, y, "partner_x", "y")
    if partner_x.shape != x.shape:
        raise ValueError(f"partner_x must have the shape of x {tuple(x.shape)}, got {tuple(partner_x.shape)}")
    if partner_y is None:
        if require_partner_y:
            raise ValueError("partner_y is required with partner_x")
        return partner_x.to(x.dtype), None, None
    _, partner_y = check_batch(x, partner_y, "x", "partner_y")
    return partner_x.to(x.dtype), partner_y, None


def _rng_device(generator: torch.Generator | None) -> torch.device:
    return generator.device if generator is not None else torch.device("cpu")


def sample_beta(alpha: float, n: int, generator: torch.Generator | None,
                device: torch.device | str = "cpu") -> torch.Tensor:
    """``n`` draws of Beta(alpha, alpha) as a float32 tensor, driven by ``generator``.

    torch's Beta sampler takes no generator, so a numpy generator is seeded from ``generator``
    (or from torch's global RNG when it is None): ``torch.manual_seed`` still reproduces it.
    """
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=_rng_device(generator)).item())
    lam = np.random.default_rng(seed).beta(alpha, alpha, size=n)
    return torch.as_tensor(lam, dtype=torch.float32, device=device)


def centred_boxes(cy: torch.Tensor, cx: torch.Tensor, lam: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """CutMix boxes of side ``int(side * sqrt(1 - lam))`` centred at (cy, cx), clipped to the image.

    Follows Yun et al.'s code: ``cut = int(H * sqrt(1 - lam))``, ``y0 = clip(cy - cut // 2)``,
    ``y1 = clip(cy + cut // 2)`` (likewise along x).

    Returns:
        (B, 4) int64 boxes ``(y0, x0, y1, x1)``.
    """
    ratio = torch.sqrt((1.0 - lam.double()).clamp(0.0, 1.0))
    cut_h = torch.floor(height * ratio).long() // 2
    cut_w = torch.floor(width * ratio).long() // 2
    cy, cx = cy.long().to(lam.device), cx.long().to(lam.device)
    return torch.stack([
        (cy - cut_h).clamp(0, height), (cx - cut_w).clamp(0, width),
        (cy + cut_h).clamp(0, height), (cx + cut_w).clamp(0, width),
    ], dim=1)


def random_boxes(lam: torch.Tensor, height: int, width: int, generator: torch.Generator | None) -> torch.Tensor:
    """CutMix boxes for ``lam`` (B,) at uniform random centres (Yun et al., ICCV 2019, Alg. A1)."""
    n, dev = lam.shape[0], _rng_device(generator)
    cy = torch.randint(0, height, (n,), generator=generator, device=dev)
    cx = torch.randint(0, width, (n,), generator=generator, device=dev)
    return centred_boxes(cy, cx, lam, height, width)


def box_mask(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, 1, H, W) bool mask, True inside each box."""
    rows = torch.arange(height, device=boxes.device)
    cols = torch.arange(width, device=boxes.device)
    in_y = (rows[None, :] >= boxes[:, 0:1]) & (rows[None, :] < boxes[:, 2:3])  # (B, H)
    in_x = (cols[None, :] >= boxes[:, 1:2]) & (cols[None, :] < boxes[:, 3:4])  # (B, W)
    return (in_y[:, :, None] & in_x[:, None, :])[:, None]


def paste_boxes(x: torch.Tensor, partner_x: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Copy of ``x`` with each box region replaced by the partner's pixels at the same place."""
    mask = box_mask(boxes.to(x.device), x.shape[-2], x.shape[-1])
    return torch.where(mask, partner_x, x)


def box_area_ratio(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B,) float32 box area divided by ``height * width``."""
    area = (boxes[:, 2] - boxes[:, 0]).clamp_min(0) * (boxes[:, 3] - boxes[:, 1]).clamp_min(0)
    return area.double().div(height * width).float()


class PairMixer:
    """The shared call of mixers that pair each image with one partner and draw lam ~ Beta(alpha, alpha).

    Subclasses implement :meth:`mix`; the partner comes from the batch (a permutation) or is
    given explicitly.

    Args:
        alpha: Beta(alpha, alpha) concentration (> 0); 1.0 draws lam uniformly.
        per_sample: Draw one lam per sample instead of one for the whole batch.
        generator: Default ``torch.Generator`` for the permutation and the draws.
    """

    def __init__(self, alpha: float = 1.0, per_sample: bool = False, generator: torch.Generator | None = None) -> None:
        self.alpha = check_alpha(alpha)
        self.per_sample = bool(per_sample)
        self.generator = check_generator(generator)

    def __call__(self, x: torch.Tensor, y: Any, partner_x: torch.Tensor | None = None, partner_y: Any = None,
                 generator: torch.Generator | None = None) -> MixedBatch:
        """Mix ``x`` (B, C, H, W) with partners.

        Args:
            x: Target images.
            y: Target labels (B, ...), returned as ``y_a``.
            partner_x: Explicit partner images (same shape as ``x``); None permutes the batch.
            partner_y: Labels of ``partner_x`` (required with it).
            generator: Overrides the constructor's generator for this call.

        Returns:
            The mixed batch; ``lam`` (B,) is the weight of ``y_a``.
        """
        x, y = check_batch(x, y)
        gen = check_generator(generator) or self.generator
        px, py, index = resolve_partner(x, y, partner_x, partner_y, gen)
        n = x.shape[0]
        lam = sample_beta(self.alpha, n if self.per_sample else 1, gen, device=x.device).expand(n).contiguous()
        mixed, lam, boxes = self.mix(x, px, lam, gen)
        return MixedBatch(mixed, y, py, lam, boxes=boxes, partner_index=index)

    def mix(self, x: torch.Tensor, partner_x: torch.Tensor, lam: torch.Tensor,
            generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Return (mixed images, final per-sample lam, pasted boxes or None)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(alpha={self.alpha}, per_sample={self.per_sample})"
