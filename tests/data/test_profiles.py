"""Per-class count profiles against the published CIFAR-LT numbers and the formulas."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ltzoo.data import long_tailed_counts, ltssl_counts

CIFAR10_LT_100 = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]  # LDAM-DRW, MiSLAS, ...


def test_cifar10_lt_gamma100_published_counts():
    counts = long_tailed_counts(5000, 10, 100)
    assert counts == CIFAR10_LT_100
    assert sum(counts) == 12406
    assert all(type(c) is int for c in counts)


def test_cifar100_lt_gamma100_first_and_last():
    counts = long_tailed_counts(500, 100, 100)
    assert len(counts) == 100
    assert counts[0] == 500 and counts[-1] == 5
    assert sum(counts) == 10847  # the CIFAR-100-LT (gamma 100) size reported by LDAM-DRW followers


def test_cifar10_lt_gamma10_and_gamma50_ends():
    assert long_tailed_counts(5000, 10, 10)[-1] == 500
    assert long_tailed_counts(5000, 10, 50)[-1] == 100


def test_single_class_and_balanced():
    assert long_tailed_counts(7, 1, 100) == [7]
    assert long_tailed_counts(7, 1, 100, profile="step") == [7]
    assert long_tailed_counts(123, 6, 1) == [123] * 6


@settings(max_examples=200, deadline=None)
@given(
    n_max=st.integers(1, 20000),
    num_classes=st.integers(2, 300),
    ratio=st.floats(1.0, 1000.0, allow_nan=False, allow_infinity=False),
)
def test_exp_profile_matches_formula(n_max, num_classes, ratio):
    counts = long_tailed_counts(n_max, num_classes, ratio)
    assert len(counts) == num_classes
    assert counts[0] == n_max
    assert all(a >= b for a, b in zip(counts, counts[1:])), "not monotone non-increasing"
    assert abs(counts[-1] - int(n_max / ratio)) <= 1
    for c, n_c in enumerate(counts):
        exact = n_max * ratio ** (-c / (num_classes - 1))
        # floor of the exact value, up to one unit of float rounding at integer boundaries
        assert math.floor(exact) - 1 <= n_c <= math.floor(exact + 1e-6), (c, n_c, exact)


def test_step_profile():
    assert long_tailed_counts(5000, 10, 10, profile="step") == [5000] * 5 + [500] * 5
    assert long_tailed_counts(500, 100, 100, profile="step") == [500] * 50 + [5] * 50
    # odd C: LDAM-DRW keeps C // 2 majority classes
    assert long_tailed_counts(100, 5, 10, profile="step") == [100, 100, 10, 10, 10]
    assert long_tailed_counts(100, 10, 4, profile="step", minority_fraction=0.3) == [100] * 7 + [25] * 3
    assert long_tailed_counts(100, 4, 4, profile="step", minority_fraction=0.0) == [100] * 4


def test_ltssl_consistent_uniform_reversed():
    lab, consistent = ltssl_counts(1500, 3000, 10, 100, 100)
    assert lab == long_tailed_counts(1500, 10, 100)
    assert lab[0] == 1500 and lab[-1] == 15
    assert consistent[0] == 3000 and consistent[-1] == 30
    assert consistent == long_tailed_counts(3000, 10, 100)

    lab_u, uniform = ltssl_counts(1500, 3000, 10, 100, 1)
    assert lab_u == lab
    assert uniform == [3000] * 10

    lab_r, reversed_ = ltssl_counts(1500, 3000, 10, 100, 1 / 100)
    assert lab_r == lab
    assert reversed_ == consistent[::-1]
    assert reversed_[0] == 30 and reversed_[-1] == 3000


def test_ltssl_no_unlabeled():
    assert ltssl_counts(10, 0, 3, 2, 2)[1] == [0, 0, 0]


@pytest.mark.parametrize(
    "kwargs, arg",
    [
        (dict(n_max=0, num_classes=10, imb_ratio=10), "n_max"),
        (dict(n_max=1.5, num_classes=10, imb_ratio=10), "n_max"),
        (dict(n_max=10, num_classes=0, imb_ratio=10), "num_classes"),
        (dict(n_max=10, num_classes=10, imb_ratio=0.5), "imb_ratio"),
        (dict(n_max=10, num_classes=10, imb_ratio=float("nan")), "imb_ratio"),
        (dict(n_max=10, num_classes=10, imb_ratio=float("inf")), "imb_ratio"),
        (dict(n_max=10, num_classes=10, imb_ratio=10, profile="linear"), "profile"),
        (dict(n_max=10, num_classes=10, imb_ratio=10, profile="step", minority_fraction=1.5), "minority_fraction"),
    ],
)
def test_long_tailed_counts_rejects_bad_arguments(kwargs, arg):
    with pytest.raises(ValueError, match=arg):
        long_tailed_counts(**kwargs)


@pytest.mark.parametrize(
    "args, arg",
    [
        ((0, 10, 10, 100, 1), "n1"),
        ((10, -1, 10, 100, 1), "m1"),
        ((10, 10, 0, 100, 1), "num_classes"),
        ((10, 10, 10, 0.5, 1), "gamma_l"),
        ((10, 10, 10, 100, 0), "gamma_u"),
        ((10, 10, 10, 100, float("inf")), "gamma_u"),
    ],
)
def test_ltssl_counts_rejects_bad_arguments(args, arg):
    with pytest.raises(ValueError, match=arg):
        ltssl_counts(*args)
