"""The CIFAR-style training augmentation applied to a whole batch as tensor ops (CPU or GPU).

:class:`BatchAugment` does what the per-sample torchvision pipeline does, in one pass over a
batch: random crop after constant padding (every offset of the padded image equally likely, as
``RandomCrop(size, padding)``), a horizontal flip with probability 1/2 (``RandomHorizontalFlip``),
then ``ToTensor`` + ``Normalize`` for uint8 images. The random draws come from a CPU
``torch.Generator``, so a batch is bit-for-bit the same for a given generator state whatever
device the images live on.

:func:`batch_augment_for` recognises the per-sample transforms ltzoo builds (the CIFAR train and
test transforms, the digits tensor crop) and returns the batched equivalent, or None for any other
transform (those datasets keep the per-sample loader).
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torchvision import transforms as T

from ltzoo.data.transforms import TensorRandomCrop

__all__ = ["BatchAugment", "ImageAugment", "batch_augment_for"]


class BatchAugment:
    """Random crop with padding, optional horizontal flip and normalisation of a (B, C, H, W) batch.

    Args:
        size: Crop side (square); None keeps the image size (no crop).
        padding: Constant padding on each side before the crop.
        flip: Flip each image horizontally with probability 1/2.
        mean, std: Per-channel normalisation applied after scaling uint8 images to [0, 1]
            (None: no normalisation).
        fill: Padding value, in the images' own units (0 for uint8 images, as torchvision pads).
    """

    def __init__(self, size: int | None = None, padding: int = 0, flip: bool = False,
                 mean: Sequence[float] | None = None, std: Sequence[float] | None = None, fill: float = 0.0) -> None:
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
            raise ValueError(f"size must be a positive integer or None, got {size!r}")
        if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
            raise ValueError(f"padding must be a non-negative integer, got {padding!r}")
        if (mean is None) != (std is None):
            raise ValueError("mean and std must be given together")
        self.size, self.padding, self.flip, self.fill = size, padding, bool(flip), float(fill)
        self.mean = None if mean is None else tuple(float(m) for m in mean)
        self.std = None if std is None else tuple(float(s) for s in std)

    @property
    def random(self) -> bool:
        """Whether the augmentation draws random numbers (crop offsets or flips)."""
        return self.flip or (self.size is not None and self.padding > 0)

    def draw(self, batch: int, height: int, width: int, generator: torch.Generator | None = None
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The random parameters of a batch: crop tops (B,), crop lefts (B,), flip flags (B,), on the CPU.

        Offsets are uniform over the ``(H + 2p - size + 1) * (W + 2p - size + 1)`` positions of the
        padded image; with ``flip`` each flag is set with probability 1/2.
        """
        size = self.size or height
        p = self.padding
        if height + 2 * p < size or width + 2 * p < size:
            raise ValueError(f"images of size {height}x{width} with padding {p} are smaller than the crop size {size}")
        top = torch.randint(0, height + 2 * p - size + 1, (batch,), generator=generator)
        left = torch.randint(0, width + 2 * p - size + 1, (batch,), generator=generator)
        flips = torch.rand(batch, generator=generator) < 0.5 if self.flip else torch.zeros(batch, dtype=torch.bool)
        return top, left, flips

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Augment a batch.

        Args:
            images: (B, C, H, W) uint8 (0-255) or floating-point images, on any device.
            generator: A CPU generator for the random draws (None: torch's global one).

        Returns:
            (B, C, size, size) float32 images on the same device.
        """
        if not isinstance(images, torch.Tensor) or images.ndim != 4:
            raise ValueError(f"images must be a (B, C, H, W) tensor, got {getattr(images, 'shape', type(images))}")
        b, c, h, w = images.shape
        size, p = self.size or h, self.padding
        top, left, flips = self.draw(b, h, w, generator)
        device = images.device
        x = images
        if p:
            x = torch.nn.functional.pad(x, (p, p, p, p), value=self.fill)
        rows = (top.to(device)[:, None] + torch.arange(size, device=device))  # (B, size)
        cols = (left.to(device)[:, None] + torch.arange(size, device=device))  # (B, size)
        cols = torch.where(flips.to(device)[:, None], cols.flip(1), cols)  # a flip reverses the crop's columns
        batch_idx = torch.arange(b, device=device)[:, None, None]
        x = x.permute(0, 2, 3, 1)[batch_idx, rows[:, :, None], cols[:, None, :]]  # (B, size, size, C)
        x = x.permute(0, 3, 1, 2)
        if images.dtype == torch.uint8:
            x = x.to(torch.float32).div_(255.0)  # ToTensor
        else:
            x = x.to(torch.float32)
        if self.mean is not None:
            mean = torch.tensor(self.mean, device=device, dtype=torch.float32)[None, :, None, None]
            std = torch.tensor(self.std, device=device, dtype=torch.float32)[None, :, None, None]
            x = x.sub_(mean).div_(std)
        return x.contiguous()

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(size={self.size}, padding={self.padding}, flip={self.flip}, "
                f"mean={self.mean}, std={self.std}, fill={self.fill})")


class ImageAugment:
    """A :class:`BatchAugment` applied to one ``(C, H, W)`` image: a per-sample transform of held images.

    Args:
        augment: The batched augmentation (torch's global generator draws its random numbers).
    """

    def __init__(self, augment: BatchAugment) -> None:
        if not isinstance(augment, BatchAugment):
            raise TypeError(f"augment must be a BatchAugment, got {type(augment).__name__}")
        self.augment = augment

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return self.augment(image[None])[0]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.augment!r})"


def batch_augment_for(transform: Any) -> BatchAugment | None:
    """The batched equivalent of a per-sample transform, or None when it is not one ltzoo recognises.

    Recognised: None (images used as stored); :class:`ImageAugment`; :class:`~ltzoo.data.transforms.TensorRandomCrop`;
    a ``Compose`` of optional ``RandomCrop(size, padding)`` (constant padding, no ``pad_if_needed``),
    optional ``RandomHorizontalFlip(0.5)``, then ``ToTensor`` and optional ``Normalize``.
    """
    if transform is None:
        return BatchAugment()
    if isinstance(transform, ImageAugment):
        return transform.augment
    if isinstance(transform, TensorRandomCrop):
        return BatchAugment(transform.size, transform.padding, flip=False, fill=transform.fill)
    if not isinstance(transform, T.Compose):
        return None
    steps = list(transform.transforms)
    size, padding, flip, mean, std = None, 0, False, None, None
    if steps and isinstance(steps[0], T.RandomCrop):
        crop = steps.pop(0)
        if crop.pad_if_needed or crop.padding_mode != "constant" or crop.fill != 0:
            return None
        pad = crop.padding or 0
        if not isinstance(pad, int):
            if len(set(pad)) != 1:
                return None
            pad = int(pad[0])
        if len(set(crop.size)) != 1:
            return None
        size, padding = int(crop.size[0]), int(pad)
    if steps and isinstance(steps[0], T.RandomHorizontalFlip):
        if steps.pop(0).p != 0.5:
            return None
        flip = True
    if not steps or not isinstance(steps.pop(0), T.ToTensor):
        return None
    if steps and isinstance(steps[0], T.Normalize):
        norm = steps.pop(0)
        mean, std = tuple(norm.mean), tuple(norm.std)
    if steps:
        return None
    return BatchAugment(size, padding, flip, mean, std)
