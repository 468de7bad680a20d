"""CIFAR-10/100-LT through torchvision on fake pickled batches, and the real CIFAR-10 JPEG tree.

The fake files have torchvision's names and pickle layout but not the release's md5 sums,
so these tests bypass torchvision's md5 check by monkeypatching
``torchvision.datasets.cifar.check_integrity`` to a plain "file exists" check (only here).
"""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.datasets.cifar as tv_cifar

from ltzoo.data import create_dataset, long_tailed_counts, select_per_class

PER_CLASS_TRAIN = 20
PER_CLASS_TEST = 4


def _fake_split(num_classes, per_class, seed):
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.repeat(np.arange(num_classes), per_class)).tolist()
    data = rng.integers(0, 256, size=(len(labels), 3072), dtype=np.uint8)
    return data, labels


def _dump(path: Path, obj) -> None:
    with open(path, "wb") as fh:
        pickle.dump(obj, fh)


def write_fake_cifar10(root: Path) -> dict:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    data, labels = _fake_split(10, PER_CLASS_TRAIN, 0)
    for b in range(5):
        sl = slice(b * 40, (b + 1) * 40)
        _dump(folder / f"data_batch_{b + 1}", {"data": data[sl], "labels": labels[sl]})
    tdata, tlabels = _fake_split(10, PER_CLASS_TEST, 1)
    _dump(folder / "test_batch", {"data": tdata, "labels": tlabels})
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    _dump(folder / "batches.meta", {"label_names": names})
    return {"data": data, "labels": labels, "test_labels": tlabels}


def write_fake_cifar100(root: Path) -> dict:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    data, labels = _fake_split(100, 10, 2)
    _dump(folder / "train", {"data": data, "fine_labels": labels})
    tdata, tlabels = _fake_split(100, 2, 3)
    _dump(folder / "test", {"data": tdata, "fine_labels": tlabels})
    _dump(folder / "meta", {"fine_label_names": [f"c{i}" for i in range(100)]})
    return {"data": data, "labels": labels}


@pytest.fixture
def no_md5(monkeypatch):
    # Bypass torchvision's md5 check: the fake files cannot match the release's checksums.
    monkeypatch.setattr(tv_cifar, "check_integrity", lambda fpath, md5=None: os.path.isfile(fpath))


def test_cifar10_lt_on_fake_batches(tmp_path, no_md5):
    fake = write_fake_cifar10(tmp_path)
    train = create_dataset("cifar10_lt", root=tmp_path, imb_ratio=10, transform="none")
    expected = long_tailed_counts(PER_CLASS_TRAIN, 10, 10)
    assert train.class_counts == expected and len(train) == sum(expected)
    assert train.classes[0] == "airplane" and train.num_classes == 10
    # "first": the first n_c images of each class in the release order
    np.testing.assert_array_equal(train.indices, select_per_class(fake["labels"], expected))
    i = len(train) - 1
    img, label = train[i]
    src = int(train.indices[i])
    assert label == fake["labels"][src] == 9
    np.testing.assert_array_equal(np.asarray(img), fake["data"][src].reshape(3, 32, 32).transpose(1, 2, 0))
    x, _ = create_dataset("cifar10_lt", root=tmp_path, imb_ratio=10)[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32

    rand = create_dataset("cifar10_lt", root=tmp_path, imb_ratio=10, selection="random")
    assert rand.class_counts == expected
    np.testing.assert_array_equal(rand.indices, select_per_class(fake["labels"], expected, "random", 0))

    test = create_dataset("cifar10_lt", root=tmp_path, split="test", imb_ratio=10)
    assert test.class_counts == [PER_CLASS_TEST] * 10  # the test set stays balanced
    assert test.targets == fake["test_labels"]


def test_cifar100_lt_on_fake_file(tmp_path, no_md5):
    write_fake_cifar100(tmp_path)
    train = create_dataset("cifar100_lt", root=tmp_path, imb_ratio=10, profile="step")
    assert train.num_classes == 100 and train.classes[5] == "c5"
    assert train.class_counts == [10] * 50 + [1] * 50
    test = create_dataset("cifar100_lt", root=tmp_path, split="test", imb_ratio=10)
    assert test.class_counts == [2] * 100


def test_cifar_download_path_calls_torchvision(tmp_path, no_md5, monkeypatch):
    calls = []

    def fake_download(url, download_root, filename=None, md5=None, **kw):
        calls.append((url, filename))
        write_fake_cifar10(Path(download_root))

    monkeypatch.setattr(tv_cifar, "download_and_extract_archive", fake_download)
    root = tmp_path / "new"  # need not exist with download=True
    train = create_dataset("cifar10_lt", root=root, imb_ratio=10, download=True)
    assert calls and calls[0][1] == "cifar-10-python.tar.gz"
    assert len(train) == sum(long_tailed_counts(PER_CLASS_TRAIN, 10, 10))


def test_cifar_missing_files(tmp_path):
    with pytest.raises(RuntimeError, match="download=True"):
        create_dataset("cifar10_lt", root=tmp_path)
    with pytest.raises(ValueError, match="root"):
        create_dataset("cifar10_lt", root=tmp_path / "absent")
    with pytest.raises(ValueError, match="split"):
        create_dataset("cifar100_lt", root=tmp_path, split="val")


# ---------------------------------------------------------------------------------------
# The real CIFAR-10 JPEG copy (../shared/data/cifar10-jpeg.tar.gz), if unpacked.

CIFAR10_LT_100 = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]


