"""Training and test sets from a config's data fields (``data``, ``data_root``, ``imb_ratio``, ``data_args``).

* "digits": ``digits_lt`` (scikit-learn's digits, no download); ``data_args["image_size"]``
  (default 32) resamples the images, e.g. 16 for fast CPU runs (the source images are 8x8).
* "cifar10" / "cifar100": a folder with ``train/<class>/`` and ``test/<class>/`` (the CIFAR-10
  JPEG tree) is read as ``imagefolder_lt`` with the CIFAR transforms; any other folder goes to
  torchvision's CIFAR (``data_args["download"]`` lets it download).
* "imagefolder": ``imagefolder_lt`` (``root/train/<class>/``, tested on ``root/val`` or ``root/test``,
  or ``data_args["test_split"]``), ImageNet-style transforms of ``data_args["image_size"]`` (224).
* any registered data set by its registry name (``ltzoo list datasets``): "digits_lt", "cifar10_lt",
  "cifar100_lt" and "imagefolder_lt" as the short names above; the split-list sets ("imagenet_lt",
  "places_lt", "inaturalist2018", "split_list") from their list files under ``root``, tested on
  their "test" split (or "val" where they have none, or ``data_args["test_split"]``).

Other ``data_args`` (``profile``, ``selection``, ``seed``, ...) go to ``ltzoo.data.create_dataset``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch.nn.functional as F

from ltzoo.data import TensorImageDataset, TensorRandomCrop, create_dataset
from ltzoo.engine.config import DATA_NAMES, TrainConfig
from ltzoo.metrics.groups import conventional_split

__all__ = ["build_datasets", "resize_tensor_dataset", "is_image_tree"]

_OWN_KEYS = ("image_size", "download", "test_split")
_REGISTRY_ALIASES = {"digits_lt": "digits", "cifar10_lt": "cifar10", "cifar100_lt": "cifar100",
                     "imagefolder_lt": "imagefolder"}


def is_image_tree(root: str | Path | None) -> bool:
    """True when ``root`` holds ``train/`` and ``test/`` folders (an ImageFolder split tree)."""
    return root is not None and (Path(root) / "train").is_dir() and (Path(root) / "test").is_dir()


def resize_tensor_dataset(dataset: TensorImageDataset, size: int, train: bool,
                          fill: float = -1.0) -> TensorImageDataset:
    """A copy of a tensor dataset at ``size`` x ``size`` (bilinear, antialiased).

    Args:
        dataset: The set (e.g. ``digits_lt``).
        size: New side.
        train: Give the copy a random-crop augmentation (padding size // 16, at least 1).
        fill: Padding value of the crop (-1: the digits' normalised background).
    """
    images = F.interpolate(dataset.images, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    transform = TensorRandomCrop(size, padding=max(1, size // 16), fill=fill) if train else None
    return TensorImageDataset(images.contiguous(), dataset.targets, dataset.classes, transform, dataset.group_split)


def build_datasets(cfg: TrainConfig) -> tuple[Any, Any, str]:
    """The training set, the test set and the test set's name for metrics blocks.

    Args:
        cfg: A config; its ``data``, ``data_root``, ``imb_ratio`` and ``data_args`` are used.

    Returns:
        ``(train_set, test_set, name)``, e.g. name "cifar10_lt_r100".
    """
    if cfg.data in _REGISTRY_ALIASES:  # registry names of the short-name sets: the same path
        cfg = cfg.replace(data=_REGISTRY_ALIASES[cfg.data])
    args = {k: v for k, v in cfg.data_args.items() if k not in _OWN_KEYS}
    own = {k: cfg.data_args[k] for k in _OWN_KEYS if k in cfg.data_args}
    if cfg.data not in DATA_NAMES:
        return _build_registered(cfg, args, own)
    name = f"{cfg.data}_lt_r{cfg.imb_ratio:g}"
    if cfg.data == "digits":
        train = create_dataset("digits_lt", split="train", imb_ratio=cfg.imb_ratio, **args)
        test = create_dataset("digits_lt", split="test", **args)
        size = int(own.get("image_size", 32))
        if size != train.images.shape[-1]:
            train, test = resize_tensor_dataset(train, size, True), resize_tensor_dataset(test, size, False)
        return train, test, name
    if cfg.data_root is None:
        raise ValueError(f"data={cfg.data!r} needs a data root (--root DIR / data_root)")
    root = cfg.data_root
    if cfg.data in ("cifar10", "cifar100"):
        if is_image_tree(root):
            train = create_dataset("imagefolder_lt", root=root, imb_ratio=cfg.imb_ratio, transform="cifar", **args)
            test = create_dataset("imagefolder_lt", root=root, split="test", transform="cifar", **args)
            train.group_split = test.group_split = conventional_split(cfg.data, train.num_classes)  # by class index
            return train, test, name
        builder = f"{cfg.data}_lt"
        download = bool(own.get("download", False))
        train = create_dataset(builder, root=root, imb_ratio=cfg.imb_ratio, download=download, **args)
        test = create_dataset(builder, root=root, split="test", download=download, **args)
        return train, test, name
    size = int(own.get("image_size", 224))
    split = own.get("test_split") or ("val" if (Path(root) / "val").is_dir() else "test")
    train = create_dataset("imagefolder_lt", root=root, imb_ratio=cfg.imb_ratio, image_size=size, **args)
    test = create_dataset("imagefolder_lt", root=root, split=split, image_size=size, **args)
    return train, test, f"{Path(root).name}_lt_r{cfg.imb_ratio:g}"


def _build_registered(cfg: TrainConfig, args: dict[str, Any], own: dict[str, Any]) -> tuple[Any, Any, str]:
    """A split-list (or other registered) data set by its registry name: train and test splits from ``root``."""
    from ltzoo.data.split_list import KNOWN_LISTS

    if cfg.data_root is None:
        raise ValueError(f"data={cfg.data!r} needs a data root holding its images and list files (--root DIR)")
    splits = KNOWN_LISTS[cfg.data][2] if cfg.data in KNOWN_LISTS else ("train", "test")
    split = own.get("test_split") or ("test" if "test" in splits else "val")
    size = int(own.get("image_size", 224))
    common = dict(root=cfg.data_root, image_size=size, download=bool(own.get("download", False)), **args)
    train = create_dataset(cfg.data, split="train", imb_ratio=cfg.imb_ratio, **common)
    test = create_dataset(cfg.data, split=split, **common)
    return train, test, cfg.data if cfg.imb_ratio == 1 else f"{cfg.data}_r{cfg.imb_ratio:g}"
