import pytest
import torch

import ltzoo

CIFAR_NETS = ["resnet32", "resnet32_w2", "wrn_28_2", "wrn_28_8", "small_cnn"]
IMAGENET_NETS = ["resnet50", "resnet152", "resnext50_32x4d"]
EXPECTED_FEATURES = {"small_cnn": 128, "resnet32": 64, "resnet32_w2": 128, "wrn_28_2": 128, "wrn_28_8": 512,
                     "resnet50": 2048, "resnet152": 2048, "resnext50_32x4d": 2048}


def test_every_backbone_is_covered():
    assert set(ltzoo.list_backbones()) == set(CIFAR_NETS + IMAGENET_NETS)


@pytest.mark.parametrize("name", CIFAR_NETS + IMAGENET_NETS)
def test_backbone_feature_map_shape(name):
    torch.manual_seed(0)
    size = 32 if name in CIFAR_NETS else 224
    backbone = ltzoo.create_backbone(name).eval()
    with torch.no_grad():
        fmap = backbone.forward_features(torch.randn(2, 3, size, size))
    assert backbone.num_features == EXPECTED_FEATURES[name]
    assert fmap.ndim == 4 and fmap.shape[:2] == (2, backbone.num_features)
    assert fmap.shape[-1] == {"small_cnn": 4}.get(name, 8 if size == 32 else 7)


def _count(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("name,num_classes,millions", [
    ("resnet32", 10, 0.46), ("wrn_28_2", 10, 1.47), ("resnet50", 1000, 25.56),
])
def test_parameter_counts_match_references(name, num_classes, millions):
    model = ltzoo.create_model(name, num_classes=num_classes)
    assert round(_count(model) / 1e6, 2) == millions


def test_resnet32_exact_parameter_count():
    # 3x3 convs without bias + BN affine + a 64x10 FC with bias, written out by stage.
    def conv(cin, cout):
        return 9 * cin * cout

    def bn(c):
        return 2 * c

    total = conv(3, 16) + bn(16)
    cin = 16
    for c in (16, 32, 64):
        for _ in range(5):
            total += conv(cin, c) + bn(c) + conv(c, c) + bn(c)
            cin = c
    total += 64 * 10 + 10
    assert _count(ltzoo.create_model("resnet32", num_classes=10)) == total


def test_option_a_shortcut_pads_channels_with_zeros():
    from ltzoo.backbones.resnet_cifar import ShortcutA

    x = torch.randn(2, 16, 8, 8)
    y = ShortcutA(16, 32, stride=2)(x)
    assert y.shape == (2, 32, 4, 4)
    assert torch.equal(y[:, 8:24], x[:, :, ::2, ::2])
    assert y[:, :8].abs().sum() == 0 and y[:, 24:].abs().sum() == 0


def test_wrn_uses_fixmatch_batchnorm_and_leaky_relu():
    net = ltzoo.create_backbone("wrn_28_2")
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(m.momentum == 0.001 for m in bns)
    # negative inputs leak with slope 0.1 through the final activation
    net.eval()
    x = torch.randn(1, 3, 32, 32)
    fmap = net.forward_features(x)
    assert (fmap < 0).any() and fmap.min() > -float("inf")


def test_cifar_backbones_refuse_backbone_pretrained():
    with pytest.raises(ValueError, match="arch.tag"):
        ltzoo.create_backbone("resnet32", pretrained=True)


@pytest.mark.parametrize("kwargs,match", [({"width": 0}, "width"), ({"width": 1.5}, "width")])
def test_resnet32_bad_width(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ltzoo.create_backbone("resnet32", **kwargs)


def test_wrn_bad_depth():
    from ltzoo.backbones.wrn import WideResNet

    with pytest.raises(ValueError, match="depth"):
        WideResNet(depth=27)


def test_declared_feature_dims_match_built_backbones():
    from ltzoo.backbones import feature_dims

    dims = feature_dims()
    assert dims == EXPECTED_FEATURES
    for name in CIFAR_NETS:
        assert ltzoo.create_backbone(name).num_features == dims[name]
