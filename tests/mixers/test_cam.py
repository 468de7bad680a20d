"""CAM / Grad-CAM on a real ResNet-32 and the largest-region helper."""
import pytest
import torch

import ltzoo
from ltzoo.mixers.cam import class_activation_map, grad_cam, largest_region_boxes, normalize_cam
from ltzoo.mixers.cammix import CamMix


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    model = ltzoo.create_model("resnet32", num_classes=5)
    model.train()
    with torch.no_grad():  # non-trivial BatchNorm statistics so eval and train modes differ
        for _ in range(2):
            model(torch.randn(8, 3, 32, 32))
    return model


def test_grad_cam_equals_cam_for_a_linear_head(resnet):
    x, q = torch.randn(4, 3, 32, 32), torch.tensor([0, 3, 4, 1])
    resnet.eval()
    try:
        with torch.no_grad():
            feats = resnet.forward_features(x)
            # independent CAM: weights of class q times the feature map, summed over channels
            ref = torch.relu((resnet.head.fc.weight[q][:, :, None, None] * feats).sum(1))
        ref = normalize_cam(torch.nn.functional.interpolate(ref[:, None], size=(32, 32), mode="bilinear")[:, 0])
        cam = class_activation_map(feats, resnet.get_classifier().cam_weights(), q, size=(32, 32))
        gcam, gq = grad_cam(resnet, q, x=x, size=(32, 32))
        lcam, _ = grad_cam(resnet, q, x=x, target_layer="backbone.stages", size=(32, 32))
    finally:
        resnet.train()
    assert torch.equal(gq, q)
    assert cam.shape == (4, 32, 32) and cam.amin() == 0 and cam.amax() == 1
    for other in (cam, gcam, lcam):
        assert torch.allclose(other, ref, atol=1e-5)
    assert all(p.grad is None for p in resnet.parameters())


def test_cammix_leaves_the_model_untouched(resnet):
    state = {k: v.clone() for k, v in resnet.state_dict().items()}
    x, px = torch.randn(4, 3, 32, 32), torch.randn(4, 3, 32, 32)
    for layer in (None, resnet.backbone.stages[1]):  # CAM, then Grad-CAM on an inner layer
        mb = CamMix(target_layer=layer)(x, torch.zeros(4), partner_x=px, model=resnet)
        assert mb.x.shape == x.shape and mb.y_b.shape == (4,)
    assert resnet.training and all(m.training for m in resnet.modules())
    assert all(torch.equal(v, state[k]) for k, v in resnet.state_dict().items())  # BN statistics unchanged
    assert all(p.grad is None for p in resnet.parameters())


def test_resnet_partner_features_skip_the_backbone(resnet):
    calls = []
    handle = resnet.backbone.stem.register_forward_hook(lambda *args: calls.append(1))
    try:
        px = torch.randn(4, 3, 32, 32)
        resnet.eval()
        with torch.no_grad():
            feats = resnet.forward_features(px)
        resnet.train()
        calls.clear()
        mixer = CamMix(generator=torch.Generator().manual_seed(0))
        a = mixer(torch.zeros_like(px), torch.zeros(4), partner_x=px, model=resnet, partner_features=feats)
        assert calls == []
        b = CamMix(generator=torch.Generator().manual_seed(0))(torch.zeros_like(px), torch.zeros(4), partner_x=px,
                                                                model=resnet)
        assert calls == [1]
        assert torch.equal(a.boxes, b.boxes) and torch.equal(a.y_b, b.y_b)
    finally:
        handle.remove()


def test_largest_region_uses_8_connectivity_and_raster_ties():
    cam = torch.zeros(3, 10, 10)
    cam[0, 1, 1] = cam[0, 2, 2] = cam[0, 3, 3] = 1.0  # a diagonal: one region of 3 pixels
    cam[0, 7, 5:7] = 1.0  # 2 pixels
    cam[1, 6:8, 6:8] = 1.0  # two 4-pixel regions: the first in raster order wins
    cam[1, 1:3, 4:6] = 1.0
    cam[2, 4, 4] = 0.8  # not strictly above tau_c
    boxes, ratio = largest_region_boxes(cam, 0.8)
    assert boxes.tolist() == [[1, 1, 4, 4], [1, 4, 3, 6], [0, 0, 0, 0]]
    assert ratio.tolist() == pytest.approx([0.03, 0.04, 0.0])


def test_cam_argument_checks():
    feats = torch.rand(2, 4, 3, 3)
    with pytest.raises(ValueError, match="weights"):
        class_activation_map(feats, torch.rand(5, 3), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="labels"):
        class_activation_map(feats, torch.rand(5, 4), torch.tensor([0, 5]))
    with pytest.raises(ValueError, match="features"):
        class_activation_map(feats[0], torch.rand(5, 4), torch.tensor([0]))
    # catavgmax pooling: (K, 2C) weights, both halves count
    w = torch.rand(5, 8)
    assert torch.allclose(class_activation_map(feats, w, torch.tensor([1, 2])),
                          class_activation_map(feats, w[:, :4] + w[:, 4:], torch.tensor([1, 2])))
