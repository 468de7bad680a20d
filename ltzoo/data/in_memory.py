"""A training set held in memory as one image tensor, for the batched (tensor) training data path.

:func:`in_memory_images` turns a dataset into :class:`InMemoryImages` (all images in one tensor,
the labels, and the batched equivalent of the dataset's augmentation) when it can:

* torchvision CIFAR-LT (``cifar10_lt`` / ``cifar100_lt``): the release's uint8 array, no decoding;
* image folders (``imagefolder_lt``, e.g. the CIFAR-10 JPEG tree): every image decoded once to
  uint8 RGB and cached as a safetensors file, beside the data when its folder is writable
  (``<root>/.ltzoo_cache/``), else under ``$LTZOO_CACHE`` or ``~/.cache/ltzoo``; the cache key
  covers the file list, each file's size and modification time, and the decode settings, so a
  changed data set is decoded again;
* tensor datasets (``digits_lt``): their tensor as it is.

It returns None (keep the per-sample loader) when the images differ in size, would take more than
``max_bytes``, or the transform is not one :func:`~ltzoo.data.batch_augment.batch_augment_for` knows.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ltzoo.data.base import LongTailedSubset, TensorImageDataset
from ltzoo.data.batch_augment import BatchAugment, ImageAugment, batch_augment_for

__all__ = ["InMemoryImages", "in_memory_images", "held_dataset", "decode_image_files", "decoded_cache_dir", "CACHE_ENV",
           "DECODE_VERSION"]

CACHE_ENV = "LTZOO_CACHE"
DECODE_VERSION = 1  # bump when the decoding changes, so old cache files are not reused
DEFAULT_MAX_BYTES = 8 * 1024 ** 3


@dataclass
class InMemoryImages:
    """A dataset as tensors: ``images`` (N, C, H, W) uint8 or float, ``targets`` (N,) int64, ``augment``."""

    images: torch.Tensor
    targets: torch.Tensor
    augment: BatchAugment

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def to(self, device: torch.device | str) -> "InMemoryImages":
        """A copy with the tensors on ``device`` (the augmentation then runs there)."""
        return InMemoryImages(self.images.to(device), self.targets.to(device), self.augment)


def decoded_cache_dir(data_root: str | os.PathLike | None) -> Path:
    """Where decoded images are cached: ``<data_root>/.ltzoo_cache`` when writable, else ``$LTZOO_CACHE`` or
    ``~/.cache/ltzoo``."""
    if data_root is not None:
        root = Path(data_root)
        if root.is_dir() and os.access(root, os.W_OK):
            return root / ".ltzoo_cache"
    env = os.environ.get(CACHE_ENV, "").strip()
    return Path(env).expanduser() if env else Path.home() / ".cache" / "ltzoo"


def _files_key(paths: list[str], settings: dict[str, Any]) -> str:
    """The cache key (:func:`ltzoo.cache_keys.cache_key`) of the file list, every file's size and
    modification time, in order, and the decode settings."""
    from ltzoo.cache_keys import cache_key

    stats = ((os.path.abspath(p), os.stat(p)) for p in paths)
    listing = "".join(f"\0{path}\0{st.st_size}\0{st.st_mtime_ns}" for path, st in stats)
    return cache_key(listing.encode("utf-8"), **settings)


def decode_image_files(paths: list[str], cache_dir: str | os.PathLike | None = None, mode: str = "RGB",
                       progress: bool = False, max_bytes: int | None = None) -> torch.Tensor | None:
    """Decode image files to one (N, C, H, W) uint8 tensor, through a safetensors cache.

    Args:
        paths: The files, in order.
        cache_dir: Cache folder (None: no cache).
        mode: PIL mode to convert to ("RGB": C = 3).
        progress: tqdm bar while decoding.
        max_bytes: Return None instead of decoding when the images would take more (judged from the first).

    Returns:
        The images, or None when over ``max_bytes`` (a file of another size than the first raises ValueError).
    """
    from PIL import Image
    from tqdm import tqdm

    from ltzoo.files import read_safetensors, write_safetensors

    cache = None
    if cache_dir is not None:
        key = _files_key(paths, {"mode": mode, "version": DECODE_VERSION})
        cache = Path(cache_dir) / f"decoded-{key}.safetensors"
        if cache.is_file():
            try:
                images = read_safetensors(cache)["images"]
                return images if max_bytes is None or images.numel() <= max_bytes else None
            except (ValueError, KeyError, OSError):
                pass  # unreadable or foreign: decode again and replace it
    if max_bytes is not None and paths:
        with Image.open(paths[0]) as img:
            width, height = img.size
        if len(paths) * len(mode) * width * height > max_bytes:
            return None
    arrays, shape = [], None
    for p in tqdm(paths, desc="decoding images", disable=not progress, leave=False):
        with Image.open(p) as img:
            a = np.asarray(img.convert(mode), dtype=np.uint8)
        a = a[:, :, None] if a.ndim == 2 else a
        if shape is None:
            shape = a.shape
        elif a.shape != shape:
            raise ValueError(f"images differ in size ({shape} vs {a.shape} at {p}); the in-memory path needs one size")
        arrays.append(a)
    images = torch.from_numpy(np.stack(arrays) if arrays else np.zeros((0, 1, 1, 3), np.uint8)).permute(0, 3, 1, 2)
    images = images.contiguous()
    if cache is not None:
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            write_safetensors({"images": images}, cache)
        except OSError:
            pass  # a read-only cache folder only costs the decoding next time
    return images


def in_memory_images(dataset: Any, max_bytes: int = DEFAULT_MAX_BYTES, cache_dir: str | os.PathLike | None = "auto",
                     progress: bool = False) -> InMemoryImages | None:
    """The dataset as :class:`InMemoryImages`, or None when it cannot be held (see the module docstring).

    Args:
        dataset: A ltzoo dataset (``LongTailedSubset`` over torchvision CIFAR or an ImageFolder, or a
            ``TensorImageDataset``).
        max_bytes: Largest image tensor to hold.
        cache_dir: Decoded-image cache folder; "auto" picks :func:`decoded_cache_dir` of the data; None: no cache.
        progress: tqdm bar while decoding.
    """
    augment = batch_augment_for(getattr(dataset, "transform", None))
    if augment is None:
        return None
    targets = torch.as_tensor(np.asarray(dataset.targets, dtype=np.int64))
    if isinstance(dataset, TensorImageDataset):
        return InMemoryImages(dataset.images, targets, augment)
    if not isinstance(dataset, LongTailedSubset):
        return None
    source, idx = dataset.source, np.asarray(dataset.indices, dtype=np.int64)
    data = getattr(source, "data", None)
    if isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 4:  # torchvision CIFAR (N, H, W, C)
        if data[idx].nbytes > max_bytes:
            return None
        return InMemoryImages(torch.from_numpy(data[idx]).permute(0, 3, 1, 2).contiguous(), targets, augment)
    samples = getattr(source, "samples", None)
    if not samples:
        return None
    paths = [samples[int(i)][0] for i in idx]
    root = getattr(source, "root", None)
    where = decoded_cache_dir(Path(root).parent if root else None) if cache_dir == "auto" else cache_dir
    try:
        images = decode_image_files(paths, where, progress=progress, max_bytes=max_bytes)
    except ValueError:
        return None  # images of different sizes: per-sample path
    return None if images is None else InMemoryImages(images, targets, augment)


def held_dataset(dataset: Any, max_bytes: int = DEFAULT_MAX_BYTES, cache_dir: str | os.PathLike | None = "auto",
                 progress: bool = False) -> TensorImageDataset | None:
    """The dataset with its images decoded once and held in memory, for per-sample loaders.

    Items are the same distribution as the original's (each image passes the dataset's augmentation,
    redone as tensor ops by :class:`~ltzoo.data.batch_augment.ImageAugment`), without decoding a
    file per item. Useful for recipes that read a small image folder many times (BTM's fine-tunes
    and post-training on CIFAR).

    Args:
        dataset: As :func:`in_memory_images`.
        max_bytes, cache_dir, progress: As :func:`in_memory_images`.

    Returns:
        A :class:`~ltzoo.data.base.TensorImageDataset` of uint8 images with the same ``targets``,
        ``classes`` and ``group_split``, or None when the dataset cannot be held.
    """
    held = in_memory_images(dataset, max_bytes, cache_dir, progress)
    if held is None:
        return None
    classes = getattr(dataset, "classes", None) or [str(c) for c in range(int(held.targets.max()) + 1)]
    return TensorImageDataset(held.images, held.targets.numpy(), classes, ImageAugment(held.augment),
                              getattr(dataset, "group_split", None))
