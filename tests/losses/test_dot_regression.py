import math

import pytest
import torch

import ltzoo
import ltzoo.losses.dot_regression  # noqa: F401  (registers "dot_regression")
from ltzoo.losses.dot_regression import DotRegressionLoss, batch_target_scales


def _head(d=6, k=4, seed=0):
    torch.manual_seed(seed)
    head = ltzoo.create_head("etf", in_features=d, num_classes=k).double()
    with torch.no_grad():
        head.bn.weight.uniform_(0.5, 2)
        head.bn.bias.uniform_(-1, 1)
    return head


def _reference(head, x, y, scales=None, reg=0.0):
    """Per-sample DR loss written out with loops (BN in training mode: batch statistics)."""
    mu, var = x.mean(0), x.var(0, unbiased=False)
    z = (x - mu) / torch.sqrt(var + head.bn.eps) * head.bn.weight + head.bn.bias
    m_all = simplex_etf_cols(head)
    out = []
    for i in range(len(y)):
        h = z[i] / z[i].norm()
        m = m_all[int(y[i])] * (1.0 if scales is None else scales[int(y[i])])
        hn, mn = float(h.detach().norm()), float(m.norm())
        out.append(0.5 * (h @ m - mn * hn) ** 2 / hn + reg * h.norm())
    return torch.stack(out)


def simplex_etf_cols(head):
    return [head.etf[:, c] for c in range(head.num_classes)]


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_dr_matches_written_out_formula(reduction):
    head = _head()
    x, y = torch.randn(5, 6, dtype=torch.float64), torch.tensor([0, 1, 3, 3, 2])
    for rescale, scales in ((False, None), (True, [1.25 ** 0.5, 1.25 ** 0.5, 1.25 ** 0.5, 0.625 ** 0.5])):
        loss = ltzoo.create_loss("dot_regression", head=head, reduction=reduction, rescale_targets=rescale)
        ref = _reference(head, x, y, scales=scales)  # gamma = 5 / 4: class 3 (twice) sqrt(5/8), others sqrt(5/4)
        exp = {"none": ref, "sum": ref.sum(), "mean": ref.mean()}[reduction]
        assert torch.allclose(loss(x, y), exp)
        assert exp.abs().sum() > 0


def test_dr_rescaled_targets_hand_computed():
    y = torch.tensor([0, 0, 0, 1])
    scales = batch_target_scales(y, 3)  # gamma = 4 / 2
    assert torch.allclose(scales, torch.tensor([math.sqrt(2 / 3), math.sqrt(2.0), 1.0]))
    head = _head(k=3)
    x = torch.randn(4, 6, dtype=torch.float64)
    loss = DotRegressionLoss(head, reduction="none", rescale_targets=True)
    ref = _reference(head, x, y, scales=[math.sqrt(2 / 3), math.sqrt(2.0), 1.0])
    assert torch.allclose(loss(x, y), ref)
    assert torch.allclose(DotRegressionLoss(head, reduction="none")(x, y), ref)  # the default, as the authors' code
    assert not torch.allclose(DotRegressionLoss(head, reduction="none", rescale_targets=False)(x, y), ref)


def test_dr_reg_lambda_and_gradients_reach_bn_only():
    head = _head()
    x, y = torch.randn(5, 6, dtype=torch.float64, requires_grad=True), torch.tensor([0, 1, 2, 3, 0])
    base = DotRegressionLoss(head, reduction="sum", rescale_targets=False)(x, y)
    reg = DotRegressionLoss(head, reduction="sum", rescale_targets=False, reg_lambda=0.3)(x, y)
    assert torch.allclose(reg, _reference(head, x, y, reg=0.3).sum())
    assert torch.allclose(reg - base, torch.tensor(0.3 * 5, dtype=torch.float64))  # ||h|| = 1 after L2 norm
    base.backward()
    assert x.grad is not None and head.bn.weight.grad is not None
    assert head.etf.grad is None
    assert list(DotRegressionLoss(head).parameters()) == []  # the head is not a submodule


def test_dr_zero_when_features_align_with_targets():
    head = _head(d=4, k=4)
    head.eval()
    with torch.no_grad():  # BN identity in eval: mean 0, var 1, weight 1, bias 0
        head.bn.weight.fill_(1)
        head.bn.bias.zero_()
    y = torch.tensor([2, 0])
    x = head.etf.T[y] * math.sqrt(1 + head.bn.eps) * 3.0
    assert torch.allclose(DotRegressionLoss(head)(x, y), torch.zeros((), dtype=torch.float64), atol=1e-10)


def test_dr_bad_arguments_and_inputs():
    head = _head()
    with pytest.raises(TypeError, match="head must be an ETFHead"):
        ltzoo.create_loss("dot_regression", head=ltzoo.create_head("wetf", in_features=6, num_classes=4))
    with pytest.raises(ValueError, match="reduction"):
        DotRegressionLoss(head, reduction="avg")
    with pytest.raises(ValueError, match="reg_lambda"):
        DotRegressionLoss(head, reg_lambda=-1.0)
    loss = DotRegressionLoss(head)
    x = torch.randn(3, 6, dtype=torch.float64)
    with pytest.raises(ValueError, match="features"):
        loss(torch.randn(3, 5, dtype=torch.float64), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="target"):
        loss(x, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"target must lie in \[0, 4\)"):
        loss(x, torch.tensor([0, 1, 4]))


def test_dr_zero_feature_uses_clamped_norm():
    head = _head(k=3)
    with torch.no_grad():  # BN output 0 -> h = 0, ||h|| clamped to 1e-8: loss = 0.5 * ||m||^2 * 1e-8
        head.bn.weight.zero_()
        head.bn.bias.zero_()
    out = DotRegressionLoss(head, reduction="none")(torch.randn(2, 6, dtype=torch.float64), torch.tensor([0, 2]))
    assert torch.allclose(out, torch.full((2,), 0.5e-8, dtype=torch.float64), rtol=1e-6, atol=0)
