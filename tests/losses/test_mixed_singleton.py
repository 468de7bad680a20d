import time

import numpy as np
import pytest
import torch

import ltzoo
import ltzoo.losses.mixed_singleton  # noqa: F401  (registers "mixed_singleton")
from ltzoo.losses.mixed_singleton import (
    MixedSingletonLoss,
    mixed_label_index,
    mixed_label_pair,
    num_mixed_labels,
)


def _brute_force(h, w, bias, y_a, y_b, lam, include_singletons):
    """Cross-entropy over explicitly built mixed class vectors W^lam (BMLS Eq. 3), per sample."""
    k = w.shape[0]
    pairs = [(a, b) for a in range(k) for b in range(a + 1, k)]
    if include_singletons:
        pairs += [(a, a) for a in range(k)]
    losses = []
    for i in range(h.shape[0]):
        ya, yb, li = int(y_a[i]), int(y_b[i]), lam[i]
        if ya > yb:
            ya, yb, li = yb, ya, 1 - li
        w_lam = torch.stack([li * w[a] + (1 - li) * w[b] for a, b in pairs])  # (P, D)
        b_lam = torch.stack([li * bias[a] + (1 - li) * bias[b] for a, b in pairs])
        logits = h[i] @ w_lam.T + b_lam
        losses.append(torch.logsumexp(logits, 0) - logits[pairs.index((ya, yb))])
    return torch.stack(losses)


def _labels(k, b, gen, distinct):
    y_a = torch.randint(0, k, (b,), generator=gen)
    y_b = torch.randint(0, k, (b,), generator=gen)
    if distinct:
        y_b = torch.where(y_a == y_b, (y_b + torch.randint(1, k, (b,), generator=gen)) % k, y_b)
    return y_a, y_b


