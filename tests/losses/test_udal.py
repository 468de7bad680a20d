import pytest
import torch
import torch.nn.functional as F

import ltzoo
import ltzoo.losses.udal as udal_module  # registers "udal"
from ltzoo.losses.udal import UDALLoss

COUNTS = [400.0, 150.0, 50.0, 10.0]
P_DATA = torch.tensor(COUNTS, dtype=torch.float64) / sum(COUNTS)


def make(**kwargs):
    kwargs.setdefault("class_counts", COUNTS)
    kwargs.setdefault("total_steps", 100)
    return ltzoo.create_loss("udal", **kwargs)


def test_alpha_schedule_follows_eq_10():
    loss = make(alpha_min=0.1, k=2.0, total_steps=100)
    assert loss.alpha == pytest.approx(1.0)
    loss.set_step(30)
    assert loss.alpha == pytest.approx(1.0 - 0.9 * 0.3 ** 2)
    loss.set_step(100)
    assert loss.alpha == pytest.approx(0.1)
    loss.set_step(250)  # t is clipped at T
    assert loss.alpha == pytest.approx(0.1)
    loss.set_step(0)
    for _ in range(50):
        loss.step()
    assert int(loss.step_count) == 50
    assert loss.alpha == pytest.approx(1.0 - 0.9 * 0.5 ** 2)
    linear = make(alpha_min=0.5, k=1.0, total_steps=10)
    linear.set_step(4)
    assert linear.alpha == pytest.approx(1.0 - 0.5 * 0.4)


def test_supervised_at_t0_is_plain_cross_entropy():
    torch.manual_seed(0)
    logits, target = torch.randn(8, 4), torch.randint(0, 4, (8,))
    loss = make()
    assert torch.allclose(loss.target_distribution().double(), P_DATA, atol=1e-6)
    assert torch.allclose(loss(logits, target), F.cross_entropy(logits, target), atol=1e-6)


def test_supervised_at_t_end_targets_flattened_p_data():
    torch.manual_seed(1)
    logits, target = torch.randn(8, 4), torch.randint(0, 4, (8,))
    loss = make(alpha_min=0.1, reduction="none")
    loss.set_step(100)
    target_dist = P_DATA ** 0.1 / (P_DATA ** 0.1).sum()
    assert torch.allclose(loss.target_distribution().double(), target_dist, atol=1e-6)
    shift = torch.log(P_DATA / (target_dist + 1e-9)).float()
    expected = F.cross_entropy(logits + shift, target, reduction="none")
    assert torch.allclose(loss(logits, target), expected, atol=1e-5)
    assert not torch.allclose(expected, F.cross_entropy(logits, target, reduction="none"))


def test_p_hat_follows_its_ema_and_drives_the_unsupervised_loss():
    torch.manual_seed(2)
    loss = make(mode="unsupervised", ema=0.9, reduction="sum")
    p_hat = torch.full((4,), 0.25, dtype=torch.float64)
    assert torch.allclose(loss.p_hat.double(), p_hat)
    for batch in (5, 3, 7):
        probs = torch.softmax(3 * torch.randn(batch, 4), 1)
        loss.update(probs)
        p_hat = 0.9 * p_hat + 0.1 * probs.double().mean(0)
    assert torch.allclose(loss.p_hat.double(), p_hat, atol=1e-6)
    loss.update(torch.empty(0, 4))  # an empty batch changes nothing
    assert torch.allclose(loss.p_hat.double(), p_hat, atol=1e-6)
    loss.set_step(60)
    alpha = 1.0 - 0.9 * 0.6 ** 2
    target_dist = P_DATA ** alpha / (P_DATA ** alpha).sum()
    logits, pseudo = torch.randn(6, 4), torch.randint(0, 4, (6,))
    expected = F.cross_entropy(logits + torch.log(p_hat / (target_dist + 1e-9)).float(), pseudo, reduction="sum")
    assert torch.allclose(loss(logits, pseudo), expected, atol=1e-5)


