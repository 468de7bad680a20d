"""In-memory copies of training sets: CIFAR's own array, decoded image folders (with their cache), tensor sets."""
import os
import time

import numpy as np
import pytest
import torch
from PIL import Image

from ltzoo.data import create_dataset
from ltzoo.data.in_memory import decoded_cache_dir, in_memory_images


def _tree(root, n=3, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    for split in ("train", "test"):
        for c in range(classes):
            folder = root / split / f"c{c}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return root


def test_image_folder_decoded_once_equals_the_per_sample_images(tmp_path):
    root = _tree(tmp_path / "data")
    train = create_dataset("imagefolder_lt", root=root, imb_ratio=1, transform="cifar")
    held = in_memory_images(train)
    assert held is not None and held.images.dtype == torch.uint8 and held.images.shape == (12, 3, 32, 32)
    assert held.targets.tolist() == train.targets
    for i in (0, 5, 11):
        raw, _ = train.source[int(train.indices[i])]
        assert torch.equal(held.images[i], torch.from_numpy(np.array(raw)).permute(2, 0, 1))
    assert len(list((root / ".ltzoo_cache").glob("decoded-*.safetensors"))) == 1  # beside the data


def test_fidelity_decoded_cache_is_reused_and_rebuilt_when_the_data_change(tmp_path, monkeypatch):
    root = _tree(tmp_path / "data")
    train = create_dataset("imagefolder_lt", root=root, imb_ratio=1, transform="cifar")
    first = in_memory_images(train).images.clone()
    calls = []
    real_open = Image.open
    monkeypatch.setattr(Image, "open", lambda *a, **k: calls.append(a) or real_open(*a, **k))
    again = in_memory_images(train).images
    assert torch.equal(again, first) and calls == []  # read from the cache, nothing decoded
    # rewrite one image: its size and modification time change, so the key does
    path = root / "train" / "c0" / "1.png"
    Image.fromarray(np.full((32, 32, 3), 7, dtype=np.uint8)).save(path)
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    train = create_dataset("imagefolder_lt", root=root, imb_ratio=1, transform="cifar")
    rebuilt = in_memory_images(train).images
    j = [i for i in range(len(train)) if train.source.samples[int(train.indices[i])][0] == str(path)][0]
    assert len(calls) >= 12 and torch.all(rebuilt[j] == 7) and not torch.equal(rebuilt, first)
    assert len(list((root / ".ltzoo_cache").glob("decoded-*.safetensors"))) == 2


def test_cache_folder_falls_back_to_ltzoo_cache_when_the_data_folder_is_read_only(tmp_path, monkeypatch):
    monkeypatch.setenv("LTZOO_CACHE", str(tmp_path / "cache"))
    assert decoded_cache_dir(tmp_path / "missing") == tmp_path / "cache"
    monkeypatch.setattr(os, "access", lambda *a, **k: False)
    assert decoded_cache_dir(tmp_path) == tmp_path / "cache"
    monkeypatch.delenv("LTZOO_CACHE")
    assert decoded_cache_dir(tmp_path).parts[-2:] == (".cache", "ltzoo")


def test_tensor_sets_are_held_as_they_are_and_unknown_transforms_are_not(tmp_path):
    digits = create_dataset("digits_lt", split="train", imb_ratio=10)
    held = in_memory_images(digits)
    assert held.images is digits.images and held.augment.padding == 2 and not held.augment.flip
    root = _tree(tmp_path / "data", n=1)
    imagenet_style = create_dataset("imagefolder_lt", root=root, imb_ratio=1, image_size=32)  # RandomResizedCrop
    assert in_memory_images(imagenet_style) is None
    assert in_memory_images(create_dataset("imagefolder_lt", root=root, imb_ratio=1, transform="cifar"),
                            max_bytes=100) is None  # too large to hold
