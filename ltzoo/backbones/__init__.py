"""Feature extractors. Each backbone maps images to an unpooled feature map (N, C, H, W).

Every backbone registered here exposes ``num_features`` (C) and ``forward_features``;
global pooling and the classifier head are added by :class:`ltzoo.models.LTModel`.
"""
from ltzoo.backbones.base import default_cfg_for, feature_dims, register_backbone
from ltzoo.backbones.resnet_cifar import CifarResNet, resnet32, resnet32_w2
from ltzoo.backbones.small_cnn import SmallCNN, small_cnn
from ltzoo.backbones.timm_backbones import TimmBackbone, resnet50, resnet152, resnext50_32x4d
from ltzoo.backbones.wrn import WideResNet, wrn_28_2, wrn_28_8

__all__ = [
    "register_backbone", "default_cfg_for", "feature_dims",
    "CifarResNet", "resnet32", "resnet32_w2",
    "WideResNet", "wrn_28_2", "wrn_28_8",
    "SmallCNN", "small_cnn",
    "TimmBackbone", "resnet50", "resnet152", "resnext50_32x4d",
]
