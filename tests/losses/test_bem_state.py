import math

import pytest
import torch
import torch.nn.functional as F

import ltzoo
import ltzoo.losses.bem_state as bem_module
import ltzoo.losses.class_balanced  # noqa: F401  (registers "ecb")
from ltzoo.losses.bem_state import BEMState

COUNTS = [500.0, 200.0, 50.0, 10.0]
M = 3000


def entropy(p):
    return -(p * torch.log(p)).sum(-1)


def eff(n, beta):
    return (1 - beta ** n.double()) / (1 - beta)


def batch(seed, b=12, k=4, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    probs = torch.softmax(scale * torch.randn(b, k, generator=g), 1)
    labels = torch.randint(0, k, (b,), generator=g)
    return probs, labels


def test_labeled_effective_number_eq2():
    state = BEMState(COUNTS, M, beta=0.999)
    assert torch.allclose(state.effective_labeled.double(), eff(torch.tensor(COUNTS), 0.999), rtol=1e-5)
    # d^u starts uniform, so E^u = E(M / K)
    assert torch.allclose(state.effective_unlabeled().double(), eff(torch.full((4,), M / 4), 0.999), rtol=1e-5)


def test_unlabeled_distribution_ema_eq3_by_hand():
    state = BEMState(COUNTS, M, lambda_d=0.8)
    d = torch.full((4,), 0.25, dtype=torch.float64)
    for seed in (1, 2, 3):
        px, y = batch(seed)
        pu, _ = batch(seed + 10, b=9)
        state.update(px, y, pu)
        d = 0.8 * d + 0.2 * torch.bincount(pu.argmax(1), minlength=4).double() / 9
    assert torch.allclose(state.unlabeled_dist.double(), d, atol=1e-6)
    assert torch.allclose(state.effective_unlabeled().double(), eff(M * d, 0.999), rtol=1e-5)
    # explicit pseudo-labels override the argmax
    state.update(px, y, pu, pseudo_labels=torch.full((9,), 3))
    assert torch.allclose(state.unlabeled_dist.double(), 0.8 * d + 0.2 * torch.tensor([0, 0, 0, 1.0]), atol=1e-6)


def test_class_entropies_update_present_classes_and_start_from_first_observation():
    state = BEMState(COUNTS, M, lambda_e=0.7)
    px1, _ = batch(4, b=4)
    y1 = torch.tensor([0, 0, 1, 1])
    pu1 = torch.tensor([[0.7, 0.1, 0.1, 0.1], [0.6, 0.2, 0.1, 0.1], [0.1, 0.1, 0.1, 0.7]])  # q = 0, 0, 3
    state.update(px1, y1, pu1)
    ex = torch.zeros(4)
    ex[0], ex[1] = entropy(px1[:2]).mean(), entropy(px1[2:]).mean()
    eu = torch.zeros(4)
    eu[0], eu[3] = entropy(pu1[:2]).mean(), entropy(pu1[2:]).mean()
    assert torch.allclose(state.entropy_labeled, ex, atol=1e-6)  # first observation, not 0.3 * it
    assert torch.allclose(state.entropy_unlabeled, eu, atol=1e-6)
    assert state.entropy_labeled_seen.tolist() == [True, True, False, False]
    px2, _ = batch(5, b=3)
    y2 = torch.tensor([0, 2, 2])
    pu2 = torch.tensor([[0.1, 0.1, 0.1, 0.7]])
    state.update(px2, y2, pu2)
    ex[0] = 0.7 * ex[0] + 0.3 * entropy(px2[:1]).mean()
    ex[2] = entropy(px2[1:]).mean()  # first observation of class 2; class 1 absent: unchanged
    eu[3] = 0.7 * eu[3] + 0.3 * entropy(pu2).mean()
    assert torch.allclose(state.entropy_labeled, ex, atol=1e-6)
    assert torch.allclose(state.entropy_unlabeled, eu, atol=1e-6)


def test_s_sums_to_one_and_favours_tail_classes():
    state = BEMState(COUNTS, M)
    f = 1 / (eff(torch.tensor(COUNTS), 0.999) + eff(torch.full((4,), M / 4), 0.999))
    assert torch.allclose(state.s().double(), f / f.sum(), atol=1e-6)
    assert state.s().sum().item() == pytest.approx(1.0, abs=1e-6)
    assert torch.all(state.s()[1:] > state.s()[:-1])


def fed_state(**kwargs):
    state = BEMState(COUNTS, M, **kwargs)
    for seed in (6, 7):
        px, y = batch(seed)
        pu, _ = batch(seed + 20, b=16)
        state.update(px, y, pu)
    return state


def test_s_hat_softmax_eq7():
    state = BEMState(COUNTS, M, alpha=0.3)
    assert torch.allclose(state.s_hat(), torch.softmax(state.s(), 0), atol=1e-6)  # no entropy yet
    state = fed_state(alpha=0.3)
    e = state.entropy_labeled + state.entropy_unlabeled
    expected = torch.softmax(0.3 * state.s() + 0.7 * e / e.sum(), 0)
    assert torch.allclose(state.s_hat(), expected, atol=1e-6)
    assert state.s_hat().sum().item() == pytest.approx(1.0, abs=1e-6)


def test_fidelity_s_hat_convex_mapping_after_max_normalisation():
    state = fed_state(alpha=0.5, delta="convex")
    e = state.entropy_labeled + state.entropy_unlabeled
    x = 0.5 * state.s() + 0.5 * e / e.sum()
    y = [float(v) / float(max(x)) for v in x]  # x / max(x), written out entry by entry
    y = [v / (2 - v) for v in y]  # FlexMatch's convex mapping
    expected = torch.tensor([v / sum(y) for v in y])
    assert torch.allclose(state.s_hat(), expected, atol=1e-6)
    assert float(state.s_hat()[int(x.argmax())]) == pytest.approx(1 / sum(y), abs=1e-6)  # the max maps to 1
    # sharper than x itself: the largest / smallest ratio grows
    ratio = lambda v: float(v.max() / v.min())  # noqa: E731
    assert ratio(state.s_hat()) > ratio(x) > ratio(torch.softmax(x, 0))


def test_fidelity_s_hat_softmax_temperature():
    state = fed_state(alpha=0.5, delta="softmax", temperature=0.05)
    e = state.entropy_labeled + state.entropy_unlabeled
    x = 0.5 * state.s() + 0.5 * e / e.sum()
    z = [math.exp(float(v) / 0.05) for v in x]
    assert torch.allclose(state.s_hat(), torch.tensor([v / sum(z) for v in z]), atol=1e-6)
    flat = fed_state(alpha=0.5, delta="softmax")  # T = 1 is the plain softmax (the default)
    assert torch.allclose(flat.s_hat(), torch.softmax(x, 0), atol=1e-6)
    f = 1 / eff(M * state.unlabeled_dist.double(), 0.999)  # the ECB weights s_hat^u use the same mapping
    xu = 0.5 * f / f.sum() + 0.5 * state.entropy_unlabeled.double() / state.entropy_unlabeled.double().sum()
    zu = [math.exp(float(v) / 0.05) for v in xu]
    assert torch.allclose(state.s_hat_unlabeled().double(), torch.tensor([v / sum(zu) for v in zu]).double(),
                          atol=1e-5)
    for bad in (0, -1.0, float("inf"), True):
        with pytest.raises(ValueError, match="temperature"):
            BEMState(COUNTS, M, temperature=bad)


def test_s_hat_unlabeled_uses_unlabeled_statistics_only():
    state = fed_state(alpha=0.4)
    f = 1 / eff(M * state.unlabeled_dist.double(), 0.999)
    s_u = f / f.sum()
    s_prime = state.entropy_unlabeled.double() / state.entropy_unlabeled.double().sum()
    expected = torch.softmax(0.4 * s_u + 0.6 * s_prime, 0)
    assert torch.allclose(state.s_hat_unlabeled().double(), expected, atol=1e-6)


def test_warmup_freezes_unlabeled_and_entropy_estimates():
    state = BEMState(COUNTS, M, warmup_steps=2, ema=0.5)
    before = {k: v.clone() for k, v in state.state_dict().items() if k != "step_count"}
    px, y = batch(8)
    pu, _ = batch(9, b=10)
    for _ in range(2):
        state.update(px, y, pu)
        for name, value in before.items():
            assert torch.equal(state.state_dict()[name], value), name
        assert torch.equal(state.s_hat_unlabeled(), torch.full((4,), 0.25))
    assert int(state.step_count) == 2
    state.update(px, y, pu)
    assert int(state.step_count) == 3
    assert not torch.equal(state.unlabeled_dist, before["unlabeled_dist"])
    assert bool(state.entropy_labeled_seen.any()) and bool(state.tau_e_seen)
    assert not torch.allclose(state.s_hat_unlabeled(), torch.full((4,), 0.25))


def test_tau_e_ema_and_entropy_masks():
    state = BEMState(COUNTS, M, lambda_tau=0.6)
    px, y = batch(10)
    pu1, _ = batch(11, b=8)
    pu2, _ = batch(12, b=5, scale=4.0)
    state.update(px, y, pu1)
    tau = entropy(pu1).mean()
    assert state.tau_e.item() == pytest.approx(tau.item(), abs=1e-6)  # first observation
    state.update(px, y, pu2)
    tau = 0.6 * tau + 0.4 * entropy(pu2).mean()
    assert state.tau_e.item() == pytest.approx(tau.item(), abs=1e-6)
    probs = torch.cat([pu1, pu2])
    high, low = state.entropy_masks(probs)
    e = entropy(probs)
    assert torch.equal(high, e > tau) and torch.equal(low, e < tau)
    assert not (high & low).any() and (high | low).all()
    assert high.any() and low.any()
    # a sample whose entropy equals tau_e is in neither mask
    tie_state = BEMState(COUNTS, M)
    row = torch.tensor([[0.4, 0.3, 0.2, 0.1]])
    tie_state.update(px, y, row.repeat(3, 1))
    high, low = tie_state.entropy_masks(row)
    assert not high.any() and not low.any()


def test_state_dict_round_trip():
    state = fed_state(alpha=0.4)
    fresh = BEMState(COUNTS, M, alpha=0.4)
    fresh.load_state_dict(state.state_dict())
    for name, value in state.state_dict().items():
        assert torch.equal(fresh.state_dict()[name], value), name
    assert torch.equal(fresh.s_hat(), state.s_hat()) and torch.equal(fresh.s_hat_unlabeled(), state.s_hat_unlabeled())
    assert {"effective_labeled", "unlabeled_dist", "entropy_labeled", "entropy_unlabeled", "tau_e",
            "step_count"} <= set(state.state_dict())


def test_update_all_reduces_batch_statistics(monkeypatch):
    # simulate rank 1: record what it reduces, then add it on "rank 0"
    (px0, y0), (px1, y1) = batch(13, b=6), batch(14, b=5)
    pu0, pu1 = batch(15, b=7)[0], batch(16, b=4)[0]
    recorded = []
    monkeypatch.setattr(bem_module, "all_reduce_sum", lambda t: recorded.append(t.clone()) or t.clone())
    BEMState(COUNTS, M, ema=0.5).update(px1, y1, pu1)
    monkeypatch.setattr(bem_module, "all_reduce_sum", lambda t: t + recorded.pop(0))
    rank0 = BEMState(COUNTS, M, ema=0.5)
    rank0.update(px0, y0, pu0)
    monkeypatch.undo()
    single = BEMState(COUNTS, M, ema=0.5)
    single.update(torch.cat([px0, px1]), torch.cat([y0, y1]), torch.cat([pu0, pu1]))
    for name, value in single.state_dict().items():
        assert torch.allclose(rank0.state_dict()[name].double(), value.double(), atol=1e-6), name


def test_ecb_weights_are_k_times_s_hat_u_and_share_the_state():
    state = fed_state()
    loss = ltzoo.create_loss("ecb", state=state, reduction="none")
    assert loss.state is state
    torch.manual_seed(17)
    logits, q = torch.randn(6, 4), torch.tensor([0, 1, 2, 3, 3, 1])
    ce = F.cross_entropy(logits, q, reduction="none")
    assert torch.allclose(loss(logits, q), 4 * state.s_hat_unlabeled()[q] * ce, atol=1e-6)
    one = ltzoo.create_loss("ecb", state=state, normalization="sum_to_one", reduction="sum")
    assert torch.allclose(one(logits, q), (state.s_hat_unlabeled()[q] * ce).sum(), atol=1e-6)
    before = loss(logits, q)
    px, y = batch(18)
    state.update(px, y, torch.softmax(5 * torch.randn(16, 4), 1), pseudo_labels=torch.full((16,), 3))
    after = loss(logits, q)
    assert not torch.allclose(before, after)
    assert torch.allclose(after, 4 * state.s_hat_unlabeled()[q] * ce, atol=1e-6)


def test_ecb_before_warmup_is_plain_cross_entropy():
    loss = ltzoo.create_loss("ecb", state=BEMState(COUNTS, M, warmup_steps=5))
    logits, q = torch.randn(5, 4), torch.tensor([0, 1, 2, 3, 0])
    assert torch.allclose(loss(logits, q), F.cross_entropy(logits, q), atol=1e-6)


@pytest.mark.parametrize("counts", [[10, 0, 5], [10, -1, 5], [10, float("nan"), 5]])
def test_bad_labeled_counts_raise(counts):
    with pytest.raises(ValueError, match="labeled_counts"):
        BEMState(counts, M)
    with pytest.raises(ValueError, match="labeled_counts"):
        BEMState([1, 2], M, num_classes=3)


def test_bad_arguments():
    for kwargs, word in [({"delta": "sigmoid"}, "delta"), ({"alpha": 1.5}, "alpha"), ({"ema": 1.0}, "ema"),
                         ({"beta": 1.0}, "beta"), ({"warmup_steps": -1}, "warmup_steps"),
                         ({"num_unlabeled": 0}, "num_unlabeled")]:
        with pytest.raises(ValueError, match=word):
            BEMState(COUNTS, **{"num_unlabeled": M, **kwargs})
    with pytest.raises(ValueError, match="unlabeled_probs"):
        BEMState(COUNTS, M).update(torch.full((2, 4), 0.25), torch.tensor([0, 1]), torch.full((2, 3), 1 / 3))
    with pytest.raises(TypeError, match="state"):
        ltzoo.create_loss("ecb", state=object())
    with pytest.raises(ValueError, match="normalization"):
        ltzoo.create_loss("ecb", state=BEMState(COUNTS, M), normalization="sum_to_two")


def test_fidelity_softmax_mapping_is_nearly_flat_on_the_cifar10_ltssl_state():
    """CIFAR-10 N1 = 500, M1 = 4000, gamma 100, d^u converged to the true shares: Eq. 2-4 and 7 by hand."""
    labeled = [math.floor(500 * 100 ** (-c / 9)) for c in range(10)]
    unlabeled = [math.floor(4000 * 100 ** (-c / 9)) for c in range(10)]
    e = [(1 - 0.999 ** n) / 0.001 + (1 - 0.999 ** m) / 0.001 for n, m in zip(labeled, unlabeled)]  # E^x + E^u
    s = [(1 / v) / sum(1 / w for w in e) for v in e]  # Eq. 4
    soft = [math.exp(v) for v in s]  # Eq. 7 with alpha = 1 and delta = softmax
    state = BEMState(labeled, sum(unlabeled), alpha=1.0)
    state.unlabeled_dist.copy_(torch.tensor(unlabeled, dtype=torch.float32) / sum(unlabeled))
    assert s[9] / s[0] == pytest.approx(31.1, abs=0.05)
    assert float(state.s()[9] / state.s()[0]) == pytest.approx(s[9] / s[0], rel=1e-4)
    assert float(state.s_hat()[9] / state.s_hat()[0]) == pytest.approx(soft[9] / soft[0], rel=1e-4)
    assert soft[9] / soft[0] < 1.5  # the softmax leaves a 31x quantity imbalance at ~1.4x
