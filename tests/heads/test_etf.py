import io
import math

import pytest
import torch
from torch import nn

import ltzoo
from ltzoo.heads.etf import ETFHead, MSHead, MSWETFHead, WETFHead, simplex_etf
from ltzoo.heads.linear import LinearHead
from ltzoo.registry import HEADS


@pytest.mark.parametrize("d,k", [(2, 2), (5, 2), (10, 10), (16, 10), (128, 100)])
def test_simplex_etf_geometry(d, k):
    m = simplex_etf(d, k, seed=3).double()
    assert m.shape == (d, k)
    assert torch.allclose(m.norm(dim=0), torch.ones(k, dtype=torch.float64), atol=1e-5)
    gram = m.T @ m
    off = gram[~torch.eye(k, dtype=torch.bool)]
    assert torch.allclose(off, torch.full_like(off, -1.0 / (k - 1)), atol=1e-5)
    assert torch.allclose(m.sum(dim=1), torch.zeros(d, dtype=torch.float64), atol=1e-5)  # centred


def test_simplex_etf_is_seeded():
    assert torch.equal(simplex_etf(12, 5, seed=1), simplex_etf(12, 5, seed=1))
    assert not torch.allclose(simplex_etf(12, 5, seed=1), simplex_etf(12, 5, seed=2))


@pytest.mark.parametrize("d,k,match", [(10, 1, "num_classes"), (4, 5, "feature dim >= num_classes")])
def test_simplex_etf_refuses_bad_sizes(d, k, match):
    with pytest.raises(ValueError, match=match):
        simplex_etf(d, k)


def test_etf_refusal_names_wider_backbones():
    with pytest.raises(ValueError) as err:
        ltzoo.create_head("etf", in_features=64, num_classes=100)
    msg = str(err.value)
    assert "feature dim >= num_classes" in msg and "in_features=64" in msg
    assert "resnet32_w2" in msg and "wrn_28_8" in msg
    assert "resnet32 " not in msg and "resnet32," not in msg  # the 64-d net does not qualify
    with pytest.raises(ValueError, match="resnet32_w2"):
        ltzoo.create_head("ms_wetf", in_features=64, num_classes=100)


def test_etf_head_forward_matches_formula():
    head = ltzoo.create_head("etf", in_features=8, num_classes=5, seed=0)
    assert isinstance(head, ETFHead) and head.default_loss == "dot_regression"
    x = torch.randn(6, 8)
    head.train()
    mu, var = x.mean(0), x.var(0, unbiased=False)
    bn = (x - mu) / torch.sqrt(var + 1e-5)
    h = bn / bn.norm(dim=1, keepdim=True)
    assert torch.allclose(head(x), h @ simplex_etf(8, 5, seed=0), atol=1e-5)
    with pytest.raises(ValueError, match=r"features must have shape \(B, 8\)"):
        head(torch.randn(6, 7))


def test_etf_is_a_buffer_and_stays_fixed_while_bn_trains():
    torch.manual_seed(0)
    head = ETFHead(6, 4)
    names = dict(head.named_parameters())
    assert "etf" in head.state_dict() and "etf" not in names
    assert not any(p is head.etf for p in head.parameters())
    model = nn.Sequential(nn.Linear(3, 6), head)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    etf0, w0 = head.etf.clone(), head.bn.weight.detach().clone()
    x, y = torch.randn(16, 3), torch.randint(0, 4, (16,))
    for _ in range(3):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x) * 10, y).backward()
        opt.step()
    assert torch.equal(head.etf, etf0)
    assert not torch.allclose(head.bn.weight, w0)


@pytest.mark.parametrize("name", ["etf", "wetf", "ms_wetf"])
def test_state_dict_round_trip_gives_identical_outputs(name):
    torch.manual_seed(0)
    head = ltzoo.create_head(name, in_features=6, num_classes=4, seed=5)
    with torch.no_grad():  # make the state non-default
        head(torch.randn(10, 6) * 3 + 1)
        if hasattr(head, "scale"):
            head.scale.uniform_(0.5, 2)
    head.eval()
    buf = io.BytesIO()
    torch.save(head.state_dict(), buf)
    buf.seek(0)
    other = ltzoo.create_head(name, in_features=6, num_classes=4, seed=99)  # different ETF before loading
    other.load_state_dict(torch.load(buf, weights_only=True))
    other.eval()
    x = torch.randn(7, 6)
    assert torch.equal(head(x), other(x))


def test_wetf_forward_and_learnable_scale():
    head = ltzoo.create_head("wetf", in_features=5, num_classes=3, seed=1)
    assert isinstance(head, WETFHead) and head.default_loss == "ce"
    assert torch.equal(head.scale.detach(), torch.ones(3))
    assert [n for n, _ in head.named_parameters()] == ["scale"]
    with torch.no_grad():
        head.scale.copy_(torch.tensor([0.5, 2.0, -1.0]))
    x = torch.randn(4, 5)
    m = simplex_etf(5, 3, seed=1)
    expected = torch.stack([
        torch.stack([sum(x[i, d] * m[d, c] * head.scale[c] for d in range(5)) for c in range(3)])
        for i in range(4)
    ])
    assert torch.allclose(head(x), expected, atol=1e-5)  # raw features: no BN, no normalisation
    s0 = head.scale.detach().clone()
    opt = torch.optim.SGD(head.parameters(), lr=0.1)
    nn.functional.cross_entropy(head(x), torch.tensor([0, 1, 2, 0])).backward()
    opt.step()
    assert not torch.allclose(head.scale, s0)
    assert torch.equal(head.etf, m)