def test_update_all_reduces_sums_and_counts(monkeypatch):
    # simulate rank 1's contribution: record what it reduces, add it on "rank 0"
    torch.manual_seed(3)
    probs0, probs1 = torch.softmax(torch.randn(4, 4), 1), torch.softmax(torch.randn(2, 4), 1)
    recorded = []
    monkeypatch.setattr(udal_module, "all_reduce_sum", lambda t: recorded.append(t.clone()) or t.clone())
    make(mode="unsupervised", ema=0.5).update(probs1)
    monkeypatch.setattr(udal_module, "all_reduce_sum", lambda t: t + recorded.pop(0))
    rank0 = make(mode="unsupervised", ema=0.5)
    rank0.update(probs0)
    monkeypatch.undo()
    single = make(mode="unsupervised", ema=0.5)
    single.update(torch.cat([probs0, probs1]))
    assert torch.allclose(rank0.p_hat, single.p_hat, atol=1e-6)


def test_buffers_in_state_dict_and_round_trip():
    loss = make(mode="unsupervised")
    loss.update(torch.softmax(torch.randn(5, 4), 1))
    loss.set_step(42)
    state = loss.state_dict()
    assert set(state) == {"p_data", "step_count", "p_hat"}
    fresh = make(mode="unsupervised")
    fresh.load_state_dict(state)
    assert fresh.alpha == loss.alpha and torch.equal(fresh.p_hat, loss.p_hat)
    assert set(make().state_dict()) == {"p_data", "step_count"}


@pytest.mark.parametrize("mode", ["supervised", "unsupervised"])
@pytest.mark.parametrize("t", [0, 50, 100])
def test_extreme_counts_give_finite_loss_and_gradients(mode, t):
    loss = make(class_counts=[5000.0, 1.0, 300.0], mode=mode, alpha_min=0.0)
    loss.set_step(t)
    if mode == "unsupervised":
        loss.update(torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]))
    logits = (30 * torch.randn(6, 3)).requires_grad_(True)
    value = loss(logits, torch.tensor([0, 1, 1, 2, 1, 0]))
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(logits.grad).all()


@pytest.mark.parametrize("counts", [[10, 0, 5], [10, -1, 5], [10, float("nan"), 5]])
def test_bad_counts_raise_naming_class_counts(counts):
    with pytest.raises(ValueError, match="class_counts"):
        make(class_counts=counts)
    with pytest.raises(ValueError, match="class_counts"):
        make(class_counts=[1, 2], num_classes=3)


def test_bad_arguments():
    with pytest.raises(ValueError, match="mode"):
        make(mode="semi")
    with pytest.raises(ValueError, match="total_steps"):
        make(total_steps=0)
    with pytest.raises(ValueError, match="alpha_min"):
        make(alpha_min=1.5)
    with pytest.raises(ValueError, match="ema"):
        make(ema=1.0)
    with pytest.raises(ValueError, match="k"):
        make(k=0)
    with pytest.raises(ValueError, match="supervised"):
        make().update(torch.full((2, 4), 0.25))
    with pytest.raises(ValueError, match="probs"):
        make(mode="unsupervised").update(torch.full((2, 3), 1 / 3))
    with pytest.raises(ValueError, match="t must"):
        UDALLoss(COUNTS, total_steps=10).set_step(-1)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -0.1])
def test_reliability_udal_update_refuses_nan_or_negative_probabilities(bad):
    loss = UDALLoss(COUNTS, total_steps=10, mode="unsupervised")
    before = loss.p_hat.clone()
    probs = torch.full((2, len(COUNTS)), 1.0 / len(COUNTS))
    probs[1, 0] = bad
    with pytest.raises(ValueError, match="probs must be finite, non-negative probabilities"):
        loss.update(probs)
    assert torch.equal(loss.p_hat, before)  # p_hat untouched
    loss.update(torch.empty(0, len(COUNTS)))  # an empty selection (all ranks) is legitimate: unchanged
    assert torch.equal(loss.p_hat, before)
