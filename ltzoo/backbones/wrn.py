"""Wide-ResNet-28-k as in FixMatch (Sohn et al. 2020), the semi-supervised LT backbone.

Follows the FixMatch TensorFlow reference: pre-activation blocks with BatchNorm momentum
0.001 (TF decay 0.999), LeakyReLU(0.1), 1x1 projection shortcuts, ``activate_before_residual``
only in the first group (the shortcut then also takes the activated input), convolutions
without bias, a final BN + LeakyReLU before pooling. Feature dimension 64k (128 for k=2).
Other published variants differ (USB: BN eps 1e-3 and conv bias; DASO: BN momentum 0.1).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ltzoo.backbones.base import cifar_cfg, register_backbone
from ltzoo.backbones.resnet_cifar import _refuse_pretrained
from ltzoo.backbones.stages import StagedBackbone

BN_MOMENTUM = 0.001


class PreActBlock(nn.Module):
    """BN-LReLU-conv3x3-BN-LReLU-(dropout)-conv3x3 plus (projected) shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, drop_rate: float = 0.0,
                 activate_before_residual: bool = False) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels, momentum=BN_MOMENTUM)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.drop_rate = drop_rate
        self.activate_before_residual = activate_before_residual
        self.shortcut = (
            nn.Conv2d(in_channels, out_channels, 1, stride, 0, bias=False)
            if in_channels != out_channels or stride != 1 else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act = F.leaky_relu(self.bn1(x), 0.1)
        residual_in = act if self.activate_before_residual else x
        out = F.leaky_relu(self.bn2(self.conv1(act)), 0.1)
        if self.drop_rate > 0:
            out = F.dropout(out, p=self.drop_rate, training=self.training)
        out = self.conv2(out)
        shortcut = residual_in if self.shortcut is None else self.shortcut(residual_in)
        return shortcut + out


class WideResNet(StagedBackbone):
    """WRN-depth-k returning the unpooled map after the final BN + LeakyReLU.

    Args:
        depth: 6n + 4 (28 gives n = 4 blocks per group).
        widen_factor: k; groups have 16k/32k/64k channels.
        drop_rate: Dropout between the two convolutions of a block.
        in_chans: Input image channels.
    """

    def __init__(self, depth: int = 28, widen_factor: int = 2, drop_rate: float = 0.0, in_chans: int = 3) -> None:
        super().__init__()
        if (depth - 4) % 6 != 0 or depth < 10:
            raise ValueError(f"depth must be 6n + 4 with n >= 1 (e.g. 28), got {depth}")
        if not isinstance(widen_factor, int) or widen_factor < 1:
            raise ValueError(f"widen_factor must be an integer >= 1, got {widen_factor!r}")
        n = (depth - 4) // 6
        channels = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        self.stem = nn.Sequential(nn.Conv2d(in_chans, channels[0], 3, 1, 1, bias=False))
        groups = []
        for g in range(3):
            blocks = [
                PreActBlock(
                    channels[g] if b == 0 else channels[g + 1], channels[g + 1],
                    stride=(1 if g == 0 else 2) if b == 0 else 1, drop_rate=drop_rate,
                    activate_before_residual=(g == 0 and b == 0),
                )
                for b in range(n)
            ]
            groups.append(nn.Sequential(*blocks))
        self.groups = nn.Sequential(*groups)
        self.final_bn = nn.BatchNorm2d(channels[3], momentum=BN_MOMENTUM)
        self.num_features = channels[3]
        self.final_act = nn.LeakyReLU(0.1)
        # the last level is the final BN + LeakyReLU output (what forward_features returns)
        self.feature_info = [dict(num_chs=channels[0], reduction=1, module="stem")] + [
            dict(num_chs=channels[g + 1], reduction=2 ** g, module=f"groups.{g}") for g in range(2)] + [
            dict(num_chs=channels[3], reduction=4, module="final_act")]
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="leaky_relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def feature_levels(self) -> list[nn.Module]:
        return [self.stem, self.groups[0], self.groups[1], nn.Sequential(self.groups[2], self.final_bn, self.final_act)]

    def group_matcher(self, coarse: bool = False) -> dict[str, object]:
        blocks = r"^groups\.(\d+)" if coarse else r"^groups\.(\d+)\.(\d+)"
        return dict(stem=r"^stem", blocks=[(blocks, None), (r"^final_bn", (99999,))])

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.final_act(self.final_bn(self.run_stages(self.groups, self.stem(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)


@register_backbone(cifar_cfg(num_classes=10), num_features=128)
def wrn_28_2(drop_rate: float = 0.0, in_chans: int = 3, pretrained: bool = False) -> WideResNet:
    """WRN-28-2 (1.47M parameters with a 10-class FC), the FixMatch / BEM / UDAL backbone."""
    _refuse_pretrained("wrn_28_2", pretrained)
    return WideResNet(28, 2, drop_rate=drop_rate, in_chans=in_chans)


@register_backbone(cifar_cfg(num_classes=100), num_features=512)
def wrn_28_8(drop_rate: float = 0.0, in_chans: int = 3, pretrained: bool = False) -> WideResNet:
    """WRN-28-8 (512-d features), used for CIFAR-100 in semi-supervised LT papers."""
    _refuse_pretrained("wrn_28_8", pretrained)
    return WideResNet(28, 8, drop_rate=drop_rate, in_chans=in_chans)