def test_ms_heads_share_forward_and_default_loss():
    ms = ltzoo.create_head("ms", in_features=4, num_classes=3)
    assert isinstance(ms, LinearHead) and isinstance(ms, MSHead)
    assert ms.default_loss == "mixed_singleton"
    x = torch.randn(2, 4)
    assert torch.allclose(ms(x), x @ ms.fc.weight.T + ms.fc.bias)
    msw = ltzoo.create_head("ms_wetf", in_features=4, num_classes=3, seed=2)
    assert isinstance(msw, MSWETFHead) and msw.default_loss == "mixed_singleton"
    wetf = ltzoo.create_head("wetf", in_features=4, num_classes=3, seed=2)
    assert torch.equal(msw(x), wetf(x)) and msw(x).shape == (2, 3)


@pytest.mark.parametrize("name", ["fc", "ms", "etf", "wetf", "ms_wetf"])
def test_cam_weights_shape(name):
    head = ltzoo.create_head(name, in_features=7, num_classes=4)
    assert head.cam_weights().shape == (4, 7)


def test_wetf_cam_weights_reproduce_logits():
    head = ltzoo.create_head("ms_wetf", in_features=6, num_classes=4)
    with torch.no_grad():
        head.scale.uniform_(0.5, 2)
    x = torch.randn(3, 6)
    assert torch.allclose(x @ head.cam_weights().T, head(x), atol=1e-5)


def test_etf_cam_weights_are_logits_up_to_per_sample_scale_and_class_constant():
    torch.manual_seed(0)
    head = ETFHead(8, 5)
    with torch.no_grad():  # non-trivial running stats and affine map
        head.bn.weight.uniform_(0.5, 2)
        head.bn.bias.uniform_(-1, 1)
        for _ in range(5):
            head(torch.randn(32, 8) * 2 + 0.5)
    head.eval()
    x = torch.randn(6, 8, dtype=torch.float64)
    w = head.cam_weights().double()
    z = head(x.float()).double()
    bn = head.bn
    a = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
    c = bn.bias.double() - bn.running_mean.double() * a
    r = (x * a + c).norm(dim=1, keepdim=True)  # per-sample positive scale 1/||BN(x)||
    residual = z * r - x @ w.T  # should be the same per-class constant for every sample
    assert torch.allclose(residual, residual[:1].expand_as(residual), atol=1e-4)
    assert not torch.allclose(residual, torch.zeros_like(residual), atol=1e-3)  # the shift is real
    # min-max-normalised CAM over a spatial map equals the one from the exact logit map
    fmap = torch.randn(8, 4, 4, dtype=torch.float64)
    cam = torch.einsum("kd,dhw->khw", w, fmap)
    exact = torch.einsum("kd,dhw->khw", head.etf.T.double(), (fmap * a[:, None, None] + c[:, None, None]))

    def mm(t):
        t = t.flatten(1)
        return (t - t.min(1, keepdim=True).values) / (t.max(1, keepdim=True).values - t.min(1, keepdim=True).values)

    assert torch.allclose(mm(cam), mm(exact), atol=1e-6)


def test_heads_listed():
    assert {"etf", "wetf", "ms", "ms_wetf"} <= set(ltzoo.list_heads())
    assert math.isclose(float(simplex_etf(3, 3).norm(dim=0)[0]), 1.0, rel_tol=1e-5)


@pytest.mark.parametrize("name", ["wetf", "ms_wetf"])
def test_fidelity_wetf_feature_norm_flag(name):
    """feature_norm=False (default): raw features @ (M * s); True: L2(BN(x)) @ (M * s), written out."""
    torch.manual_seed(0)
    x = torch.randn(16, 12) * 3 + 1
    plain = HEADS.get(name)(12, 5)
    assert plain.feature_norm is False and plain.bn is None
    with torch.no_grad():
        plain.scale.copy_(torch.linspace(0.5, 2.0, 5))
    assert torch.allclose(plain(x), x @ (plain.etf * plain.scale[None, :]), atol=1e-6)
    normed = HEADS.get(name)(12, 5, feature_norm=True)
    normed.train()
    bn_x = (x - x.mean(0)) / torch.sqrt(x.var(0, unbiased=False) + 1e-5)  # BN at init: weight 1, bias 0
    h = bn_x / bn_x.norm(dim=1, keepdim=True)
    assert torch.allclose(normed(x), h @ normed.etf, atol=1e-5)
    assert set(normed.state_dict()) >= {"bn.running_mean", "etf", "scale"} and "bn.weight" not in plain.state_dict()
    with pytest.raises(TypeError, match="feature_norm"):
        HEADS.get(name)(12, 5, feature_norm="yes")


@pytest.mark.parametrize("make", [lambda: ETFHead(8, 4), lambda: WETFHead(8, 4, feature_norm=True)])
def test_reliability_batch_of_one_in_training_uses_running_statistics(make):
    torch.manual_seed(0)
    head = make().train()
    head(torch.randn(16, 8))  # moves the running statistics away from (0, 1)
    bn = head.bn
    mean, var = bn.running_mean.clone(), bn.running_var.clone()
    x = torch.randn(1, 8)
    out = head(x)  # torch's BatchNorm1d alone raises "Expected more than 1 value per channel when training"
    assert torch.equal(bn.running_mean, mean) and torch.equal(bn.running_var, var)  # not updated by one sample
    by_hand = (x - mean) / torch.sqrt(var + bn.eps) * bn.weight + bn.bias
    expected = head.eval()(x)  # eval mode normalises with the same running statistics
    assert torch.allclose(out, expected, atol=1e-6)
    assert torch.allclose(torch.nn.functional.normalize(by_hand, dim=1),
                          torch.nn.functional.normalize(bn.eval()(x), dim=1), atol=1e-6)
