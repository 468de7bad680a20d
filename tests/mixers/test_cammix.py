"""CamMix on stub models whose class activation map is a known rectangle (see conftest.py)."""
import pytest
import torch

import ltzoo
from ltzoo.mixers.base import random_boxes, sample_beta
from ltzoo.mixers.cammix import CamMix

H = W = 32


def _partners():
    """Two partner images: class 0 (channel 0) has a 8x13 rectangle plus a smaller 3x3 one and a
    0.6-valued patch below the threshold; class 2 (channel 2) has a 10x12 rectangle in a corner."""
    g = torch.Generator().manual_seed(0)
    px = 0.02 * torch.rand(2, 3, H, W, generator=g)
    px[0, 0] = 0.0
    px[0, 0, 5:13, 8:21] = 1.0
    px[0, 0, 25:28, 25:28] = 1.0
    px[0, 0, 20:24, 2:11] = 0.6
    px[1, 2] = 0.0
    px[1, 2, 0:10, 20:32] = 1.0
    return px


def _check_paste(mb, x, px):
    for i in range(x.shape[0]):
        y0, x0, y1, x1 = mb.boxes[i].tolist()
        inside = torch.zeros(H, W, dtype=torch.bool)
        inside[y0:y1, x0:x1] = True
        assert torch.equal(mb.x[i][:, inside], px[i][:, inside])
        assert torch.equal(mb.x[i][:, ~inside], x[i][:, ~inside])
        assert mb.lam[i].item() == pytest.approx(1 - (y1 - y0) * (x1 - x0) / (H * W), abs=1e-7)


@pytest.mark.parametrize("kind", ["linear", "tanh"])  # CAM, and Grad-CAM for a head without cam_weights
def test_finds_the_activated_rectangle(make_model, kind):
    model, px = make_model(kind), _partners()
    x, y = -torch.ones(2, 3, H, W), torch.tensor([7, 8])
    mb = ltzoo.create_mixer("cammix", tau_a=0.05)(x, y, partner_x=px, model=model)
    assert mb.boxes.tolist() == [[5, 8, 13, 21], [0, 20, 10, 32]]
    assert torch.equal(mb.y_a, y) and mb.y_b.tolist() == [0, 2]  # pseudo-labels: argmax of the head
    assert not mb.extras["cam_fallback"].any()
    assert mb.extras["region_ratio"].tolist() == pytest.approx([8 * 13 / 1024, 10 * 12 / 1024])
    _check_paste(mb, x, px)
    assert all(p.grad is None for p in model.parameters())  # Grad-CAM leaves no parameter grads


def test_explicit_partner_labels_choose_the_class(make_model):
    model, px = make_model(), _partners()
    px[0, 1, 20:30, 0:16] = 1.0  # class 1 activates a 10x16 block of image 0
    mb = CamMix(tau_a=0.05)(torch.zeros(2, 3, H, W), torch.zeros(2), partner_x=px, partner_y=torch.tensor([1, 2]),
                            model=model)
    assert mb.y_b.tolist() == [1, 2]
    assert mb.boxes[0].tolist() == [20, 0, 30, 16]


def test_upsampled_cam_gives_the_bilinear_rectangle(make_model):
    model = make_model(stride=4)  # 8x8 feature map upsampled to 32x32
    px = torch.zeros(1, 3, H, W)
    r0, c0, r1, c1 = 2, 1, 5, 6  # feature cells [r0, r1) x [c0, c1) are 1
    px[0, 0, 4 * r0:4 * r1, 4 * c0:4 * c1] = 1.0
    mb = CamMix(tau_c=0.8, tau_a=0.05)(torch.zeros_like(px), torch.zeros(1), partner_x=px, model=model)
    # bilinear (align_corners=False): pixel i samples cell coordinate t = (i + 0.5) / 4 - 0.5;
    # across an edge the map is linear in t, so map > 0.8 <=> 4 r0 + 1 <= i <= 4 r1 - 2
    assert mb.boxes[0].tolist() == [4 * r0 + 1, 4 * c0 + 1, 4 * r1 - 1, 4 * c1 - 1]


@pytest.mark.parametrize("kind", ["linear", "tanh"])
def test_partner_features_avoid_the_forward(make_model, kind):
    model, px = make_model(kind), _partners()
    calls = []
    model.backbone.register_forward_hook(lambda *args: calls.append(1))
    mixer = CamMix(tau_a=0.05)
    x, y = torch.zeros(2, 3, H, W), torch.zeros(2)
    with torch.no_grad():
        feats = model.forward_features(px)
    calls.clear()
    with_feats = mixer(x, y, partner_x=px, model=model, partner_features=feats)
    assert calls == []
    without = mixer(x, y, partner_x=px, model=model)
    assert calls == [1]
    assert torch.equal(with_feats.boxes, without.boxes) and torch.equal(with_feats.x, without.x)
    if kind == "linear":  # features and labels from the recipe's forward: not even the head runs
        model.head.register_forward_hook(lambda *args: calls.append(2))
        calls.clear()
        given = mixer(x, y, partner_x=px, partner_y=with_feats.y_b, model=model, partner_features=feats)
        assert calls == [] and torch.equal(given.boxes, without.boxes)


