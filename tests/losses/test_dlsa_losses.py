import math

import pytest
import torch

import ltzoo
from ltzoo.heads.flow import FlowOutput
from ltzoo.losses.dlsa import (
    ClusterBalanceLoss,
    DLSALoss,
    DLSAMLELoss,
    DLSAPurityLoss,
    MomentumEstimator,
    kl_to_uniform,
    mle_class_weights,
)
from ltzoo.recipes.dlsa import draw_pairs


def _entropy(p):
    return -(p * p.log()).sum()


def test_balance_loss_is_log_k_minus_entropy():
    torch.manual_seed(0)
    logits = torch.randn(32, 7) * 2
    loss = ClusterBalanceLoss(7, momentum=0.0)  # eta = 0: the batch mean itself
    p_bar = logits.softmax(1).mean(0)
    assert torch.isclose(loss(logits), math.log(7) - _entropy(p_bar), atol=1e-6)
    assert torch.isclose(kl_to_uniform(p_bar), math.log(7) - _entropy(p_bar), atol=1e-6)
    assert float(kl_to_uniform(torch.full((5,), 0.2))) == pytest.approx(0.0, abs=1e-7)


def test_balance_loss_uses_bias_corrected_momentum_estimate():
    torch.manual_seed(0)
    loss = ClusterBalanceLoss(4, momentum=0.7)
    a, b = torch.randn(8, 4), torch.randn(8, 4)
    pa, pb = a.softmax(1).mean(0), b.softmax(1).mean(0)
    assert torch.isclose(loss(a), kl_to_uniform(pa))  # t = 1: (0.3 pa) / (1 - 0.7) = pa
    est = (0.7 * 0.3 * pa + 0.3 * pb) / (1 - 0.7 ** 2)
    assert torch.isclose(est.sum(), torch.tensor(1.0))
    assert torch.isclose(loss(b), kl_to_uniform(est), atol=1e-6)


def test_momentum_estimator_unbiased_and_more_efficient():
    """Supplement Sec. 2.2: E[p_t / (1 - eta^t)] = mean (Eq. 3); variance phi(1)/phi(t) of one batch's (Eq. 4)."""
    runs, eta, mean, std = 20000, 0.7, 0.3, 0.1
    gen = torch.Generator().manual_seed(0)
    corrected = MomentumEstimator(runs, momentum=eta)  # one independent run per entry
    raw = MomentumEstimator(runs, momentum=eta, bias_correction=False)
    for t in range(1, 6):
        x = mean + std * torch.randn(runs, generator=gen, dtype=torch.float64).float()
        est, biased = corrected(x), raw(x)
    assert float(est.mean()) == pytest.approx(mean, abs=3 * std / math.sqrt(runs) * 1.5)
    assert float(biased.mean()) == pytest.approx((1 - eta ** 5) * mean, abs=1e-3)  # the raw EMA is biased
    phi = lambda t: (1 - eta ** t) / (1 + eta ** t)  # noqa: E731
    batch_var = std ** 2
    assert float(est.var()) < batch_var
    assert float(est.var()) == pytest.approx(phi(1) / phi(5) * batch_var, rel=0.05)
    assert int(corrected.step) == 5 and "ema" in corrected.state_dict()


def test_momentum_estimator_gradient_flows_through_current_batch_only():
    est = MomentumEstimator(3, momentum=0.5)
    x1 = torch.rand(3, requires_grad=True)
    est(x1)
    x2 = torch.rand(3, requires_grad=True)
    est(x2).sum().backward()
    assert x1.grad is None and torch.allclose(x2.grad, torch.full((3,), 0.5 / 0.75))
    est.reset()
    assert int(est.step) == 0 and float(est.ema.abs().sum()) == 0


def test_fidelity_mle_class_weights_are_the_authors_normalised_over_classes():
    """w_c = (n_max / n_c)^q / sum_j (n_max / n_j)^q with q = 2 (the authors' weight_q)."""
    counts = [100, 50, 10]
    raw = [(100 / 100) ** 2, (100 / 50) ** 2, (100 / 10) ** 2]
    expected = torch.tensor([r / sum(raw) for r in raw])
    assert torch.allclose(mle_class_weights(counts), expected)
    assert float(mle_class_weights(counts).sum()) == pytest.approx(1.0)
    assert torch.allclose(mle_class_weights(counts, q=1.0), torch.tensor([1.0, 2.0, 10.0]) / 13.0)
    assert torch.allclose(mle_class_weights(counts, q=0.0), torch.full((3,), 1 / 3))
    # a class absent at a deeper level has weight 0 and is left out of the normalisation
    assert torch.allclose(mle_class_weights([100, 0, 10]), torch.tensor([1.0, 0.0, 100.0]) / 101.0)
    assert torch.allclose(mle_class_weights([100, 0, 10], q=0.0), torch.tensor([0.5, 0.0, 0.5]))


