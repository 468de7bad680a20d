import math

import pytest
import torch

import ltzoo
from ltzoo.heads.flow import FlowOutput
from ltzoo.losses.dlsa import (ClusterBalanceLoss, DLSALoss, DLSAMLELoss, DLSAPurityLoss, MomentumEstimator,
                               kl_to_uniform, mle_class_weights)
from ltzoo.recipes.dlsa import draw_negatives


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


def test_mle_class_weights():
    counts = [100, 50, 10]
    w = mle_class_weights(counts)
    assert float((w * torch.tensor(counts, dtype=torch.float32)).sum()) == pytest.approx(sum(counts), rel=1e-6)
    assert float(w[2] / w[0]) == pytest.approx((100 / 10) ** 2)
    assert float(w[1] / w[0]) == pytest.approx(4.0)


def test_mle_loss_is_weighted_negative_log_likelihood():
    loss = DLSAMLELoss([100, 50, 10])
    ll, y = torch.tensor([-1.0, -2.0, -3.0]), torch.tensor([0, 1, 2])
    w = mle_class_weights([100, 50, 10])
    assert torch.isclose(loss(ll, y), (w * torch.tensor([1.0, 2.0, 3.0])).mean())
    assert DLSAMLELoss([1, 1, 1], reduction="none")(ll, y).tolist() == [1.0, 2.0, 3.0]


def test_purity_loss_pushes_negatives_out_of_anchor_clusters():
    big = 20.0
    anchor = torch.tensor([[big, 0.0, 0.0]])
    same = torch.tensor([[big, 0.0, 0.0]], requires_grad=True)
    other = torch.tensor([[0.0, big, 0.0]])
    loss = DLSAPurityLoss()
    assert float(loss(anchor, other)) < 1e-6
    assert float(loss(anchor, same.detach())) > 5
    anchor_p = anchor.clone().requires_grad_(True)
    loss(anchor_p, same).backward()
    assert anchor_p.grad is None  # the anchor's posterior is the target
    assert same.grad[0, 0] > 0  # descending lowers the negative's logit for the anchor's cluster (not saturated)
    a, b = torch.randn(5, 4), torch.randn(5, 4)
    naive = -torch.log(1 - (a.softmax(1) * b.softmax(1)).sum(1))
    assert torch.allclose(DLSAPurityLoss(reduction="none")(a, b), naive, atol=1e-6)
    assert float(DLSAPurityLoss()(torch.zeros(3, 1), torch.zeros(3, 1))) == 0.0  # one cluster: nothing to push


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
    expected = (DLSAMLELoss([30, 10])(out.log_likelihood, y)
                + 2.0 * kl_to_uniform(out.cluster_logits.softmax(1).mean(0))
                + 0.5 * DLSAPurityLoss()(out.cluster_logits, neg.cluster_logits))
    assert torch.isclose(total, expected, atol=1e-6)
    assert set(crit.last) == {"mle", "balance", "purity"}
    assert crit(out, y).ndim == 0 and "purity" not in crit.last


@pytest.mark.parametrize("kwargs, match", [
    ({"lambda_bal": -1.0}, "lambda_bal"), ({"lambda_pure": float("nan")}, "lambda_pure"),
    ({"momentum": 1.0}, "momentum"), ({"reduction": "none"}, "reduction"), ({"num_components": 0}, "num_components"),
])
def test_combined_loss_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DLSALoss(**{"class_counts": [3, 2], "num_components": 4, **kwargs})


def test_losses_reject_bad_inputs():
    with pytest.raises(ValueError, match="class_counts"):
        DLSAMLELoss([3, 0])
    with pytest.raises(ValueError, match="target"):
        DLSAMLELoss([3, 2])(torch.zeros(2), torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="cluster_logits"):
        ClusterBalanceLoss(4)(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="negative_cluster_logits"):
        DLSAPurityLoss()(torch.zeros(2, 3), torch.zeros(3, 3))
    with pytest.raises(TypeError, match="FlowOutput"):
        DLSALoss([3, 2], 4)(torch.zeros(2, 4), torch.tensor([0, 1]))


def test_draw_negatives_are_other_classes_uniformly():
    labels = torch.tensor([0] * 5 + [1] * 3 + [2] * 2)[torch.randperm(10)]
    gen = torch.Generator().manual_seed(0)
    anchors = torch.arange(10).repeat(2000)
    neg = draw_negatives(labels, anchors, gen)
    assert bool((labels[neg] != labels[anchors]).all())
    hits = torch.bincount(neg[labels[anchors] == 0], minlength=10).float()  # class-0 anchors: 5 others, uniform
    others = hits[labels != 0]
    assert float(others.min() / others.max()) > 0.85 and float(hits[labels == 0].sum()) == 0
    with pytest.raises(ValueError, match="two classes"):
        draw_negatives(torch.zeros(4, dtype=torch.long), torch.arange(4), gen)