@pytest.mark.parametrize("k", [2, 3, 7, 20])
@pytest.mark.parametrize("include_singletons", [False, True])
def test_matches_brute_force_values_and_gradients(k, include_singletons):
    gen = torch.Generator().manual_seed(k)
    b, d = 6, 5
    h = torch.randn(b, d, generator=gen, dtype=torch.float64, requires_grad=True)
    w = torch.randn(k, d, generator=gen, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(k, generator=gen, dtype=torch.float64, requires_grad=True)
    y_a, y_b = _labels(k, b, gen, distinct=not include_singletons)
    if include_singletons:
        y_b[0] = y_a[0]  # at least one singleton target
    lam = torch.rand(b, generator=gen, dtype=torch.float64)
    loss = ltzoo.create_loss("mixed_singleton", include_singletons=include_singletons, reduction="none")
    ours = loss(h @ w.T + bias, y_a, y_b, lam)
    ref = _brute_force(h, w, bias, y_a, y_b, lam, include_singletons)
    assert torch.allclose(ours, ref, atol=1e-10)
    g_ours = torch.autograd.grad(ours.sum(), (h, w, bias))
    g_ref = torch.autograd.grad(ref.sum(), (h, w, bias))
    for go, gr in zip(g_ours, g_ref):
        assert torch.allclose(go, gr, atol=1e-10)


def test_scalar_lam_and_reductions():
    gen = torch.Generator().manual_seed(0)
    s = torch.randn(4, 5, generator=gen, dtype=torch.float64)
    y_a, y_b = torch.tensor([0, 1, 4, 2]), torch.tensor([3, 0, 2, 1])
    per = MixedSingletonLoss(reduction="none")(s, y_a, y_b, 0.3)
    lam_t = torch.full((4,), 0.3, dtype=torch.float64)
    assert torch.allclose(per, MixedSingletonLoss(reduction="none")(s, y_a, y_b, lam_t))
    assert torch.allclose(MixedSingletonLoss(reduction="sum")(s, y_a, y_b, 0.3), per.sum())
    assert torch.allclose(MixedSingletonLoss()(s, y_a, y_b, torch.tensor(0.3)), per.mean())


def test_label_order_symmetry():
    gen = torch.Generator().manual_seed(1)
    s = torch.randn(8, 6, generator=gen, dtype=torch.float64)
    y_a, y_b = _labels(6, 8, gen, distinct=True)
    lam = torch.rand(8, generator=gen, dtype=torch.float64)
    loss = MixedSingletonLoss(reduction="none")
    assert torch.allclose(loss(s, y_b, y_a, lam), loss(s, y_a, y_b, 1 - lam), atol=1e-12)


def test_same_labels_refused_without_singletons():
    s = torch.randn(2, 3)
    with pytest.raises(ValueError, match="y_a and y_b must differ"):
        MixedSingletonLoss(same_class="error")(s, torch.tensor([0, 1]), torch.tensor([2, 1]), 0.5)
    loss = MixedSingletonLoss(include_singletons=True, reduction="none")
    out = loss(s, torch.tensor([0, 1]), torch.tensor([2, 1]), 0.5)
    assert torch.isfinite(out).all()


def test_small_k():
    s = torch.tensor([[0.3, -1.2]], dtype=torch.float64)
    # K = 2: a single mixed label, so the loss is exactly zero
    out = MixedSingletonLoss()(s, torch.tensor([1]), torch.tensor([0]), 0.2)
    assert torch.allclose(out, torch.zeros((), dtype=torch.float64))
    one = torch.tensor([[2.0]])
    with pytest.raises(ValueError, match="K >= 2"):
        MixedSingletonLoss()(one, torch.tensor([0]), torch.tensor([0]), 0.5)
    assert MixedSingletonLoss(include_singletons=True)(one, torch.tensor([0]), torch.tensor([0]), 0.5).item() == 0.0


@pytest.mark.parametrize("include_singletons", [False, True])
def test_extreme_logits_are_finite(include_singletons):
    s = torch.tensor([[1e3, -1e3, 5e2, -7e2], [-1e3, -1e3, -1e3, 1e3]], requires_grad=True)
    lam = torch.tensor([0.0, 1.0])
    out = MixedSingletonLoss(include_singletons, reduction="none")(s, torch.tensor([1, 0]), torch.tensor([3, 2]), lam)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(s.grad).all()
    assert (out >= 0).all()


def test_large_k_runs_in_linear_memory():
    k, b = 8142, 4
    s = torch.randn(b, k, requires_grad=True)
    start = time.perf_counter()
    out = MixedSingletonLoss()(s, torch.tensor([0, 8141, 17, 4000]), torch.tensor([1, 3, 8000, 4001]), torch.rand(b))
    out.backward()
    assert torch.isfinite(out) and s.grad.shape == (b, k)
    assert time.perf_counter() - start < 5.0  # a K^2 = 66M-entry tensor per sample would not be this fast


@pytest.mark.parametrize("k", [2, 7])
def test_mixed_label_index_round_trip(k):
    pairs = [(a, b) for a in range(k) for b in range(a + 1, k)]
    idx = [mixed_label_index(a, b, k) for a, b in pairs]
    assert idx == list(range(num_mixed_labels(k)))  # row-major, bijective onto 0..K(K-1)/2-1
    assert [mixed_label_pair(i, k) for i in idx] == pairs
    a_t, b_t = torch.tensor([p[0] for p in pairs]), torch.tensor([p[1] for p in pairs])
    i_t = mixed_label_index(a_t, b_t, k)
    assert torch.equal(i_t, torch.arange(len(pairs)))
    pa, pb = mixed_label_pair(i_t, k)
    assert torch.equal(pa, a_t) and torch.equal(pb, b_t)
    na, nb = mixed_label_pair(np.arange(len(pairs)), k)
    assert np.array_equal(mixed_label_index(na, nb, k), np.arange(len(pairs)))


def test_mixed_label_index_bad_inputs():
    with pytest.raises(ValueError, match="0 <= a < b"):
        mixed_label_index(3, 3, 7)
    with pytest.raises(ValueError, match="0 <= a < b"):
        mixed_label_index(2, 7, 7)
    with pytest.raises(ValueError, match="index must lie"):
        mixed_label_pair(21, 7)


def test_bad_inputs_name_the_argument():
    loss = MixedSingletonLoss()
    s, ya, yb = torch.randn(3, 4), torch.tensor([0, 1, 2]), torch.tensor([1, 2, 3])
    with pytest.raises(ValueError, match="y_b"):
        loss(s, ya, yb[:2], 0.5)
    with pytest.raises(ValueError, match="lam"):
        loss(s, ya, yb, 1.5)
    with pytest.raises(ValueError, match="lam"):
        loss(s, ya, yb, torch.tensor([0.5, -0.1, 0.2]))
    with pytest.raises(ValueError, match="lam"):
        loss(s, ya, yb, torch.rand(2))
    with pytest.raises(ValueError, match=r"y_a must lie in \[0, 4\)"):
        loss(s, torch.tensor([0, 4, 1]), yb, 0.5)
    with pytest.raises(ValueError, match="logits"):
        loss(torch.randn(3, 4, 1), ya, yb, 0.5)
    with pytest.raises(TypeError, match="y_a"):
        loss(s, ya.float(), yb, 0.5)
    with pytest.raises(ValueError, match="reduction"):
        MixedSingletonLoss(reduction="batchmean")


def _brute_mixed_ce(s, a, b, lam):
    """CE over the explicit K(K-1)/2 mixed labels (a < b), z_ab = lam s_a + (1 - lam) s_b (BMLS Eq. 3-4)."""
    k = s.shape[0]
    if a > b:
        a, b, lam = b, a, 1 - lam
    z = torch.stack([lam * s[c] + (1 - lam) * s[d] for c in range(k) for d in range(c + 1, k)])
    return torch.logsumexp(z, 0) - (lam * s[a] + (1 - lam) * s[b])


def test_fidelity_random_ms_same_class_pairs_masked_or_singletons():
    torch.manual_seed(0)
    s = torch.randn(6, 5, dtype=torch.float64)
    y_a, y_b = torch.tensor([0, 1, 3, 2, 4, 4]), torch.tensor([2, 1, 0, 2, 1, 4])
    lam = torch.rand(6, dtype=torch.float64)
    mixed = [i for i in range(6) if y_a[i] != y_b[i]]
    brute = torch.stack([_brute_mixed_ce(s[i], int(y_a[i]), int(y_b[i]), lam[i]) for i in mixed])
    masked = MixedSingletonLoss(reduction="none")(s, y_a, y_b, lam)
    assert torch.allclose(masked[mixed], brute) and torch.all(masked[[1, 3, 5]] == 0)
    assert torch.allclose(MixedSingletonLoss()(s, y_a, y_b, lam), brute.mean())  # mean over kept samples only
    assert MixedSingletonLoss().kept(y_a, y_b).tolist() == [True, False, True, False, True, False]
    single = MixedSingletonLoss(same_class="singleton", reduction="none")(s, y_a, y_b, lam)
    ce = torch.nn.functional.cross_entropy(s, y_a, reduction="none")
    assert torch.allclose(single[mixed], brute) and torch.allclose(single[[1, 3, 5]], ce[[1, 3, 5]])
    with pytest.raises(ValueError, match="same_class"):
        MixedSingletonLoss(same_class="drop")