@pytest.fixture(scope="module")
def cifar10_jpeg():
    root = os.environ.get("LTZOO_CIFAR10_JPEG")
    if not root:
        pytest.skip("LTZOO_CIFAR10_JPEG is not set (folder with the CIFAR-10 JPEG train/ and test/)")
    if not (Path(root) / "train").is_dir() or not (Path(root) / "test").is_dir():
        pytest.skip(f"LTZOO_CIFAR10_JPEG={root!r} has no train/ and test/ folders")
    train = create_dataset("imagefolder_lt", root=root, imb_ratio=100, transform="cifar")
    test = create_dataset("imagefolder_lt", root=root, split="test", imb_ratio=100, transform="cifar")
    return train, test


def test_real_cifar10_lt_counts(cifar10_jpeg):
    train, test = cifar10_jpeg
    assert train.classes == ["airplane", "automobile", "bird", "cat", "deer",
                             "dog", "frog", "horse", "ship", "truck"]
    assert len(train) == 12406
    assert train.class_counts == CIFAR10_LT_100
    assert len(test) == 10000 and test.class_counts == [1000] * 10
    # "first" keeps 0000.jpg ... of each class
    last = Path(train.source.samples[int(train.indices[-1])][0])
    assert last.parent.name == "truck" and last.name == "0049.jpg"


def test_real_cifar10_item_loads(cifar10_jpeg):
    train, test = cifar10_jpeg
    x, y = train[len(train) - 1]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and y == 9
    x, y = test[0]
    assert x.shape == (3, 32, 32) and y == 0


@pytest.mark.parametrize("ratio", [1, 10, 20])
def test_fidelity_cifar_lt_carries_the_index_group_split_at_every_ratio(tmp_path, no_md5, ratio):
    from ltzoo.metrics import CIFAR10_SPLIT, CIFAR100_SPLIT

    write_fake_cifar10(tmp_path)
    write_fake_cifar100(tmp_path)
    for name, split in (("cifar10_lt", CIFAR10_SPLIT), ("cifar100_lt", CIFAR100_SPLIT)):
        train = create_dataset(name, root=tmp_path, imb_ratio=ratio)
        test = create_dataset(name, root=tmp_path, split="test")
        assert train.group_split == split and test.group_split == split
        assert train.subset([0, 1, 2]).group_split == split  # carved splits keep it
