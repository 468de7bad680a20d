"""Tests for ltzoo.metrics, checked against scipy, hand-written values and brute-force loops."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ltzoo.metrics import (
    class_groups,
    confusion_matrix,
    evaluate,
    geometric_mean,
    harmonic_mean,
    per_class_recall,
    summarize,
)

CIFAR10_LT_100 = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]


def _brute_recalls(y_true, y_pred, k):
    """Per-class recall (fraction or None) by explicit loops."""
    out = []
    for c in range(k):
        idx = [i for i, t in enumerate(y_true) if t == c]
        out.append(None if not idx else sum(y_pred[i] == c for i in idx) / len(idx))
    return out


# ---------------------------------------------------------------- confusion / recall


def test_confusion_matrix_matches_hand_written():
    y_true = [0, 0, 1, 1, 1, 2, 2, 0]
    y_pred = [0, 1, 1, 1, 2, 0, 2, 0]
    expected = np.array([[2, 1, 0], [0, 2, 1], [1, 0, 1]])
    cm = confusion_matrix(y_true, y_pred, 3)
    assert cm.dtype == np.int64
    np.testing.assert_array_equal(cm, expected)


def test_confusion_matrix_accepts_numpy_and_torch():
    y_true = [0, 2, 2, 1]
    y_pred = [2, 2, 0, 1]
    expected = np.array([[0, 0, 1], [0, 1, 0], [1, 0, 1]])
    np.testing.assert_array_equal(confusion_matrix(np.array(y_true), torch.tensor(y_pred), 3), expected)


def test_per_class_recall_absent_class_is_nan():
    r = per_class_recall([0, 0, 2, 2], [0, 1, 2, 2], 3)
    np.testing.assert_allclose(r[[0, 2]], [0.5, 1.0])
    assert np.isnan(r[1])


# ---------------------------------------------------------------- means


@pytest.mark.parametrize("recalls", [[0.9, 0.5, 0.25, 1.0], [0.0, 0.5, 1.0], [0.0, 0.0004, 0.2]])
def test_hmean_gmean_match_scipy_on_clamped(recalls):
    clamped = np.maximum(np.asarray(recalls), 1e-3)
    assert harmonic_mean(recalls) == pytest.approx(stats.hmean(clamped), rel=1e-12)
    assert geometric_mean(recalls) == pytest.approx(stats.gmean(clamped), rel=1e-12)


def test_zero_recall_is_clamped_not_zero():
    assert harmonic_mean([0.0, 1.0]) == pytest.approx(2 / (1 / 1e-3 + 1))
    assert geometric_mean([0.0, 1.0]) == pytest.approx(np.sqrt(1e-3))
    assert geometric_mean([0.0, 1.0], clamp=0.01) == pytest.approx(0.1)


@pytest.mark.parametrize(
    "recalls, match",
    [([], "recalls"), ([0.5, 50.0], "recalls.*fractions"), ([0.5, float("nan")], "recalls"), ([[0.5]], "recalls")],
)
def test_means_reject_bad_recalls(recalls, match):
    with pytest.raises(ValueError, match=match):
        harmonic_mean(recalls)
    with pytest.raises(ValueError, match=match):
        geometric_mean(recalls)


@pytest.mark.parametrize("clamp", [0.0, -1e-3, 1.5])
def test_means_reject_bad_clamp(clamp):
    with pytest.raises(ValueError, match="clamp"):
        harmonic_mean([0.5], clamp=clamp)


# ---------------------------------------------------------------- groups


def test_groups_default_thresholds_cifar10_lt():
    g = class_groups(CIFAR10_LT_100)
    assert set(g) == {"many", "medium", "few"}
    np.testing.assert_array_equal(g["many"], np.arange(8))
    np.testing.assert_array_equal(g["medium"], [8, 9])
    assert g["few"].size == 0


def test_groups_threshold_boundaries_are_imagenet_lt():
    # >100 many, 20..100 medium (both ends inclusive), <20 few
    g = class_groups([101, 100, 20, 19, 0])
    np.testing.assert_array_equal(g["many"], [0])
    np.testing.assert_array_equal(g["medium"], [1, 2])
    np.testing.assert_array_equal(g["few"], [3, 4])


def test_groups_explicit_ranges():
    g = class_groups(CIFAR10_LT_100, ranges={"many": (0, 2), "medium": (3, 6), "few": (7, 9)})
    np.testing.assert_array_equal(g["many"], [0, 1, 2])
    np.testing.assert_array_equal(g["medium"], [3, 4, 5, 6])
    np.testing.assert_array_equal(g["few"], [7, 8, 9])


@pytest.mark.parametrize(
    "ranges",
    [
        {"many": (0, 2), "medium": (3, 6), "few": (7, 10)},  # out of bounds
        {"many": (-1, 2)},  # negative
        {"many": (2, 0)},  # lo > hi
        {"many": (0, 4), "medium": (4, 6)},  # overlap
        {"many": (0, 2), "tail": (3, 9)},  # unknown name
        {"many": (0, 1, 2)},  # not a pair
        {"many": (0.0, 2.0)},  # not integers
    ],
)
def test_groups_bad_ranges(ranges):
    with pytest.raises(ValueError, match="ranges"):
        class_groups(CIFAR10_LT_100, ranges=ranges)


def test_groups_bad_thresholds():
    with pytest.raises(ValueError, match="few_threshold"):
        class_groups(CIFAR10_LT_100, many_threshold=10, few_threshold=20)


# ---------------------------------------------------------------- summarize


def test_summarize_against_brute_force():
    rng = np.random.default_rng(0)
    k = 10
    y_true = rng.integers(0, k, size=300)
    y_pred = np.where(rng.random(300) < 0.6, y_true, rng.integers(0, k, size=300))
    s = summarize(y_true, y_pred, CIFAR10_LT_100)

    top1 = 100 * sum(int(t == p) for t, p in zip(y_true, y_pred)) / len(y_true)
    rec = _brute_recalls(list(y_true), list(y_pred), k)
    assert s["top1"] == pytest.approx(top1)
    assert s["num_samples"] == 300
    assert s["per_class"] == pytest.approx([100 * r for r in rec])
    assert s["mean_recall"] == pytest.approx(100 * np.mean(rec))
    assert s["many"] == pytest.approx(100 * np.mean(rec[:8]))
    assert s["medium"] == pytest.approx(100 * np.mean(rec[8:]))
    assert s["few"] is None
    clamped = np.maximum(rec, 1e-3)
    assert s["hmean"] == pytest.approx(100 * stats.hmean(clamped))
    assert s["gmean"] == pytest.approx(100 * stats.gmean(clamped))
    assert s["lowest"] == pytest.approx(100 * min(rec))


def test_summarize_explicit_ranges_and_zero_recall_class():
    # class c has 2 samples; class 9 is always wrong, class 0 half right
    y_true = np.repeat(np.arange(10), 2)
    y_pred = y_true.copy()
    y_pred[[1]] = 5  # class 0: recall 0.5
    y_pred[[18, 19]] = 0  # class 9: recall 0
    ranges = {"many": (0, 2), "medium": (3, 6), "few": (7, 9)}
    s = summarize(y_true, y_pred, CIFAR10_LT_100, ranges=ranges)
    assert s["many"] == pytest.approx(100 * (0.5 + 1 + 1) / 3)
    assert s["medium"] == pytest.approx(100.0)
    assert s["few"] == pytest.approx(100 * (1 + 1 + 0) / 3)
    assert s["lowest"] == 0.0  # unclamped: the class is never recalled
    rec = np.array([0.5] + [1.0] * 8 + [1e-3])
    assert s["hmean"] == pytest.approx(100 * stats.hmean(rec))
    assert s["gmean"] == pytest.approx(100 * stats.gmean(rec))
    assert s["top1"] == pytest.approx(100 * 17 / 20)


def test_summarize_class_without_test_samples_is_excluded():
    counts = [500, 50, 5]
    y_true = [0, 0, 0, 0, 1, 1]  # class 2 (few) has no test sample
    y_pred = [0, 0, 0, 1, 1, 0]
    s = summarize(y_true, y_pred, counts)
    assert s["per_class"] == pytest.approx([75.0, 50.0, None])
    assert s["few"] is None
    assert s["mean_recall"] == pytest.approx(62.5)
    assert s["hmean"] == pytest.approx(100 * stats.hmean([0.75, 0.5]))
    assert s["lowest"] == pytest.approx(50.0)
    json.dumps(s, allow_nan=False)  # no NaN anywhere


def test_summarize_returns_plain_python_types():
    s = summarize(torch.tensor([0, 1, 1]), np.array([0, 1, 0]), torch.tensor([200.0, 10.0]))
    for key in ("top1", "many", "few", "hmean", "gmean", "lowest", "mean_recall"):
        assert type(s[key]) is float, key
    assert s["medium"] is None
    assert type(s["num_samples"]) is int
    assert all(type(v) is float for v in s["per_class"])
    json.dumps(s, allow_nan=False)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(class_counts=[10, 10]), "class_counts"),  # wrong length for num_classes=3
        (dict(class_counts=[10, -1, 10]), "class_counts"),
        (dict(class_counts=[10, float("nan"), 10]), "class_counts"),
        (dict(y_true=[0, 1, 3]), "y_true"),
        (dict(y_pred=[0, -1, 2]), "y_pred"),
        (dict(y_pred=[0, 1]), "y_true and y_pred"),
        (dict(y_true=[], y_pred=[]), "y_true"),
        (dict(ranges={"many": (0, 3)}), "ranges"),
    ],
)
def test_summarize_bad_input(kwargs, match):
    args = dict(y_true=[0, 1, 2], y_pred=[0, 1, 1], class_counts=[10, 10, 10])
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        summarize(args.pop("y_true"), args.pop("y_pred"), args.pop("class_counts"), num_classes=3, **args)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 6).flatmap(
        lambda k: st.tuples(
            st.just(k),
            st.lists(st.tuples(st.integers(0, k - 1), st.integers(0, k - 1)), min_size=1, max_size=60),
        )
    )
)
def test_property_means_order_and_top1_is_support_weighted_recall(data):
    k, pairs = data
    y_true = [t for t, _ in pairs]
    y_pred = [p for _, p in pairs]
    s = summarize(y_true, y_pred, [1] * k)
    present = [r for r in s["per_class"] if r is not None]
    amean = np.mean(np.maximum(present, 0.1))  # clamped arithmetic mean, percent
    assert s["hmean"] <= s["gmean"] * (1 + 1e-9) + 1e-9
    assert s["gmean"] <= amean * (1 + 1e-9) + 1e-9
    support = np.bincount(y_true, minlength=k)
    weighted = sum(support[c] * s["per_class"][c] for c in range(k) if support[c]) / len(y_true)
    assert s["top1"] == pytest.approx(weighted)
    assert s["lowest"] == pytest.approx(min(present))
    cm = confusion_matrix(y_true, y_pred, k)
    assert cm.sum() == len(y_true)
    np.testing.assert_array_equal(cm.sum(axis=1), support)


# ---------------------------------------------------------------- evaluate


class _Recorder(nn.Module):
    """Linear classifier that records the mode and grad state it was called in."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.fc = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
        with torch.no_grad():
            self.fc.weight.copy_(weight)
        self.calls: list[tuple[bool, bool]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append((self.training, torch.is_grad_enabled()))
        return self.fc(x)


def _toy_data():
    # logits = x @ W.T with W = [[1,0],[0,1],[1,1]*0.6]; predictions computed by hand below
    w = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.6]])
    x = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0], [1.0, 0.9], [0.0, 3.0], [1.0, 0.95]])
    y = torch.tensor([0, 1, 2, 2, 2, 0])
    # logits: [2,0,1.2] [0,2,1.2] [1,1,1.2] [1,.9,1.14] [0,3,1.8] [1,.95,1.17]
    by_hand = [0, 1, 2, 2, 1, 2]
    return w, x, y, by_hand


