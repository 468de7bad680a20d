import numpy as np
import pytest
import torch

import ltzoo
from ltzoo.losses import BEMState
from ltzoo.samplers.mix_bank import ClassBalancedMixBank

COUNTS = [50, 20, 5, 2]


def _state(**kw):
    return BEMState(COUNTS, num_unlabeled=400, beta=0.9, alpha=0.5, ema=0.9, **kw)


def _bank(state=None, seed=0):
    return ltzoo.create_sampler("mix_bank", state=state or _state(), num_labeled=77, num_unlabeled=400, seed=seed)


def test_registered_and_files_labeled_and_pseudo_labelled_samples():
    bank = _bank()
    bank.update(torch.tensor([0, 1, 2, 3]), torch.tensor([0, 0, 1, 3]), True)
    bank.update(np.array([10, 11, 12]), np.array([2, 2, 1]), is_labeled=False)
    assert bank.class_sizes("labeled").tolist() == [2, 1, 0, 1]
    assert bank.class_sizes("unlabeled").tolist() == [0, 1, 2, 0]
    # a sample whose pseudo-label changes moves class
    bank.update([10], [0], False)
    assert bank.class_sizes("unlabeled").tolist() == [1, 1, 1, 0]
    # a per-sample mask splits one call between the stores
    bank.update([5, 20], [1, 3], torch.tensor([True, False]))
    assert bank.class_sizes("labeled").tolist() == [2, 2, 0, 1]
    assert bank.class_sizes("unlabeled").tolist() == [1, 1, 1, 1]


def _eq4_eq7_by_hand(counts, d_u, m, e_x, e_u, beta, alpha):
    counts, d_u, e_x, e_u = (np.asarray(v, dtype=np.float64) for v in (counts, d_u, e_x, e_u))
    eff = (1 - beta ** counts) / (1 - beta) + (1 - beta ** (m * d_u)) / (1 - beta)  # Eq. 2
    s = (1 / eff) / (1 / eff).sum()  # Eq. 4
    s_prime = (e_x + e_u) / (e_x + e_u).sum()
    z = alpha * s + (1 - alpha) * s_prime  # Eq. 7, delta = softmax
    return np.exp(z) / np.exp(z).sum()


def test_probabilities_equal_eq4_and_eq7_by_hand():
    state = _state()
    probs_x = torch.tensor([[0.7, 0.1, 0.1, 0.1], [0.25, 0.25, 0.25, 0.25], [0.1, 0.1, 0.4, 0.4], [0.1, 0.1, 0.1, 0.7]])
    labels = torch.tensor([0, 1, 2, 3])
    probs_u = torch.tensor([[0.9, 0.05, 0.03, 0.02], [0.6, 0.2, 0.1, 0.1], [0.2, 0.5, 0.2, 0.1]])
    state.update(probs_x, labels, probs_u)
    ent = lambda p: float(-(p * p.log()).sum())  # noqa: E731  (Eq. 5 / Eq. 8)
    e_x = [ent(p) for p in probs_x]
    e_u = [(ent(probs_u[0]) + ent(probs_u[1])) / 2, ent(probs_u[2]), 0.0, 0.0]
    d_u = 0.9 * np.full(4, 0.25) + 0.1 * np.array([2 / 3, 1 / 3, 0, 0])  # Eq. 3
    expected = _eq4_eq7_by_hand(COUNTS, d_u, 400, e_x, e_u, beta=0.9, alpha=0.5)
    assert np.allclose(state.unlabeled_dist.numpy(), d_u, atol=1e-6)
    bank = _bank(state)
    bank.update(torch.arange(4), labels, True)
    assert np.allclose(bank.probabilities("labeled").numpy(), expected, atol=1e-5)


def test_empty_classes_are_skipped_and_draws_follow_probabilities():
    bank = _bank()
    labels = np.array([0] * 30 + [1] * 10 + [3] * 2)
    bank.update(np.arange(42), labels, True)
    probs = bank.probabilities("labeled").numpy()
    assert probs[2] == 0 and np.isclose(probs.sum(), 1)
    idx, cls = bank.sample(20000, "labeled")
    assert (cls != 2).all()
    assert np.array_equal(labels[idx.numpy()], cls.numpy())  # each drawn index belongs to its class
    freq = np.bincount(cls.numpy(), minlength=4) / 20000
    assert np.allclose(freq, probs, atol=0.015)
    # members of a class are drawn uniformly
    members = np.bincount(idx.numpy()[cls.numpy() == 3], minlength=42)[40:42]
    assert members.min() > 0.35 * members.sum()


def test_state_dict_round_trip_reproduces_draws():
    bank = _bank(seed=3)
    bank.update(np.arange(20), np.arange(20) % 4, True)
    bank.sample(5)
    saved = bank.state_dict()
    first = bank.sample(50)
    other = _bank(bank.state, seed=99)
    other.load_state_dict(saved)
    second = other.sample(50)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])


def test_shares_the_state_with_the_ecb_loss():
    state = _state()
    bank = _bank(state)
    loss = ltzoo.create_loss("ecb", state=state)
    assert bank.state is loss.state


@pytest.mark.parametrize("call,match", [
    (lambda b: b.update([0, 1], [0], True), "same length"),
    (lambda b: b.update([77], [0], True), "labeled indices"),
    (lambda b: b.update([0], [4], True), "labels_or_pseudo_labels"),
    (lambda b: b.sample(3, "unlabeled"), "empty"),
    (lambda b: b.sample(3, "both"), "source"),
    (lambda b: b.sample(0), "n must"),
])
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call(_bank())


def test_state_type_checked():
    with pytest.raises(TypeError, match="BEMState"):
        ClassBalancedMixBank(state=object(), num_labeled=3, num_unlabeled=3)


def test_entropy_selection_masks_follow_the_ema_threshold():
    state = _state()
    bank = _bank(state)
    confident = torch.tensor([[0.97, 0.01, 0.01, 0.01]])
    uncertain = torch.full((1, 4), 0.25)
    probs_u = torch.cat([confident, uncertain])
    state.update(confident, torch.tensor([0]), probs_u)  # Eq. 10: first observation sets tau_e
    entropy = -(probs_u * probs_u.log()).sum(1)  # Eq. 8
    assert torch.isclose(state.tau_e, entropy.mean())
    high, low = bank.entropy_masks(probs_u)  # Eq. 9
    assert high.tolist() == [False, True] and low.tolist() == [True, False]