def test_mle_loss_is_weighted_negative_log_likelihood():
    loss = DLSAMLELoss([100, 50, 10])
    ll, y = torch.tensor([-1.0, -2.0, -3.0]), torch.tensor([0, 1, 2])
    w = torch.tensor([1.0, 4.0, 100.0]) / 105.0
    assert torch.isclose(loss(ll, y), (w * torch.tensor([1.0, 2.0, 3.0])).mean())
    assert DLSAMLELoss([1, 1, 1], reduction="none")(ll, y).tolist() == pytest.approx([1 / 3, 2 / 3, 1.0])


def test_fidelity_purity_soft_ce_is_the_authors_formula():
    """The authors' soft_ce with contrast_freeze: mean_i sum_k softmax(anchor_i)_k log softmax(neg_i)_k,
    the anchor detached; with contrast_margin m, log clamp(softmax(neg), m, 1)."""
    torch.manual_seed(0)
    a, b = torch.randn(6, 5) * 2, torch.randn(6, 5) * 2
    q, p = torch.softmax(a, 1), torch.softmax(b, 1)
    by_hand = (q * torch.log(p)).sum(1)
    assert torch.allclose(DLSAPurityLoss(reduction="none")(a, b), by_hand, atol=1e-6)
    assert float(DLSAPurityLoss()(a, b)) <= 0  # minus a cross-entropy
    clamped = (q * torch.log(torch.clamp(p, 0.1, 1.0))).sum(1)
    assert torch.allclose(DLSAPurityLoss(reduction="none", margin=0.1)(a, b), clamped, atol=1e-6)
    assert not torch.allclose(clamped, by_hand)
    # sign: descending moves the negative's mass off the anchor's cluster; the anchor gets no gradient
    anchor = torch.tensor([[4.0, 0.0, 0.0]], requires_grad=True)
    neg = torch.tensor([[1.0, 0.0, 0.0]], requires_grad=True)
    DLSAPurityLoss()(anchor, neg).backward()
    assert anchor.grad is None and neg.grad[0, 0] > 0
    # unbounded below without a margin, bounded by log m with one
    sharp, far = torch.tensor([[30.0, 0.0, 0.0]]), torch.tensor([[0.0, 30.0, 0.0]])
    assert float(DLSAPurityLoss()(sharp, far)) < -25
    assert float(DLSAPurityLoss(margin=0.1)(sharp, far)) == pytest.approx(math.log(0.1), abs=1e-4)
    # without contrast_freeze the anchor's posterior is trained too
    anchor2 = anchor.detach().clone().requires_grad_(True)
    DLSAPurityLoss(detach_anchor=False)(anchor2, neg.detach()).backward()
    assert anchor2.grad is not None


def test_purity_log1m_pushes_negatives_out_of_anchor_clusters():
    big = 20.0
    anchor = torch.tensor([[big, 0.0, 0.0]])
    same = torch.tensor([[big, 0.0, 0.0]], requires_grad=True)
    other = torch.tensor([[0.0, big, 0.0]])
    loss = DLSAPurityLoss(form="log1m")
    assert float(loss(anchor, other)) < 1e-6
    assert float(loss(anchor, same.detach())) > 5
    anchor_p = anchor.clone().requires_grad_(True)
    loss(anchor_p, same).backward()
    assert anchor_p.grad is None  # the anchor's posterior is the target
    assert same.grad[0, 0] > 0  # descending lowers the negative's logit for the anchor's cluster (not saturated)
    a, b = torch.randn(5, 4), torch.randn(5, 4)
    naive = -torch.log(1 - (a.softmax(1) * b.softmax(1)).sum(1))
    assert torch.allclose(DLSAPurityLoss(reduction="none", form="log1m")(a, b), naive, atol=1e-6)
    assert float(DLSAPurityLoss()(torch.zeros(3, 1), torch.zeros(3, 1))) == 0.0  # one cluster: nothing to push
    with pytest.raises(ValueError, match="form"):
        DLSAPurityLoss(form="bce")
    with pytest.raises(ValueError, match="margin"):
        DLSAPurityLoss(margin=1.5)
    with pytest.raises(ValueError, match="margin"):
        DLSAPurityLoss(form="log1m", margin=0.1)


