import math

import pytest
import torch
import torch.nn.functional as F

import ltzoo
import ltzoo.losses.logit_adjusted  # noqa: F401  (registers the losses)
from ltzoo.losses.logit_adjusted import BalancedSoftmaxLoss, LogitAdjustedLoss, log_prior, posthoc_adjust

COUNTS = [500.0, 120.0, 30.0, 7.0]


@pytest.mark.parametrize("tau", [0.0, 0.5, 1.0, 2.0])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_la_equals_cross_entropy_on_shifted_logits(tau, reduction):
    torch.manual_seed(0)
    logits, target = torch.randn(6, 4), torch.tensor([0, 1, 2, 3, 3, 0])
    counts = torch.tensor(COUNTS, dtype=torch.float64)
    shift = tau * torch.log(counts / counts.sum())
    expected = F.cross_entropy(logits + shift.float(), target, reduction=reduction)
    loss = ltzoo.create_loss("logit_adjusted", class_counts=COUNTS, tau=tau, reduction=reduction)
    assert torch.allclose(loss(logits, target), expected, atol=1e-6)
    if tau > 0:  # the adjustment matters: the loss differs from plain CE
        assert not torch.allclose(loss(logits, target), F.cross_entropy(logits, target, reduction=reduction))


def test_balanced_softmax_equals_la_at_tau_one_values_and_gradients():
    torch.manual_seed(1)
    target = torch.tensor([0, 3, 3, 2, 1])
    base = torch.randn(5, 4)
    grads, values = [], []
    for loss in (ltzoo.create_loss("balanced_softmax", class_counts=COUNTS),
                 ltzoo.create_loss("logit_adjusted", class_counts=COUNTS, tau=1.0)):
        logits = base.clone().requires_grad_(True)
        value = loss(logits, target)
        value.backward()
        values.append(value.detach())
        grads.append(logits.grad)
    assert torch.allclose(values[0], values[1], atol=1e-6)
    assert torch.allclose(grads[0], grads[1], atol=1e-7)
    # the offsets themselves differ by the constant log(sum n)
    bs, la = BalancedSoftmaxLoss(COUNTS), LogitAdjustedLoss(COUNTS)
    assert torch.allclose(bs.adjustment() - la.adjustment(), torch.full((4,), math.log(sum(COUNTS))), atol=1e-5)


