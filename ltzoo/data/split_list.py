"""Data sets described by a split list: ImageNet-LT, Places-LT, iNaturalist 2018.

A list file has one ``relative/path label`` line per image (the format of the OLTR
release of ImageNet-LT / Places-LT and of the iNaturalist-2018 lists used by decoupling,
MiSLAS, ...); paths are relative to ``root``. Blank lines and lines starting with ``#`` are
skipped. The lists are long-tailed already, so ``imb_ratio`` defaults to 1 (keep as is).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from PIL import Image

from ltzoo.data.base import LongTailedSubset
from ltzoo.data.common import (
    check_imb_ratio,
    check_lt_options,
    check_no_download,
    check_root,
    check_split,
    make_long_tailed,
    resolve_transform,
)
from ltzoo.data.registry import DATASETS
from ltzoo.validation import check_num_classes

__all__ = ["SplitListSource", "read_split_list", "build_split_list"]

SPLITS = ("train", "val", "test")

# alias -> (list file pattern, number of classes, allowed splits)
KNOWN_LISTS = {
    "imagenet_lt": ("ImageNet_LT_{split}.txt", 1000, ("train", "val", "test")),
    "places_lt": ("Places_LT_{split}.txt", 365, ("train", "val", "test")),
    "inaturalist2018": ("iNaturalist18_{split}.txt", 8142, ("train", "val")),
}


def read_split_list(list_file: str | os.PathLike) -> tuple[list[str], list[int]]:
    """Parse a ``relative/path label`` list file.

    Args:
        list_file: Path of the text file (paths may contain spaces; the label is the last field).

    Returns:
        ``(paths, labels)`` in file order.

    Raises:
        ValueError: On a malformed line, naming the file and the 1-based line number.
    """
    paths: list[str] = []
    labels: list[int] = []
    with open(list_file, encoding="utf-8") as fh:
        for lineno, raw in enumerate(fh, start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.rsplit(None, 1)
            if len(parts) != 2:
                raise ValueError(f"{list_file}:{lineno}: expected 'relative/path label', got {line!r}")
            path, label = parts
            try:
                value = int(label)
            except ValueError:
                raise ValueError(f"{list_file}:{lineno}: label must be an integer, got {label!r}") from None
            if value < 0:
                raise ValueError(f"{list_file}:{lineno}: label must be >= 0, got {value}")
            paths.append(path)
            labels.append(value)
    if not paths:
        raise ValueError(f"{list_file}: no 'relative/path label' lines found")
    return paths, labels


class SplitListSource:
    """Raw items ``(PIL RGB image, label)`` of a split list under ``root``.

    Args:
        root: Folder the list's paths are relative to.
        paths: Relative image paths.
        labels: One label per path.
        classes: Class names.
    """

    def __init__(self, root: Path, paths: list[str], labels: list[int], classes: list[str]) -> None:
        self.root = Path(root)
        self.paths = paths
        self.targets = labels
        self.classes = classes

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[Image.Image, int]:
        with Image.open(self.root / self.paths[i]) as img:
            return img.convert("RGB"), self.targets[i]


def check_inside_root(root: Path, paths: list[str], list_file: Path) -> None:
    """Refuse listed paths that are absolute or climb out of ``root`` with ``..``.

    Raises:
        ValueError: Naming the list file and the first such path.
    """
    base = os.path.normpath(os.path.abspath(root))
    for rel in paths:
        full = os.path.normpath(os.path.join(base, rel))
        if os.path.isabs(rel) or (full != base and not full.startswith(base + os.sep)):
            raise ValueError(f"{list_file}: path {rel!r} lies outside root={str(root)!r} (absolute, or climbing out "
                             "with '..'); list files may only name images under their root")


def _resolve_list_file(root: Path, list_file: str | os.PathLike | None) -> Path:
    if list_file is None:
        raise ValueError("list_file is required (a 'relative/path label' text file, absolute or relative to root)")
    candidate = Path(list_file).expanduser()
    if not candidate.is_absolute() and (root / candidate).is_file():
        return root / candidate
    if candidate.is_file():
        return candidate
    raise ValueError(f"list_file {str(list_file)!r} not found (looked under root={str(root)!r} and as given)")


def _build(
    name: str,
    root: str | os.PathLike | None,
    split: str,
    imb_ratio: float,
    download: bool,
    transform: Callable | str | None,
    list_file: str | os.PathLike | None,
    num_classes: int | None,
    splits: tuple[str, ...],
    profile: str,
    selection: str,
    seed: int,
    minority_fraction: float,
    image_size: int,
) -> LongTailedSubset:
    check_split(split, splits)
    imb_ratio = check_imb_ratio(imb_ratio)
    check_lt_options(profile, selection, seed)
    check_no_download(download, name)
    base = check_root(root)
    path = _resolve_list_file(base, list_file)
    paths, labels = read_split_list(path)
    check_inside_root(base, paths, path)
    if num_classes is None:
        num_classes = check_num_classes(max(labels) + 1, f"{path}: the largest label + 1 (num_classes)")
    elif isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer or None, got {num_classes!r}")
    else:
        num_classes = check_num_classes(num_classes)
    if max(labels) >= num_classes:
        raise ValueError(f"{path}: label {max(labels)} is out of range for num_classes={num_classes}")
    source = SplitListSource(base, paths, labels, [str(c) for c in range(num_classes)])
    train = split == "train"
    dataset = LongTailedSubset(source, transform=resolve_transform(transform, "imagenet", train, image_size))
    if not train:
        return dataset
    return make_long_tailed(dataset, imb_ratio, profile, selection, seed, minority_fraction)


@DATASETS.register("split_list")
def build_split_list(
    root: str | os.PathLike | None = None,
    split: str = "train",
    imb_ratio: float = 1,
    download: bool = False,
    transform: Callable | str | None = None,
    list_file: str | os.PathLike | None = None,
    num_classes: int | None = None,
    profile: str = "exp",
    selection: str = "first",
    seed: int = 0,
    minority_fraction: float = 0.5,
    image_size: int = 224,
) -> LongTailedSubset:
    """Images listed in ``list_file`` (``relative/path label`` lines) under ``root``.

    Args:
        root: Folder the listed paths are relative to.
        split: ``"train"``, ``"val"`` or ``"test"`` (picks the default transform).
        imb_ratio: Extra imbalance applied to the training list (1: keep the list as is).
        download: Must be False.
        transform: Callable, kind name, or None for the ImageNet-style transform.
        list_file: The list; tried relative to ``root`` first, then as given.
        num_classes: Number of classes (default: largest label + 1).
        profile: ``"exp"`` or ``"step"`` (only with ``imb_ratio > 1``).
        selection: ``"first"`` or ``"random"`` (only with ``imb_ratio > 1``).
        seed: Seed of the ``"random"`` selection.
        minority_fraction: Minority share for ``"step"``.
        image_size: Output side of the default transform.

    Returns:
        A :class:`LongTailedSubset` over a :class:`SplitListSource`.
    """
    return _build("split_list", root, split, imb_ratio, download, transform, list_file, num_classes,
                  SPLITS, profile, selection, seed, minority_fraction, image_size)


def _register_alias(alias: str) -> None:
    pattern, n_classes, splits = KNOWN_LISTS[alias]

    def builder(
        root: str | os.PathLike | None = None,
        split: str = "train",
        imb_ratio: float = 1,
        download: bool = False,
        transform: Callable | str | None = None,
        list_file: str | os.PathLike | None = None,
        num_classes: int | None = n_classes,
        profile: str = "exp",
        selection: str = "first",
        seed: int = 0,
        minority_fraction: float = 0.5,
        image_size: int = 224,
    ) -> LongTailedSubset:
        check_split(split, splits)
        if list_file is None:
            list_file = pattern.format(split=split)
        return _build(alias, root, split, imb_ratio, download, transform, list_file, num_classes,
                      splits, profile, selection, seed, minority_fraction, image_size)

    builder.__name__ = f"build_{alias}"
    builder.__qualname__ = builder.__name__
    builder.__doc__ = (
        f"``split_list`` with ``list_file`` defaulting to ``{pattern}`` under ``root`` and "
        f"``num_classes={n_classes}``; splits {splits}. See :func:`build_split_list`."
    )
    DATASETS.register(alias, builder)


for _alias in KNOWN_LISTS:
    _register_alias(_alias)