@pytest.mark.parametrize("start_training", [True, False])
def test_evaluate_matches_summarize_and_restores_mode(start_training):
    w, x, y, by_hand = _toy_data()
    model = _Recorder(w).train(start_training)
    loader = DataLoader(TensorDataset(x, y, torch.arange(len(y))), batch_size=4)  # extra item ignored
    counts = [300, 50, 5]
    out = evaluate(model, loader, counts, progress=False)
    expected = summarize(y.tolist(), by_hand, counts)
    for key, val in expected.items():
        assert out[key] == pytest.approx(val) if val is not None else out[key] is None, key
    assert out["confusion_matrix"] == [[1, 0, 1], [0, 1, 0], [0, 1, 2]]
    assert out["class_counts"] == counts
    assert model.training is start_training
    assert model.calls and all(c == (False, False) for c in model.calls)
    json.dumps(out, allow_nan=False)


def test_evaluate_logit_adjustment_and_identity_model():
    # an Identity model turns inputs into logits; it has no parameters -> CPU default
    logits = torch.tensor([[2.0, 1.5, 0.0], [0.1, 0.0, 0.05], [0.0, 0.0, 1.0]])
    y = torch.tensor([1, 2, 2])
    adj = torch.tensor([1.0, 0.0, 0.0])
    loader = [(logits[:2], y[:2]), (logits[2:], y[2:])]
    plain = evaluate(nn.Identity(), loader, [10, 10, 10], progress=False)
    adjusted = evaluate(nn.Identity(), loader, [10, 10, 10], logit_adjustment=adj, progress=False)
    # argmax(logits) = [0, 0, 2]; argmax(logits - adj) = [1, 2, 2]
    assert plain["confusion_matrix"] == [[0, 0, 0], [1, 0, 0], [1, 0, 1]]
    assert adjusted["confusion_matrix"] == [[0, 0, 0], [0, 1, 0], [0, 0, 2]]
    assert adjusted["top1"] == pytest.approx(100.0)


