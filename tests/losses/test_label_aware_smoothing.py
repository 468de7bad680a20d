"""Label-aware smoothing ("label_aware_smoothing"): MiSLAS's per-class eps, written out by hand here."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import ltzoo
from ltzoo.losses.label_aware_smoothing import LabelAwareSmoothingLoss, label_aware_epsilons

COUNTS = [500, 200, 50, 10, 2]


def _hand_eps(counts, eh, et, shape):
    n1, nk = max(counts), min(counts)
    out = []
    for n in counts:
        r = (n - nk) / (n1 - nk)
        if shape == "concave":
            out.append(et + (eh - et) * math.sin(math.pi * r / 2))
        elif shape == "linear":
            out.append(et + (eh - et) * r)
        else:  # convex: sin(3pi/2 + x) = -cos(x)
            out.append(et + (eh - et) * (1 - math.cos(math.pi * r / 2)))
    return out


@pytest.mark.parametrize("shape", ["concave", "linear", "convex"])
def test_fidelity_las_epsilons_follow_mislas_shapes(shape):
    eps = label_aware_epsilons(COUNTS, eps_head=0.4, eps_tail=0.1, shape=shape)
    assert np.allclose(eps, _hand_eps(COUNTS, 0.4, 0.1, shape))
    assert eps[0] == pytest.approx(0.4) and eps[-1] == pytest.approx(0.1)  # head gets eps_head, tail eps_tail
    assert np.all(np.diff(eps) <= 0)  # more images, more smoothing


def test_fidelity_las_shapes_order_concave_above_linear_above_convex():
    mid = [label_aware_epsilons(COUNTS, 0.3, 0.0, s)[2] for s in ("concave", "linear", "convex")]
    assert mid[0] > mid[1] > mid[2]


def _hand_loss(logits, y, eps_of_class):
    k = logits.shape[1]
    logp = logits.log_softmax(1)
    q = torch.zeros_like(logp)
    for i, c in enumerate(y.tolist()):
        q[i] = eps_of_class[c] / k
        q[i, c] += 1 - eps_of_class[c]
    return -(q * logp).sum(1)


def test_fidelity_las_loss_is_ce_against_the_per_class_smoothed_target():
    torch.manual_seed(0)
    logits, y = torch.randn(8, 5, dtype=torch.float64), torch.tensor([0, 1, 2, 3, 4, 4, 0, 2])
    loss = ltzoo.create_loss("label_aware_smoothing", class_counts=COUNTS, reduction="none")
    eps = _hand_eps(COUNTS, 0.3, 0.0, "concave")  # BTM's config defaults: 0.3 / 0.0, concave
    assert torch.allclose(loss(logits, y), _hand_loss(logits, y, eps))
    assert torch.allclose(LabelAwareSmoothingLoss(COUNTS)(logits, y), _hand_loss(logits, y, eps).mean())


def test_fidelity_las_with_equal_eps_is_plain_label_smoothing():
    logits, y = torch.randn(6, 5), torch.tensor([0, 1, 2, 3, 4, 1])
    same = LabelAwareSmoothingLoss(COUNTS, eps_head=0.2, eps_tail=0.2)
    assert torch.allclose(same(logits, y), F.cross_entropy(logits, y, label_smoothing=0.2), atol=1e-6)
    none = LabelAwareSmoothingLoss(COUNTS, eps_head=0.0, eps_tail=0.0)
    assert torch.allclose(none(logits, y), F.cross_entropy(logits, y), atol=1e-6)


def test_las_eps_buffer_moves_and_saves():
    loss = LabelAwareSmoothingLoss(COUNTS)
    assert "eps" in loss.state_dict() and loss.eps.shape == (5,)


@pytest.mark.parametrize("kwargs,err,match", [
    ({"eps_head": 1.5}, ValueError, "eps_head"),
    ({"eps_tail": -0.1}, ValueError, "eps_tail"),
    ({"shape": "round"}, ValueError, "shape"),
    ({"class_counts": None}, ValueError, "class_counts"),
    ({"class_counts": [3, -1, 2, 1, 1]}, ValueError, "class_counts"),
])
def test_las_bad_arguments(kwargs, err, match):
    with pytest.raises(err, match=match):
        LabelAwareSmoothingLoss(**{"class_counts": COUNTS, **kwargs})


def test_las_checks_logits_against_class_count():
    with pytest.raises(ValueError, match="logits"):
        LabelAwareSmoothingLoss(COUNTS)(torch.randn(2, 4), torch.tensor([0, 1]))
