"""In-memory copies of training sets: CIFAR's own array, decoded image folders (with their cache), tensor sets."""
import os
import time

import numpy as np
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


def test_held_dataset_items_match_the_per_sample_pipeline(tmp_path):
    from ltzoo.data.in_memory import held_dataset

    root = _tree(tmp_path / "data")
    test = create_dataset("imagefolder_lt", root=root, split="test", transform="cifar")
    held_test = held_dataset(test)
    assert held_test.targets == test.targets and held_test.class_counts == test.class_counts
    for i in (0, 7, 11):  # the test transform is deterministic: equal to torchvision's to float rounding
        torch.testing.assert_close(held_test[i][0], test[i][0], rtol=0, atol=1e-6)
    train = create_dataset("imagefolder_lt", root=root, imb_ratio=1, transform="cifar")
    held_train = held_dataset(train)
    # every augmented draw of a training item is one of its 81 crops x 2 flips (zero padding, then normalised)
    norm = held_train.images[2:3].float().div(255)
    mean = torch.tensor((0.4914, 0.4822, 0.4465))[:, None, None]
    std = torch.tensor((0.2023, 0.1994, 0.2010))[:, None, None]
    padded = torch.nn.functional.pad(norm, (4, 4, 4, 4))[0]
    candidates = [(c[:, t:t + 32, l:l + 32] - mean) / std for t in range(9) for l in range(9)
                  for c in (padded, padded.flip(2))]
    torch.manual_seed(0)
    seen = set()
    for _ in range(40):
        x, y = held_train[2]
        match = [k for k, cand in enumerate(candidates) if torch.allclose(x, cand, atol=1e-5)]
        assert match and y == train.targets[2]
        seen.add(match[0] % 2)
    assert seen == {0, 1}  # both flip states occur
