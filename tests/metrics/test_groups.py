"""Group split records: the conventional CIFAR-LT index splits, validation, and summaries that use them."""
import numpy as np
import pytest

from ltzoo.metrics import (
    CIFAR10_SPLIT,
    CIFAR100_SPLIT,
    THRESHOLD_SPLIT,
    check_group_split,
    conventional_split,
    describe_split,
    harmonic_mean,
    summarize,
)

CIFAR10_LT_100 = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]


def _owners(split, k):
    owner = np.full(k, -1)
    for gi, name in enumerate(("many", "medium", "few")):
        lo, hi = split["ranges"][name]
        assert np.all(owner[lo:hi + 1] == -1)
        owner[lo:hi + 1] = gi
    return owner


def test_fidelity_cifar_conventional_splits_are_the_bmls_paper_index_ranges():
    assert conventional_split("cifar10", 10) == {"ranges": {"many": [0, 2], "medium": [3, 6], "few": [7, 9]}}
    assert conventional_split("cifar100", 100) == {"ranges": {"many": [0, 35], "medium": [36, 70],
                                                              "few": [71, 99]}}
    # each is a partition of the classes: every class in exactly one group, sizes 3/4/3 and 36/35/29
    assert np.bincount(_owners(CIFAR10_SPLIT, 10)).tolist() == [3, 4, 3]
    assert np.bincount(_owners(CIFAR100_SPLIT, 100)).tolist() == [36, 35, 29]
    assert conventional_split("imagenet_lt", 1000) == THRESHOLD_SPLIT
    assert conventional_split("cifar10", 100) == THRESHOLD_SPLIT  # ranges only at the family's own K


def test_fidelity_summary_with_index_groups_equals_per_class_means_by_hand():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 10, 500)
    y_pred = np.where(rng.random(500) < 0.6, y_true, rng.integers(0, 10, 500))
    s = summarize(y_true, y_pred, CIFAR10_LT_100, groups=CIFAR10_SPLIT)
    recall = [np.mean(y_pred[y_true == c] == c) for c in range(10)]
    assert s["many"] == pytest.approx(100 * np.mean(recall[0:3]))
    assert s["medium"] == pytest.approx(100 * np.mean(recall[3:7]))
    assert s["few"] == pytest.approx(100 * np.mean(recall[7:10]))
    assert s["groups"] == CIFAR10_SPLIT
    # by thresholds the same counts give 0-7 many (> 100 images), 8-9 medium and no few class
    t = summarize(y_true, y_pred, CIFAR10_LT_100)
    assert t["many"] == pytest.approx(100 * np.mean(recall[0:8])) and t["few"] is None
    assert t["groups"] == THRESHOLD_SPLIT


def test_fidelity_lowest_recall_unclamped_while_hmean_gmean_keep_the_clamp():
    y_true = np.repeat(np.arange(4), 10)
    y_pred = y_true.copy()
    y_pred[y_true == 3] = 0  # class 3 never recalled
    y_pred[:5] = 1  # class 0 at 50%
    s = summarize(y_true, y_pred, [40, 30, 20, 10])
    assert s["lowest"] == 0.0
    r = np.array([0.5, 1.0, 1.0, 1e-3])  # the clamp for the means only
    assert s["hmean"] == pytest.approx(100 * len(r) / np.sum(1 / r))
    assert s["gmean"] == pytest.approx(100 * np.exp(np.mean(np.log(r))))
    assert s["hmean"] == pytest.approx(100 * harmonic_mean([0.5, 1.0, 1.0, 0.0]))


def test_group_split_validation_names_the_problem():
    with pytest.raises(ValueError, match="overlaps"):
        check_group_split({"ranges": {"many": [0, 5], "few": [5, 9]}}, 10)
    with pytest.raises(ValueError, match="num_classes=10"):
        check_group_split({"ranges": {"few": [7, 10]}}, 10)
    with pytest.raises(ValueError, match="single key 'ranges' or the keys"):
        check_group_split({"ranges": {"few": [7, 9]}, "many_threshold": 3})
    with pytest.raises(ValueError, match="must not exceed"):
        check_group_split({"many_threshold": 10, "few_threshold": 20})
    with pytest.raises(TypeError, match="groups must be a dict"):
        check_group_split([0, 2])
    assert check_group_split({"few_threshold": 5}) == {"many_threshold": 100.0, "few_threshold": 5.0}


def test_describe_split_lines():
    assert describe_split(CIFAR10_SPLIT) == "many / medium / few = classes 0-2 / 3-6 / 7-9"
    assert describe_split(THRESHOLD_SPLIT) == "many / medium / few = > 100 / 20-100 / < 20 training images"
