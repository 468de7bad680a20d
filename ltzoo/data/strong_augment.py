"""FixMatch's strong augmentation: RandAugment with a random magnitude per use, then Cutout.

FixMatch (Sohn et al. 2020, Sec. 2.3 and its reference code, "RandAugmentMC"), as UDAL and BEM
use it: for each image, ``num_ops`` = 2 operations are drawn uniformly (with replacement) from
the 14 below; each is applied with probability 0.5, at a level drawn uniformly from
{1, ..., ``max_level``} (10) anew for every operation of every image. Then a Cutout square of
half the image side (16 x 16 at 32 px) is filled with gray. This differs from
``torchvision.transforms.RandAugment(num_ops=2, magnitude=10)``, whose magnitude is FIXED at 10 of
31 bins for every call.

Level v maps to a strength with f = v / 10 (the ranges of FixMatch's pool):

    autocontrast, equalize, identity        no parameter
    brightness, color, contrast, sharpness  enhancement factor 0.05 + 0.9 f   (in [0.14, 0.95])
    posterize                               4 + floor(4 f) bits kept          (4 ... 8)
    rotate                                  +- 30 f degrees
    shear_x, shear_y                        +- 0.3 f shear factor (about the top-left corner)
    solarize                                invert pixels >= 256 - floor(256 f)
    translate_x, translate_y                +- floor(0.3 f * side) pixels

The sign of rotate / shear / translate is drawn at random. The reference code draws v with
``numpy.random.randint(1, 10)``, i.e. from {1, ..., 9}; ``max_level=9`` reproduces that. All
randomness comes from torch's global generator (seeded per DataLoader worker). Operations run on
PIL images or uint8 (C, H, W) tensors through ``torchvision.transforms.v2.functional``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
from torchvision.transforms.v2 import functional as F

from ltzoo.validation import as_number

__all__ = ["RandomMagnitudeRandAugment", "Cutout", "AugOp", "OPS", "apply_op"]


def _factor(f: float) -> float:
    return 0.05 + 0.9 * f


def _side(img: Any) -> tuple[int, int]:
    h, w = F.get_size(img)
    return int(h), int(w)


def _affine(img: Any, angle: float = 0.0, translate: Sequence[int] = (0, 0), shear: Sequence[float] = (0.0, 0.0),
            center: Sequence[float] | None = None) -> Any:
    return F.affine(img, angle=angle, translate=list(translate), scale=1.0, shear=list(shear),
                    center=None if center is None else list(center))


def _shear_degrees(factor: float) -> float:
    return math.degrees(math.atan(factor))  # x' = x + factor * y  <->  shear angle atan(factor)


# name -> fn(img, f, sign), f = level / 10 in (0, 1], sign in {-1, +1}
OPS: dict[str, Callable[[Any, float, int], Any]] = {
    "autocontrast": lambda img, f, s: F.autocontrast(img),
    "brightness": lambda img, f, s: F.adjust_brightness(img, _factor(f)),
    "color": lambda img, f, s: F.adjust_saturation(img, _factor(f)),
    "contrast": lambda img, f, s: F.adjust_contrast(img, _factor(f)),
    "equalize": lambda img, f, s: F.equalize(img),
    "identity": lambda img, f, s: img,
    "posterize": lambda img, f, s: F.posterize(img, 4 + int(4 * f)),
    "rotate": lambda img, f, s: F.rotate(img, s * 30.0 * f),
    "sharpness": lambda img, f, s: F.adjust_sharpness(img, _factor(f)),
    "shear_x": lambda img, f, s: _affine(img, shear=(s * _shear_degrees(0.3 * f), 0.0), center=(0, 0)),
    "shear_y": lambda img, f, s: _affine(img, shear=(0.0, s * _shear_degrees(0.3 * f)), center=(0, 0)),
    "solarize": lambda img, f, s: F.solarize(img, 256 - int(256 * f)),
    "translate_x": lambda img, f, s: _affine(img, translate=(s * int(0.3 * f * _side(img)[1]), 0)),
    "translate_y": lambda img, f, s: _affine(img, translate=(0, s * int(0.3 * f * _side(img)[0]))),
}


def apply_op(img: Any, name: str, level: int, sign: int = 1, max_level: int = 10) -> Any:
    """One operation of the pool at ``level`` (strength f = level / 10, see the module table).

    Args:
        img: A PIL image or a uint8 (C, H, W) tensor.
        name: A key of :data:`OPS`.
        level: Integer in [1, max_level].
        sign: +1 or -1 (direction of rotate / shear / translate; ignored by the others).
        max_level: Upper bound on ``level`` (for checking only; f is always level / 10).

    Returns:
        The augmented image, of the input's type.
    """
    if name not in OPS:
        raise ValueError(f"name must be one of {sorted(OPS)}, got {name!r}")
    if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= max_level:
        raise ValueError(f"level must be an integer in [1, {max_level}], got {level!r}")
    if sign not in (-1, 1):
        raise ValueError(f"sign must be -1 or 1, got {sign!r}")
    if isinstance(img, torch.Tensor) and img.dtype != torch.uint8:
        raise TypeError(f"a tensor image must be uint8 (C, H, W), got {img.dtype}")
    return OPS[name](img, level / 10.0, sign)


@dataclass(frozen=True)
class AugOp:
    """One drawn operation: its name, level, whether it is applied (prob 0.5) and its sign."""

    name: str
    level: int
    applied: bool
    sign: int


class RandomMagnitudeRandAugment:
    """RandAugment with a magnitude drawn at random per operation and image (FixMatch's strong view).

    Args:
        num_ops: Operations drawn per image (N = 2).
        max_level: Levels are drawn uniformly from {1, ..., max_level} (10; the reference code's 9).
        prob: Probability of applying each drawn operation (0.5).
        ops: Names of the pool (default: all 14 of :data:`OPS`).
    """

    def __init__(self, num_ops: int = 2, max_level: int = 10, prob: float = 0.5,
                 ops: Sequence[str] | None = None) -> None:
        if isinstance(num_ops, bool) or not isinstance(num_ops, int) or num_ops < 0:
            raise ValueError(f"num_ops must be an integer >= 0, got {num_ops!r}")
        if isinstance(max_level, bool) or not isinstance(max_level, int) or not 1 <= max_level <= 10:
            raise ValueError(f"max_level must be an integer in [1, 10], got {max_level!r}")
        prob = as_number(prob)  # numpy / 0-d tensor scalars are numbers too
        if isinstance(prob, bool) or not isinstance(prob, (int, float)) or not 0.0 <= prob <= 1.0:
            raise ValueError(f"prob must be a number in [0, 1], got {prob!r}")
        names = tuple(OPS) if ops is None else tuple(ops)
        unknown = [n for n in names if n not in OPS]
        if not names or unknown:
            raise ValueError(f"ops must be a non-empty subset of {sorted(OPS)}, got {list(names)!r}")
        self.num_ops, self.max_level, self.prob, self.ops = num_ops, max_level, float(prob), names

    def draw_plan(self) -> list[AugOp]:
        """Draw this image's operations, levels, application flags and signs (torch's global RNG)."""
        n = self.num_ops
        which = torch.randint(0, len(self.ops), (n,)).tolist()
        levels = torch.randint(1, self.max_level + 1, (n,)).tolist()
        applied = (torch.rand(n) < self.prob).tolist()
        signs = torch.where(torch.rand(n) < 0.5, -1, 1).tolist()
        return [AugOp(self.ops[i], int(v), bool(a), int(s)) for i, v, a, s in zip(which, levels, applied, signs)]

    def apply(self, img: Any, plan: Sequence[AugOp]) -> Any:
        """Apply a drawn plan (the applied operations, in order)."""
        for op in plan:
            if op.applied:
                img = apply_op(img, op.name, op.level, op.sign, self.max_level)
        return img

    def __call__(self, img: Any) -> Any:
        """Args: img, a PIL image or uint8 (C, H, W) tensor. Returns: the augmented image."""
        return self.apply(img, self.draw_plan())

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(num_ops={self.num_ops}, max_level={self.max_level}, prob={self.prob}, "
                f"ops={len(self.ops)})")


class Cutout:
    """Fill one ``size`` x ``size`` square at a uniformly random centre (DeVries & Taylor; FixMatch).

    The centre (cy, cx) is uniform over the pixels; the square covers rows
    [cy - size // 2, cy - size // 2 + size) and the same columns, clipped only where it crosses
    the image border (so it is exactly size x size away from the border).

    Args:
        size: Side of the square in pixels (FixMatch: 16 at 32 px).
        fill: Fill value, a scalar or one value per channel (for a normalised image, the
            normalised gray (0.5 - mean) / std matches FixMatch's gray 127).
    """

    def __init__(self, size: int = 16, fill: float | Sequence[float] = 0.0) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"size must be a positive integer (pixels), got {size!r}")
        self.size = size
        self.fill = torch.as_tensor(fill, dtype=torch.float32).reshape(-1, 1, 1)

    def box(self, height: int, width: int) -> tuple[int, int, int, int]:
        """Draw the square: (top, bottom, left, right), rows [top, bottom) and columns [left, right)."""
        cy, cx = (int(v) for v in (torch.randint(0, height, ()), torch.randint(0, width, ())))
        top, left = cy - self.size // 2, cx - self.size // 2
        return max(top, 0), min(top + self.size, height), max(left, 0), min(left + self.size, width)

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        """Args: img, a (C, H, W) float tensor. Returns: a copy with the square filled."""
        if not isinstance(img, torch.Tensor) or img.ndim != 3:
            raise TypeError(f"Cutout takes a (C, H, W) tensor (apply it after ToTensor), got {type(img).__name__}")
        fill = self.fill.to(device=img.device, dtype=img.dtype)
        if fill.shape[0] not in (1, img.shape[0]):
            raise ValueError(f"fill has {fill.shape[0]} values for an image of {img.shape[0]} channels")
        top, bottom, left, right = self.box(img.shape[-2], img.shape[-1])
        out = img.clone()
        out[:, top:bottom, left:right] = fill
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size}, fill={self.fill.flatten().tolist()})"
