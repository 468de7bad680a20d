"""ResNet-32 for 32x32 images (He et al. 2016, Sec. 4.2), as used by LDAM-DRW, MiSLAS, BTM, BMLS.

3x3 stem with 16 channels, three stages of 5 BasicBlocks with 16/32/64 channels (times
``width``), stride 2 at stages 2 and 3, parameter-free "option A" shortcut (subsample by 2
and zero-pad channels), convolutions without bias, kaiming-normal init.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ltzoo.backbones.base import cifar_cfg, register_backbone
from ltzoo.backbones.stages import StagedBackbone


class ShortcutA(nn.Module):
    """Option-A shortcut: spatial subsampling by ``stride`` and zero-padding of the new channels."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        extra = out_channels - in_channels
        self.pad = (extra // 2, extra - extra // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride != 1:
            x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, *self.pad))


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN plus shortcut, then ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        needs_projection = stride != 1 or in_channels != out_channels
        self.shortcut = ShortcutA(in_channels, out_channels, stride) if needs_projection else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(StagedBackbone):
    """CIFAR ResNet (6n+2 layers) returning the unpooled last-stage map.

    Args:
        blocks_per_stage: n, the BasicBlocks per stage (5 for ResNet-32).
        width: Channel multiplier; stages have 16/32/64 times ``width`` channels.
        in_chans: Input image channels.
    """

    def __init__(self, blocks_per_stage: int = 5, width: int = 1, in_chans: int = 3) -> None:
        super().__init__()
        if not isinstance(width, int) or width < 1:
            raise ValueError(f"width must be an integer >= 1, got {width!r}")
        if not isinstance(blocks_per_stage, int) or blocks_per_stage < 1:
            raise ValueError(f"blocks_per_stage must be an integer >= 1, got {blocks_per_stage!r}")
        channels = [16 * width, 32 * width, 64 * width]
        self.stem = nn.Sequential(
            nn.Conv2d(in_chans, channels[0], 3, 1, 1, bias=False), nn.BatchNorm2d(channels[0]), nn.ReLU(inplace=True)
        )
        stages, in_c = [], channels[0]
        for i, out_c in enumerate(channels):
            blocks = []
            for b in range(blocks_per_stage):
                blocks.append(BasicBlock(in_c, out_c, stride=2 if (i > 0 and b == 0) else 1))
                in_c = out_c
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.num_features = channels[-1]
        self.feature_info = [dict(num_chs=channels[0], reduction=1, module="stem")] + [
            dict(num_chs=c, reduction=2 ** i, module=f"stages.{i}") for i, c in enumerate(channels)]
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)

    def feature_levels(self) -> list[nn.Module]:
        return [self.stem, *self.stages]

    def group_matcher(self, coarse: bool = False) -> dict[str, str]:
        return dict(stem=r"^stem", blocks=r"^stages\.(\d+)" if coarse else r"^stages\.(\d+)\.(\d+)")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.run_stages(self.stages, self.stem(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)


@register_backbone(cifar_cfg(num_classes=10), num_features=64)
def resnet32(width: int = 1, in_chans: int = 3, pretrained: bool = False) -> CifarResNet:
    """ResNet-32 (16/32/64 channels, 64-d features); ``width=2`` gives the 32/64/128 variant."""
    _refuse_pretrained("resnet32", pretrained)
    return CifarResNet(5, width=width, in_chans=in_chans)


@register_backbone(cifar_cfg(num_classes=100), num_features=128)
def resnet32_w2(in_chans: int = 3, pretrained: bool = False) -> CifarResNet:
    """ResNet-32 at doubled width (32/64/128 channels, 128-d features), for CIFAR-100 with an ETF head."""
    _refuse_pretrained("resnet32_w2", pretrained)
    return CifarResNet(5, width=2, in_chans=in_chans)


def _refuse_pretrained(name: str, pretrained: bool) -> None:
    if pretrained:
        raise ValueError(
            f"backbone {name!r} has no backbone-only pretrained weights; ask for a full model by "
            f"its 'arch.tag' name (see ltzoo.list_models(pretrained=True))"
        )
