"""A small 4-layer CNN for 32x32 inputs: fast enough to train on a CPU in seconds (demo, tests)."""
from __future__ import annotations

import torch
from torch import nn

from ltzoo.backbones.base import cifar_cfg, register_backbone
from ltzoo.backbones.stages import StagedBackbone


def _conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class SmallCNN(StagedBackbone):
    """conv(32)-pool-conv(64)-pool-conv(128)-pool-conv(width): a 4x4 map of ``width`` channels.

    Args:
        width: Channels of the last layer (the feature dimension).
        in_chans: Input image channels.
    """

    def __init__(self, width: int = 128, in_chans: int = 3) -> None:
        super().__init__()
        if not isinstance(width, int) or width < 1:
            raise ValueError(f"width must be an integer >= 1, got {width!r}")
        self.stem = _conv_bn_relu(in_chans, 32)
        self.layers = nn.Sequential(
            nn.MaxPool2d(2), _conv_bn_relu(32, 64), nn.MaxPool2d(2), _conv_bn_relu(64, 128),
            nn.MaxPool2d(2), _conv_bn_relu(128, width),
        )
        self.num_features = width
        self.feature_info = [dict(num_chs=32, reduction=1, module="stem")] + [
            dict(num_chs=c, reduction=2 ** (i + 1), module=f"layers.{2 * i + 1}") for i, c in enumerate((64, 128, width))]

    def feature_levels(self) -> list[nn.Module]:
        return [self.stem, self.layers[0:2], self.layers[2:4], self.layers[4:6]]

    def group_matcher(self, coarse: bool = False) -> dict[str, str]:
        return dict(stem=r"^stem", blocks=r"^layers\.(\d+)")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.run_stages(self.layers, self.stem(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)


@register_backbone(cifar_cfg(num_classes=10, pool_size=(4, 4)), num_features=128)
def small_cnn(width: int = 128, in_chans: int = 3, pretrained: bool = False) -> SmallCNN:
    """A 4-layer CNN (0.24M parameters) for quick CPU runs on 32x32 data such as digits_lt."""
    if pretrained:
        raise ValueError("backbone 'small_cnn' has no backbone-only pretrained weights")
    return SmallCNN(width=width, in_chans=in_chans)
