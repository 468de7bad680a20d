"""Per-class selection: LDAM-DRW's random choice, first-n, and LTSSL labeled/unlabeled splits."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ltzoo.data import long_tailed_counts, ltssl_counts, ltssl_split, select_per_class


def _ldam_reference(targets, counts, seed=0):
    """LDAM-DRW's IMBALANCECIFAR10.gen_imbalanced_data, written out with the global numpy RNG."""
    np.random.seed(seed)
    targets_np = np.array(targets, dtype=np.int64)
    kept = []
    for the_class, the_img_num in zip(np.unique(targets_np), counts):
        idx = np.where(targets_np == the_class)[0]
        np.random.shuffle(idx)
        kept.append(idx[:the_img_num])
    return kept


def _cifar_like_targets(per_class=60, num_classes=10, seed=1):
    rng = np.random.default_rng(seed)
    return rng.permutation(np.repeat(np.arange(num_classes), per_class))


def test_first_mode_keeps_first_of_each_class():
    targets = [0, 1, 0, 2, 1, 0, 2, 2, 0]
    idx = select_per_class(targets, [2, 1, 3])
    assert idx.tolist() == [0, 2, 1, 3, 6, 7]


def test_random_mode_equals_ldam_global_shuffles():
    targets = _cifar_like_targets()
    counts = long_tailed_counts(60, 10, 10)
    ours = select_per_class(targets, counts, mode="random", seed=0)
    ref = _ldam_reference(targets, counts, seed=0)
    expected = np.concatenate([np.sort(r) for r in ref])
    np.testing.assert_array_equal(ours, expected)
    # sorted by class then position
    t = np.asarray(targets)[ours]
    assert np.all(np.diff(t) >= 0)
    for c in range(10):
        assert np.all(np.diff(ours[t == c]) > 0)


def test_random_mode_seed_matters_and_is_reproducible():
    targets = _cifar_like_targets()
    counts = [30] * 10
    a = select_per_class(targets, counts, mode="random", seed=0)
    b = select_per_class(targets, counts, mode="random", seed=0)
    c = select_per_class(targets, counts, mode="random", seed=1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert not np.array_equal(a, select_per_class(targets, counts, mode="first"))


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_selection_properties(data):
    num_classes = data.draw(st.integers(1, 6))
    targets = np.array(data.draw(st.lists(st.integers(0, num_classes - 1), min_size=1, max_size=80)))
    available = np.bincount(targets, minlength=num_classes)
    counts = [data.draw(st.integers(0, int(a))) for a in available]
    mode = data.draw(st.sampled_from(["first", "random"]))
    idx = select_per_class(targets, counts, mode=mode, seed=data.draw(st.integers(0, 10)))
    assert len(np.unique(idx)) == len(idx) == sum(counts)
    assert np.bincount(targets[idx], minlength=num_classes).tolist() == counts
    if mode == "first":
        for c in range(num_classes):
            assert idx[targets[idx] == c].tolist() == np.flatnonzero(targets == c)[: counts[c]].tolist()


def test_too_few_images_names_counts_and_class():
    targets = [0, 0, 1, 2, 2, 2, 3]
    with pytest.raises(ValueError, match=r"counts.*class 3"):
        select_per_class(targets, [1, 1, 1, 2])


@pytest.mark.parametrize(
    "counts, match",
    [([1, -1, 0], "counts"), ([1.5, 0, 0], "counts"), ([1, 1], "targets")],
)
def test_bad_counts(counts, match):
    with pytest.raises(ValueError, match=match):
        select_per_class([0, 1, 2, 2], counts)


def test_bad_mode_and_seed():
    with pytest.raises(ValueError, match="mode"):
        select_per_class([0, 1], [1, 1], mode="shuffle")
    with pytest.raises(ValueError, match="seed"):
        select_per_class([0, 1], [1, 1], mode="random", seed=-1)


def test_ltssl_split_disjoint_and_counts():
    targets = _cifar_like_targets(per_class=200)
    lab_counts, unl_counts = ltssl_counts(100, 90, 10, 10, 1 / 10)
    lab, unl = ltssl_split(targets, lab_counts, unl_counts, seed=3)
    assert set(lab.tolist()).isdisjoint(unl.tolist())
    assert np.bincount(targets[lab], minlength=10).tolist() == lab_counts
    assert np.bincount(targets[unl], minlength=10).tolist() == unl_counts
    lab2, unl2 = ltssl_split(targets, lab_counts, unl_counts, seed=3)
    np.testing.assert_array_equal(lab, lab2)
    np.testing.assert_array_equal(unl, unl2)


def test_ltssl_split_matches_darp_style_reference():
    targets = _cifar_like_targets(per_class=50, num_classes=4)
    lab_counts, unl_counts = [10, 8, 6, 4], [5, 10, 20, 40]
    np.random.seed(0)
    ref_l, ref_u = [], []
    for c in range(4):
        idx = np.where(targets == c)[0]
        np.random.shuffle(idx)
        ref_l.append(np.sort(idx[:lab_counts[c]]))
        ref_u.append(np.sort(idx[lab_counts[c]:lab_counts[c] + unl_counts[c]]))
    lab, unl = ltssl_split(targets, lab_counts, unl_counts, seed=0)
    np.testing.assert_array_equal(lab, np.concatenate(ref_l))
    np.testing.assert_array_equal(unl, np.concatenate(ref_u))


def test_ltssl_split_errors():
    targets = [0] * 5 + [1] * 5
    with pytest.raises(ValueError, match="class 1"):
        ltssl_split(targets, [2, 3], [3, 3])
    with pytest.raises(ValueError, match="unlabeled_counts"):
        ltssl_split(targets, [2, 3], [3])
    with pytest.raises(ValueError, match="labeled_counts"):
        ltssl_split(targets, [2, -3], [3, 0])
