"""Standard train/test transforms of the long-tailed benchmarks.

CIFAR: random crop 32 with padding 4 and horizontal flip (LDAM-DRW and followers), CIFAR
normalisation. ImageNet-style sets (ImageNet-LT, Places-LT, iNaturalist 2018, image
folders): RandomResizedCrop + flip for training, Resize(size / 0.875) + CenterCrop for
testing, ImageNet normalisation. Digits (already normalised tensors): a tensor random crop.
"""
from __future__ import annotations

from typing import Callable

import torch
from torchvision import transforms as T

__all__ = [
    "CIFAR_MEAN",
    "CIFAR_STD",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "TRANSFORM_KINDS",
    "TensorRandomCrop",
    "cifar_train_transform",
    "cifar_test_transform",
    "imagenet_train_transform",
    "imagenet_test_transform",
    "digits_train_transform",
    "build_transform",
]

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2023, 0.1994, 0.2010)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TRANSFORM_KINDS = ("cifar", "imagenet", "digits", "none")


def _check_size(size: int) -> int:
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive integer, got {size!r}")
    return size


def cifar_train_transform() -> T.Compose:
    """RandomCrop(32, padding=4), RandomHorizontalFlip, ToTensor, CIFAR Normalize."""
    return T.Compose([
        T.RandomCrop(32, padding=4),
        T.RandomHorizontalFlip(),
        T.ToTensor(),
        T.Normalize(CIFAR_MEAN, CIFAR_STD),
    ])


def cifar_test_transform() -> T.Compose:
    """ToTensor, CIFAR Normalize."""
    return T.Compose([T.ToTensor(), T.Normalize(CIFAR_MEAN, CIFAR_STD)])


def imagenet_train_transform(size: int = 224) -> T.Compose:
    """RandomResizedCrop(size), RandomHorizontalFlip, ToTensor, ImageNet Normalize.

    Args:
        size: Output side in pixels.

    Returns:
        The composed transform (PIL image -> float tensor).
    """
    size = _check_size(size)
    return T.Compose([
        T.RandomResizedCrop(size),
        T.RandomHorizontalFlip(),
        T.ToTensor(),
        T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])


def imagenet_test_transform(size: int = 224) -> T.Compose:
    """Resize(int(size / 0.875)) (256 for 224), CenterCrop(size), ToTensor, ImageNet Normalize.

    Args:
        size: Output side in pixels.

    Returns:
        The composed transform (PIL image -> float tensor).
    """
    size = _check_size(size)
    return T.Compose([
        T.Resize(int(size / 0.875)),
        T.CenterCrop(size),
        T.ToTensor(),
        T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])


class TensorRandomCrop:
    """Random crop of a (C, H, W) tensor after constant padding; cheap enough per sample.

    Args:
        size: Output side (square).
        padding: Pixels of padding on each side.
        fill: Padding value (for normalised images, the normalised background value).
    """

    def __init__(self, size: int, padding: int = 0, fill: float = 0.0) -> None:
        self.size = _check_size(size)
        if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
            raise ValueError(f"padding must be a non-negative integer, got {padding!r}")
        self.padding = padding
        self.fill = float(fill)

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        c, h, w = img.shape
        p, s = self.padding, self.size
        if h + 2 * p < s or w + 2 * p < s:
            raise ValueError(f"image of size {h}x{w} with padding {p} is smaller than the crop size {s}")
        top = int(torch.randint(0, h + 2 * p - s + 1, ()).item())
        left = int(torch.randint(0, w + 2 * p - s + 1, ()).item())
        out = img.new_full((c, s, s), self.fill)
        # The crop window in padded coordinates is [top, top+s) x [left, left+s);
        # copy the part of it that overlaps the original image.
        y0, y1 = max(top, p), min(top + s, p + h)
        x0, x1 = max(left, p), min(left + s, p + w)
        if y1 > y0 and x1 > x0:
            out[:, y0 - top:y1 - top, x0 - left:x1 - left] = img[:, y0 - p:y1 - p, x0 - p:x1 - p]
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size}, padding={self.padding}, fill={self.fill})"


def digits_train_transform(size: int = 32, padding: int = 2, fill: float = -1.0) -> TensorRandomCrop:
    """Light augmentation for the normalised digits tensors: random crop, no flip.

    Args:
        size: Output side.
        padding: Padding before the crop.
        fill: Padding value; -1 is the background after (x - 0.5) / 0.5 normalisation.

    Returns:
        A :class:`TensorRandomCrop`.
    """
    return TensorRandomCrop(size, padding=padding, fill=fill)


def build_transform(kind: str, train: bool, size: int = 224) -> Callable | None:
    """The standard transform of a benchmark family.

    Args:
        kind: ``"cifar"``, ``"imagenet"``, ``"digits"`` or ``"none"``.
        train: Training (augmenting) transform if True, else the test transform.
        size: Output side for ``"imagenet"``.

    Returns:
        A callable, or None for ``"none"`` and for the digits test transform (the stored
        tensors are used as they are).
    """
    if kind not in TRANSFORM_KINDS:
        raise ValueError(f"kind must be one of {TRANSFORM_KINDS}, got {kind!r}")
    if kind == "cifar":
        return cifar_train_transform() if train else cifar_test_transform()
    if kind == "imagenet":
        return imagenet_train_transform(size) if train else imagenet_test_transform(size)
    if kind == "digits":
        return digits_train_transform() if train else None
    return None