def test_posthoc_on_balanced_training_changes_nothing():
    # a linear model trained with plain CE on balanced data, then corrected with its (uniform) prior
    torch.manual_seed(2)
    centers = torch.tensor([[2.0, 0.0], [-2.0, 0.0], [0.0, 2.0]])
    y = torch.arange(3).repeat_interleave(40)
    x = centers[y] + 0.8 * torch.randn(120, 2)
    model = torch.nn.Linear(2, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(50):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    with torch.no_grad():
        logits = model(x)
    counts = torch.bincount(y, minlength=3)
    adjusted = posthoc_adjust(logits, counts, tau=1.0)
    assert torch.equal(adjusted.argmax(1), logits.argmax(1))
    shift = adjusted - logits
    assert torch.allclose(shift, torch.full_like(shift, math.log(3.0)), atol=1e-6)


def test_posthoc_on_imbalanced_counts_favours_tail_classes():
    logits = torch.zeros(2, 4)
    adjusted = posthoc_adjust(logits, COUNTS, tau=1.0)
    assert torch.equal(adjusted.argmax(1), torch.tensor([3, 3]))
    # tail gains log(n_head / n_tail) over head, scaled by tau
    gap = posthoc_adjust(logits, COUNTS, tau=0.5)[0, 3] - posthoc_adjust(logits, COUNTS, tau=0.5)[0, 0]
    assert gap.item() == pytest.approx(0.5 * math.log(500.0 / 7.0), rel=1e-5)
    # a near tie between head and tail flips to the tail
    close = torch.tensor([[1.0, 0.0, 0.0, 0.9]])
    assert posthoc_adjust(close, COUNTS).argmax(1).item() == 3
    assert torch.allclose(log_prior(COUNTS).exp().sum(), torch.tensor(1.0))


@pytest.mark.parametrize("name", ["logit_adjusted", "balanced_softmax"])
def test_extreme_counts_give_finite_loss_and_gradients(name):
    counts = [5000.0, 1.0, 2500.0]
    loss = ltzoo.create_loss(name, class_counts=counts)
    logits = (30.0 * torch.randn(8, 3)).requires_grad_(True)
    target = torch.tensor([0, 1, 1, 2, 0, 1, 2, 1])
    value = loss(logits, target)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(logits.grad).all()


@pytest.mark.parametrize("name", ["logit_adjusted", "balanced_softmax"])
@pytest.mark.parametrize("counts", [[10, 0, 5], [10, -1, 5], [10, float("nan"), 5], [10, float("inf"), 5]])
def test_bad_counts_raise_naming_class_counts(name, counts):
    with pytest.raises(ValueError, match="class_counts"):
        ltzoo.create_loss(name, class_counts=counts)


def test_wrong_length_counts_raise():
    with pytest.raises(ValueError, match="class_counts"):
        ltzoo.create_loss("logit_adjusted", class_counts=[3, 2], num_classes=3)
    loss = ltzoo.create_loss("logit_adjusted", class_counts=[3, 2])
    with pytest.raises(ValueError, match="class_counts"):
        loss(torch.randn(2, 3), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="class_counts"):
        posthoc_adjust(torch.randn(2, 3), [3, 2])


def test_bad_arguments():
    with pytest.raises(ValueError, match="tau"):
        LogitAdjustedLoss(COUNTS, tau=float("nan"))
    with pytest.raises(ValueError, match="reduction"):
        LogitAdjustedLoss(COUNTS, reduction="avg")
    loss = LogitAdjustedLoss(COUNTS)
    with pytest.raises(TypeError, match="target"):
        loss(torch.randn(2, 4), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="target"):
        loss(torch.randn(2, 4), torch.tensor([0, 1, 2]))


def test_counts_are_a_buffer_that_moves_and_saves():
    loss = LogitAdjustedLoss(COUNTS, tau=1.5)
    assert torch.equal(loss.state_dict()["class_counts"], torch.tensor(COUNTS))
    other = LogitAdjustedLoss([1.0, 1.0, 1.0, 1.0], tau=1.5)
    other.load_state_dict(loss.state_dict())
    logits, target = torch.randn(3, 4), torch.tensor([0, 1, 3])
    assert torch.allclose(other(logits, target), loss(logits, target))
    assert loss.double().class_counts.dtype == torch.float64


def test_reliability_numpy_and_0d_tensor_tau_work_like_floats():
    import numpy as np

    counts = [100, 10, 1]
    logits, target = torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    expected = F.cross_entropy(logits + torch.log(torch.tensor(counts) / 111.0), target)  # tau = 1 by hand
    for tau in (np.float32(1.0), np.float64(1.0), np.int64(1), torch.tensor(1.0)):
        assert torch.allclose(LogitAdjustedLoss(counts, tau=tau)(logits, target), expected, atol=1e-6)
    with pytest.raises(ValueError, match="tau must be a finite number >= 0"):
        LogitAdjustedLoss(counts, tau=np.float32(-1.0))


def test_reliability_empty_batch_with_mean_reduction_is_refused():
    loss = LogitAdjustedLoss([100, 10, 1])
    with pytest.raises(ValueError, match=r"empty batch \(0 samples\) with reduction='mean'"):
        loss(torch.empty(0, 3), torch.empty(0, dtype=torch.long))
    per_sample = LogitAdjustedLoss([100, 10, 1], reduction="none")(torch.empty(0, 3), torch.empty(0, dtype=torch.long))
    assert per_sample.shape == (0,)  # recipes' empty selections keep working
