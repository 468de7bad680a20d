import pytest
import torch
import torch.nn.functional as F

import ltzoo
import ltzoo.losses.class_balanced  # noqa: F401  (registers the losses)
from ltzoo.losses.class_balanced import ClassBalancedLoss, effective_number

COUNTS = [1000.0, 200.0, 40.0, 8.0, 1.0]


@pytest.mark.parametrize("beta", [0.9, 0.999, 0.9999])
def test_weights_sum_to_k_and_follow_inverse_effective_number(beta):
    loss = ltzoo.create_loss("class_balanced", class_counts=COUNTS, beta=beta)
    n = torch.tensor(COUNTS, dtype=torch.float64)
    raw = (1 - beta) / (1 - beta ** n)
    expected = raw / raw.sum() * len(COUNTS)
    assert loss.weights.sum().item() == pytest.approx(len(COUNTS), rel=1e-6)
    assert torch.allclose(loss.weights.double(), expected, rtol=1e-5)
    assert torch.all(loss.weights[1:] >= loss.weights[:-1]) and loss.weights[-1] > loss.weights[0]  # tail weighs more


def test_beta_zero_is_plain_cross_entropy():
    logits, target = torch.randn(6, 5), torch.tensor([0, 1, 2, 3, 4, 4])
    loss = ClassBalancedLoss(COUNTS, beta=0.0)
    assert torch.allclose(loss.weights, torch.ones(5))
    assert torch.allclose(loss(logits, target), F.cross_entropy(logits, target))


def test_effective_number_matches_formula():
    n = torch.tensor([1.0, 2.0, 10.0, 5000.0, 0.5])
    for beta in (0.5, 0.999, 0.9999):
        expected = (1 - torch.tensor(beta, dtype=torch.float64) ** n.double()) / (1 - beta)
        assert torch.allclose(effective_number(n, beta).double(), expected, rtol=1e-5)
    assert effective_number(torch.tensor([1.0]), 0.999).item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="beta"):
        effective_number(n, 1.0)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_loss_equals_manual_weighted_cross_entropy(reduction):
    torch.manual_seed(0)
    logits, target = torch.randn(7, 5), torch.tensor([0, 4, 4, 1, 2, 3, 0])
    beta = 0.999
    n = torch.tensor(COUNTS, dtype=torch.float64)
    w = (1 - beta) / (1 - beta ** n)
    w = (w / w.sum() * 5).float()
    per_sample = w[target] * F.cross_entropy(logits, target, reduction="none")
    expected = {"mean": per_sample.mean(), "sum": per_sample.sum(), "none": per_sample}[reduction]
    loss = ClassBalancedLoss(COUNTS, beta=beta, reduction=reduction)
    assert torch.allclose(loss(logits, target), expected, atol=1e-6)


def test_extreme_counts_give_finite_loss_and_gradients():
    loss = ClassBalancedLoss([5000.0, 1.0, 20.0], beta=0.9999)
    logits = (30 * torch.randn(6, 3)).requires_grad_(True)
    value = loss(logits, torch.tensor([0, 1, 2, 1, 1, 0]))
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(logits.grad).all()
    assert torch.isfinite(loss.weights).all()


@pytest.mark.parametrize("counts", [[10, 0, 5], [10, -1, 5], [10, float("nan"), 5]])
def test_bad_counts_raise_naming_class_counts(counts):
    with pytest.raises(ValueError, match="class_counts"):
        ClassBalancedLoss(counts)


def test_wrong_length_and_bad_arguments():
    with pytest.raises(ValueError, match="class_counts"):
        ClassBalancedLoss([3, 2], num_classes=3)
    with pytest.raises(ValueError, match="beta"):
        ClassBalancedLoss(COUNTS, beta=-0.1)
    with pytest.raises(ValueError, match="class_counts"):
        ClassBalancedLoss([3, 2])(torch.randn(2, 3), torch.tensor([0, 1]))


def test_weights_are_saved_buffers():
    loss = ClassBalancedLoss(COUNTS)
    assert set(loss.state_dict()) == {"class_counts", "weights"}
    assert loss.to(torch.float64).weights.dtype == torch.float64