def test_combined_loss_and_registry():
    torch.manual_seed(0)
    names = ltzoo.list_losses("dlsa*")
    assert names == ["dlsa", "dlsa_balance", "dlsa_mle", "dlsa_purity"]
    crit = ltzoo.create_loss("dlsa", class_counts=[30, 10], num_components=4, lambda_bal=2.0, lambda_pure=0.5,
                             momentum=0.0)
    out = FlowOutput(torch.randn(6, 3), torch.randn(6), torch.randn(6, 4), torch.randn(6))
    neg = FlowOutput(torch.randn(6, 3), torch.randn(6), torch.randn(6, 4), torch.randn(6))
    y = torch.tensor([0, 1, 0, 1, 0, 0])
    total = crit(out, y, neg)
    w = torch.tensor([1.0, 9.0]) / 10.0  # (30 / n_c)^2 normalised
    by_hand = (2.0 * (-w[y] * out.log_likelihood).mean()  # lambda_lh = 2 (the authors')
               + 2.0 * kl_to_uniform(out.cluster_logits.softmax(1).mean(0))
               + 0.5 * (out.cluster_logits.softmax(1) * neg.cluster_logits.log_softmax(1)).sum(1).mean())
    assert torch.isclose(total, by_hand, atol=1e-5)
    expected = (2.0 * DLSAMLELoss([30, 10])(out.log_likelihood, y)
                + 2.0 * kl_to_uniform(out.cluster_logits.softmax(1).mean(0))
                + 0.5 * DLSAPurityLoss()(out.cluster_logits, neg.cluster_logits))
    assert torch.isclose(total, expected, atol=1e-6)
    assert set(crit.last) == {"mle", "balance", "purity"}
    assert crit(out, y).ndim == 0 and "purity" not in crit.last


@pytest.mark.parametrize("kwargs, match", [
    ({"lambda_bal": -1.0}, "lambda_bal"), ({"lambda_pure": float("nan")}, "lambda_pure"),
    ({"momentum": 1.0}, "momentum"), ({"reduction": "none"}, "reduction"), ({"num_components": 0}, "num_components"),
    ({"lambda_lh": -2.0}, "lambda_lh"), ({"q": -1.0}, "q"), ({"purity": "bce"}, "form"),
])
def test_combined_loss_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DLSALoss(**{"class_counts": [3, 2], "num_components": 4, **kwargs})


def test_losses_reject_bad_inputs():
    with pytest.raises(ValueError, match="class_counts"):
        DLSAMLELoss([0, 0])
    with pytest.raises(ValueError, match="class_counts"):
        DLSAMLELoss([3, -1])
    with pytest.raises(ValueError, match="target"):
        DLSAMLELoss([3, 2])(torch.zeros(2), torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="cluster_logits"):
        ClusterBalanceLoss(4)(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="negative_cluster_logits"):
        DLSAPurityLoss()(torch.zeros(2, 3), torch.zeros(3, 3))
    with pytest.raises(TypeError, match="FlowOutput"):
        DLSALoss([3, 2], 4)(torch.zeros(2, 4), torch.tensor([0, 1]))


def test_fidelity_draw_pairs_anchor_class_uniform_negative_class_uniform_over_others():
    """The authors' sampler: anchor class uniform over classes (not over samples), negative class
    uniform over the other classes, positions uniform within a class."""
    labels = torch.tensor([0] * 50 + [1] * 10 + [3] * 2)[torch.randperm(62, generator=torch.Generator().manual_seed(1))]
    gen = torch.Generator().manual_seed(0)
    n = 30000
    anchors, negatives = draw_pairs(labels, n, gen)
    ya, yn = labels[anchors], labels[negatives]
    assert bool((ya != yn).all())
    counts = torch.bincount(ya, minlength=4).float()
    assert counts[2] == 0  # absent class never drawn
    assert counts[[0, 1, 3]].tolist() == pytest.approx([n / 3] * 3, rel=0.05)  # not 50 : 10 : 2
    pair = torch.zeros(4, 4).index_put_((ya, yn), torch.ones(n), accumulate=True)
    for c in (0, 1, 3):  # the negative's class splits evenly over the two other classes
        others = [d for d in (0, 1, 3) if d != c]
        assert float(pair[c, others[0]] / pair[c, others[1]]) == pytest.approx(1.0, abs=0.1)
    within = torch.bincount(anchors[ya == 1], minlength=62).float()[labels == 1]  # 10 samples, uniform
    assert float(within.min() / within.max()) > 0.8
    single, none = draw_pairs(torch.zeros(4, dtype=torch.long), 5, gen)
    assert none is None and single.numel() == 5
    with pytest.raises(ValueError, match="n must"):
        draw_pairs(labels, 0, gen)
