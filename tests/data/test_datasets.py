"""The registry, create_dataset's argument checks and the real digits_lt set."""
from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from ltzoo.data import DATASETS, create_dataset, list_datasets, long_tailed_counts


def test_registered_names():
    names = list_datasets()
    for name in ["cifar10_lt", "cifar100_lt", "imagefolder_lt", "split_list", "imagenet_lt",
                 "places_lt", "inaturalist2018", "digits_lt"]:
        assert name in names
    assert list_datasets("cifar*") == ["cifar100_lt", "cifar10_lt"]
    assert "digits_lt" in DATASETS


def test_unknown_name_lists_close_matches():
    with pytest.raises(ValueError, match="cifar10_lt"):
        create_dataset("cifar10-lt")


@pytest.mark.parametrize("ratio", [0.5, 0, -3, float("nan"), float("inf")])
def test_bad_imb_ratio(ratio):
    with pytest.raises(ValueError, match="imb_ratio"):
        create_dataset("digits_lt", imb_ratio=ratio)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(split="val"), "split"),
        (dict(profile="linear"), "profile"),
        (dict(selection="best"), "selection"),
        (dict(download=True), "download"),
        (dict(imb_ratio=10, selection="random", seed=-1), "seed"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        create_dataset("digits_lt", **kwargs)


@pytest.fixture(scope="module")
def digits():
    return create_dataset("digits_lt", imb_ratio=10), create_dataset("digits_lt", split="test")


def test_digits_lt_train(digits):
    train, _ = digits
    x, y = train[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32
    assert isinstance(y, int)
    assert train.num_classes == 10 and train.classes == [str(d) for d in range(10)]
    # n_max = the smallest class's training count; load_digits has 174..183 images per class
    n_max = train.class_counts[0]
    assert 100 <= n_max <= 125
    assert train.class_counts == long_tailed_counts(n_max, 10, 10)
    assert len(train) == sum(train.class_counts) == len(train.targets)
    assert np.bincount(train.targets, minlength=10).tolist() == train.class_counts
    assert min(train.targets) >= 0 and max(train.targets) <= 9
    assert train.images.min() >= -1.0 and train.images.max() <= 1.0
    # the 3 channels are copies of the grayscale image
    assert torch.equal(train.images[:, 0], train.images[:, 2])


def test_digits_lt_test_split_balanced_and_plain(digits):
    train, test = digits
    counts = test.class_counts
    assert 600 <= len(test) <= 660  # about 35% of 1,797
    assert max(counts) - min(counts) <= 4
    assert test.transform is None
    x, y = test[3]
    assert torch.equal(x, test.images[3]) and y == test.targets[3]
    # train and test are disjoint parts of one stratified split: train (balanced) + test = 1,797
    full_train = create_dataset("digits_lt", imb_ratio=1)
    assert len(set(full_train.class_counts)) == 1
    assert len(full_train) == 10 * min(full_train.class_counts)


def test_digits_lt_train_augmentation_is_cheap_and_random(digits):
    train, _ = digits
    torch.manual_seed(0)
    a = torch.stack([train[0][0] for _ in range(10)])
    assert any(not torch.equal(a[0], a[i]) for i in range(1, 10))
    start = time.perf_counter()
    for i in range(len(train)):
        train[i]
    assert (time.perf_counter() - start) / len(train) < 1e-3


def test_digits_lt_selection_and_seed():
    first = create_dataset("digits_lt", imb_ratio=10)
    rand = create_dataset("digits_lt", imb_ratio=10, selection="random")
    assert first.class_counts == rand.class_counts
    assert not torch.equal(first.images, rand.images)
    other = create_dataset("digits_lt", split="test", seed=1)
    assert not torch.equal(other.images[:20], create_dataset("digits_lt", split="test").images[:20])


def test_digits_lt_step_profile():
    ds = create_dataset("digits_lt", imb_ratio=10, profile="step")
    n = ds.class_counts[0]
    assert ds.class_counts == [n] * 5 + [n // 10] * 5


def test_subset_keeps_interface(digits):
    train, _ = digits
    sub = train.subset([0, 5, len(train) - 1], transform=None)
    assert len(sub) == 3
    assert sub.targets == [train.targets[0], train.targets[5], train.targets[-1]]
    assert sum(sub.class_counts) == 3 and sub.num_classes == 10
    assert torch.equal(sub[2][0], train.images[-1])
    with pytest.raises(ValueError, match="indices"):
        train.subset([len(train)])


@pytest.mark.parametrize("line", ["../outside.png 0", "/etc/passwd 0", "a/../../outside.png 1"])
def test_reliability_split_list_paths_outside_root_are_refused(tmp_path, line):
    from ltzoo.data import create_dataset

    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    (root / "list.txt").write_text(f"a/ok.png 0\n{line}\n")
    with pytest.raises(ValueError, match=r"list\.txt: path '.*' lies outside root="):
        create_dataset("split_list", root=str(root), split="test", list_file="list.txt")


def test_reliability_split_list_num_classes_is_capped(tmp_path):
    from ltzoo.data import create_dataset

    (tmp_path / "list.txt").write_text("a.png 0\nb.png 5000000\n")
    with pytest.raises(ValueError, match=r"num_classes\) must be at most 1,000,000"):
        create_dataset("split_list", root=str(tmp_path), split="test", list_file="list.txt")