def test_small_region_falls_back_to_a_random_box(make_model):
    model, px = make_model(), _partners()
    px[:, :, :, :] = 0.0
    px[:, 0, 10:12, 10:12] = 1.0  # 4 pixels: area ratio 4/1024 < tau_a
    x, y = torch.zeros(2, 3, H, W), torch.zeros(2)
    mixer = CamMix(tau_a=0.1, alpha=1.0)
    mb = mixer(x, y, partner_x=px, partner_y=torch.zeros(2, dtype=torch.long), model=model,
               generator=torch.Generator().manual_seed(5))
    assert mb.extras["cam_fallback"].all()
    assert mb.extras["region_ratio"].tolist() == pytest.approx([4 / 1024] * 2)
    g = torch.Generator().manual_seed(5)  # same draws: a Beta lam per sample, then CutMix centres
    assert torch.equal(mb.boxes, random_boxes(sample_beta(1.0, 2, g), H, W, g))
    assert mb.boxes.tolist() != [[10, 10, 12, 12]] * 2
    _check_paste(mb, x, px)
    kept = CamMix(tau_a=0.001)(x, y, partner_x=px, partner_y=torch.zeros(2, dtype=torch.long), model=model)
    assert kept.boxes.tolist() == [[10, 10, 12, 12]] * 2 and not kept.extras["cam_fallback"].any()


def test_constant_map_falls_back(make_model):
    px = torch.zeros(2, 3, H, W)  # CAM identically zero: no pixel above tau_c
    mb = CamMix()(torch.ones_like(px), torch.zeros(2), partner_x=px, partner_y=torch.zeros(2), model=make_model())
    assert mb.extras["cam_fallback"].all() and (mb.extras["region_ratio"] == 0).all()


def test_in_batch_partners_use_their_own_labels(make_model):
    model = make_model()
    x = torch.zeros(4, 3, H, W)
    rects = [(0, 0, 8, 8), (8, 8, 20, 20), (20, 2, 30, 14), (4, 16, 14, 30)]
    for i, (a, b, c, d) in enumerate(rects):
        x[i, i % 3, a:c, b:d] = 1.0
    y = torch.tensor([0, 1, 2, 0])
    mb = CamMix(tau_a=0.05)(x, y, model=model, generator=torch.Generator().manual_seed(1))
    idx = mb.partner_index
    assert torch.equal(mb.y_b, y[idx])
    assert mb.boxes.tolist() == [list(rects[j]) for j in idx.tolist()]


def test_single_image_without_partner_raises(make_model):
    x = _partners()[:1]
    with pytest.raises(ValueError, match="partner_x"):
        CamMix()(x, torch.zeros(1), model=make_model())
    mb = CamMix(tau_a=0.05)(torch.zeros_like(x), torch.zeros(1), partner_x=x, model=make_model())
    assert mb.boxes.tolist() == [[5, 8, 13, 21]]


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.2, 1.5, float("nan")])
def test_taus_must_lie_in_the_open_unit_interval(bad):
    with pytest.raises(ValueError, match="tau_c"):
        CamMix(tau_c=bad)
    with pytest.raises(ValueError, match="tau_a"):
        CamMix(tau_a=bad)


def test_other_bad_arguments(make_model):
    model, px = make_model(), _partners()
    x, y = torch.zeros(2, 3, H, W), torch.zeros(2)
    with pytest.raises(TypeError, match="tau_c"):
        CamMix(tau_c="0.8")
    with pytest.raises(ValueError, match="alpha"):
        CamMix(alpha=0.0)
    with pytest.raises(TypeError, match="target_layer"):
        CamMix(target_layer=3)
    with pytest.raises(TypeError, match="model"):
        CamMix()(x, y, partner_x=px)
    with pytest.raises(ValueError, match="partner_features"):
        CamMix()(x, y, model=model, partner_features=torch.zeros(2, 3, H, W))
    with pytest.raises(ValueError, match="partner_features"):
        CamMix()(x, y, partner_x=px, model=model, partner_features=torch.zeros(3, 3, H, W))
    with pytest.raises(ValueError, match="partner_y"):
        CamMix()(x, y, partner_x=px, partner_y=torch.tensor([0, 5]), model=model)
    with pytest.raises(ValueError, match="target_layer"):
        CamMix(target_layer=torch.nn.Linear(2, 2))(x, y, partner_x=px, model=model)