def test_evaluate_shows_progress_bar(capsys):
    loader = [(torch.eye(2), torch.tensor([0, 1]))]
    evaluate(nn.Identity(), loader, [5, 5], progress=True)
    assert "evaluate" in capsys.readouterr().err
    evaluate(nn.Identity(), loader, [5, 5], progress=False)
    assert "evaluate" not in capsys.readouterr().err


def test_fidelity_evaluate_shows_progress_only_on_a_terminal(capsys, monkeypatch):
    import sys

    loader = [(torch.eye(2), torch.tensor([0, 1]))]
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    evaluate(nn.Identity(), loader, [5, 5])  # default: no bar when stderr is not a terminal (logs, CI)
    assert "evaluate" not in capsys.readouterr().err
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    evaluate(nn.Identity(), loader, [5, 5])
    assert "evaluate" in capsys.readouterr().err


def test_evaluate_restores_mode_on_error():
    model = _Recorder(torch.eye(2)).train()
    loader = [(torch.eye(2), torch.tensor([0, 5]))]  # label out of range
    with pytest.raises(ValueError, match="labels"):
        evaluate(model, loader, [5, 5], progress=False)
    assert model.training is True


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(logit_adjustment=torch.zeros(3)), "logit_adjustment"),
        (dict(class_counts=[5, -5]), "class_counts"),
        (dict(ranges={"many": (1, 0)}), "ranges"),
    ],
)
def test_evaluate_bad_input(kwargs, match):
    args = dict(class_counts=[5, 5])
    args.update(kwargs)
    loader = [(torch.eye(2), torch.tensor([0, 1]))]
    with pytest.raises(ValueError, match=match):
        evaluate(nn.Identity(), loader, args.pop("class_counts"), progress=False, **args)


def test_evaluate_rejects_wrong_logit_width():
    loader = [(torch.eye(3), torch.tensor([0, 1, 1]))]
    with pytest.raises(ValueError, match="num_classes"):
        evaluate(nn.Identity(), loader, [5, 5], progress=False)


def test_reliability_evaluate_refuses_nan_logits():
    class NaNModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(1))

        def forward(self, x):
            out = torch.zeros(x.shape[0], 3)
            out[0, 1] = float("nan")
            return out

    loader = DataLoader(TensorDataset(torch.zeros(4, 2), torch.tensor([0, 1, 2, 0])), batch_size=2)
    with pytest.raises(ValueError, match=r"NaN / infinite logits \(batch 0 of the loader\)"):
        evaluate(NaNModel(), loader, [10, 5, 1])
