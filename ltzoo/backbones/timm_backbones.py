"""ImageNet backbones built by timm with the classifier and pooling removed.

timm's own architectures are used unchanged (and, where the user has network access,
``pretrained=True`` loads timm's ImageNet weights into the backbone, from safetensors only).
"""
from __future__ import annotations

from typing import Any

import timm
import torch
from torch import nn

from ltzoo.backbones.base import IMAGENET_MEAN, IMAGENET_STD, register_backbone
from ltzoo.backbones.stages import prefix_feature_info, prefix_matcher


class TimmBackbone(nn.Module):
    """A timm model used as a feature extractor: ``forward_features`` gives the (N, C, H, W) map.

    Args:
        timm_name: A timm architecture name, e.g. "resnet50".
        pretrained: Load timm's pretrained weights (needs network or a timm cache).
        in_chans: Input image channels.
        **kwargs: Passed to ``timm.create_model`` (e.g. ``drop_path_rate``).
    """

    def __init__(self, timm_name: str, pretrained: bool = False, in_chans: int = 3, **kwargs: Any) -> None:
        super().__init__()
        self.model = timm.create_model(timm_name, pretrained=False, num_classes=0, global_pool="",
                                       in_chans=in_chans, **kwargs)
        self.num_features = self.model.num_features
        self.feature_info = prefix_feature_info(self.model.feature_info, "model")
        if pretrained:
            self.load_timm_weights(timm_name)

    def load_timm_weights(self, timm_name: str, cache_dir: str | None = None) -> None:
        """Load timm's default pretrained weights from the Hub, as safetensors only (never unpickled).

        The classifier entries of the checkpoint are dropped; every backbone key must be present.
        """
        from ltzoo import download
        from ltzoo.files import read_safetensors

        cfg = timm.models.get_pretrained_cfg(timm_name)
        if cfg is None or not cfg.hf_hub_id:
            raise ValueError(f"timm has no Hugging Face Hub weights for {timm_name!r}")
        state = read_safetensors(download.hub_file(cfg.hf_hub_id, "model.safetensors", cache_dir=cache_dir))
        classifier = cfg.classifier if isinstance(cfg.classifier, str) else "fc"
        state = {k: v for k, v in state.items() if not k.startswith(classifier + ".")}
        missing, unexpected = self.model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ValueError(f"timm weights {cfg.hf_hub_id!r} do not fit {timm_name!r}: "
                             f"missing keys {missing[:10]}, unexpected keys {unexpected[:10]}")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_features(x)

    @torch.jit.ignore
    def forward_intermediates(self, x: torch.Tensor, **kwargs: Any) -> Any:
        """timm's own ``forward_intermediates`` of the wrapped model (same arguments and result)."""
        return self.model.forward_intermediates(x, **kwargs)

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """timm's own gradient checkpointing of the wrapped model."""
        self.model.set_grad_checkpointing(enable)

    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        """timm's group matcher of the wrapped model, over this module's parameter names."""
        return prefix_matcher(self.model.group_matcher(coarse), "model")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)


def _imagenet_cfg(timm_name: str):
    def cfg() -> dict[str, Any]:
        timm_cfg = timm.models.get_pretrained_cfg(timm_name)
        base = timm_cfg.to_dict() if timm_cfg is not None else {}
        return dict(
            num_classes=1000,
            input_size=tuple(base.get("input_size", (3, 224, 224))),
            mean=tuple(base.get("mean", IMAGENET_MEAN)),
            std=tuple(base.get("std", IMAGENET_STD)),
            crop_pct=base.get("crop_pct", 0.875),
            interpolation=base.get("interpolation", "bilinear"),
            classifier="head",
            first_conv="backbone.model.conv1",
            pool_size=tuple(base.get("pool_size", (7, 7))),
        )
    return cfg


@register_backbone(_imagenet_cfg("resnet50"), num_features=2048)
def resnet50(pretrained: bool = False, **kwargs: Any) -> TimmBackbone:
    """timm's ResNet-50 (2048-d features)."""
    return TimmBackbone("resnet50", pretrained=pretrained, **kwargs)


@register_backbone(_imagenet_cfg("resnet152"), num_features=2048)
def resnet152(pretrained: bool = False, **kwargs: Any) -> TimmBackbone:
    """timm's ResNet-152 (2048-d features)."""
    return TimmBackbone("resnet152", pretrained=pretrained, **kwargs)


@register_backbone(_imagenet_cfg("resnext50_32x4d"), num_features=2048)
def resnext50_32x4d(pretrained: bool = False, **kwargs: Any) -> TimmBackbone:
    """timm's ResNeXt-50 32x4d (2048-d features)."""
    return TimmBackbone("resnext50_32x4d", pretrained=pretrained, **kwargs)
