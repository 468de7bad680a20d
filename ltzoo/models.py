"""LTModel = backbone + global pooling + head, with timm's model API.

The model follows timm's conventions: ``forward_features`` returns the unpooled map,
``forward_head(x, pre_logits=False)`` pools and applies the head, and ``get_classifier`` /
``reset_classifier`` / ``num_features`` / ``pretrained_cfg`` behave as in timm. Models are
built through timm's ``build_model_with_cfg`` (in :func:`ltzoo.create_model`, which lives in the
Hub layer above this module because it resolves pretrained names) so timm's pretrained machinery
applies.
"""
from __future__ import annotations

from typing import Any

import torch
from timm.layers import SelectAdaptivePool2d
from torch import nn

from ltzoo.registry import BACKBONES, HEADS
from ltzoo.validation import check_num_classes

__all__ = ["LTModel", "split_model_name"]

POOL_TYPES = ("avg", "max", "avgmax", "catavgmax")


class LTModel(nn.Module):
    """A classifier composed of a registered backbone and a registered head.

    Args:
        backbone: Registered backbone name.
        head: Registered head name.
        num_classes: Number of classes K (>= 1).
        global_pool: Pooling between backbone and head: "avg", "max", "avgmax" or "catavgmax".
        drop_rate: Dropout on the pooled features before the head.
        in_chans: Input image channels.
        pretrained_backbone: Load the backbone's own pretrained weights (timm backbones only).
        backbone_args: Extra keyword arguments for the backbone factory.
        head_args: Extra keyword arguments for the head.
    """

    def __init__(
        self,
        backbone: str,
        head: str = "fc",
        num_classes: int = 10,
        global_pool: str = "avg",
        drop_rate: float = 0.0,
        in_chans: int = 3,
        pretrained_backbone: bool = False,
        backbone_args: dict[str, Any] | None = None,
        head_args: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.num_classes = check_num_classes(num_classes)
        if not 0.0 <= float(drop_rate) < 1.0:
            raise ValueError(f"drop_rate must be in [0, 1), got {drop_rate}")
        self.backbone_name = backbone
        self.head_name = head
        self.head_args = dict(head_args or {})
        backbone_args = dict(backbone_args or {})
        self._in_chans = in_chans
        self._backbone_args = {k: v for k, v in backbone_args.items() if k != "pretrained"}
        if pretrained_backbone:
            backbone_args["pretrained"] = True
        self.backbone = BACKBONES.create(backbone, in_chans=in_chans, **backbone_args)
        self.num_features = self.backbone.num_features
        self.global_pool = _make_pool(global_pool)
        self.drop = nn.Dropout(drop_rate) if drop_rate > 0 else nn.Identity()
        self.head = self._make_head(head, self.num_classes, self.head_args)

    @property
    def model_args(self) -> dict[str, Any]:
        """The keyword arguments that rebuild this architecture (saved in config.json by save_pretrained)."""
        return {
            "head": self.head_name, "head_args": dict(self.head_args), "global_pool": self.global_pool.pool_type,
            "drop_rate": float(getattr(self.drop, "p", 0.0)), "in_chans": self._in_chans,
            "backbone_args": dict(self._backbone_args),
        }

    @property
    def head_in_features(self) -> int:
        """Dimension of the pooled features the head sees."""
        return self.num_features * self.global_pool.feat_mult()

    def _make_head(self, name: str, num_classes: int, head_args: dict[str, Any]) -> nn.Module:
        return HEADS.create(name, in_features=self.head_in_features, num_classes=num_classes, **head_args)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The backbone's unpooled feature map (N, C, H, W)."""
        return self.backbone.forward_features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Pool the feature map; return the pooled features if ``pre_logits``, else the logits."""
        x = self.drop(self.global_pool(x))
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: str | None = None, head: str | None = None,
                         **head_args: Any) -> None:
        """Replace the head with a freshly initialised one.

        Args:
            num_classes: New number of classes.
            global_pool: New pooling type, if given.
            head: New registered head name (defaults to the current one).
            **head_args: Head keyword arguments (default: the current head's).
        """
        self.num_classes = check_num_classes(num_classes)
        if global_pool is not None:
            self.global_pool = _make_pool(global_pool)
        if head is not None:
            self.head_name = head
            self.head_args = {}
        self.head_args.update(head_args)
        device = next(self.backbone.parameters()).device
        self.head = self._make_head(self.head_name, self.num_classes, self.head_args).to(device)


def _make_pool(global_pool: str) -> SelectAdaptivePool2d:
    if global_pool not in POOL_TYPES:
        raise ValueError(f"global_pool must be one of {POOL_TYPES}, got {global_pool!r}")
    return SelectAdaptivePool2d(pool_type=global_pool, flatten=True)


def split_model_name(name: str) -> tuple[str, str | None]:
    """Split "arch.tag" into ("arch", "tag"); a name without a tag gives ("arch", None)."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"model_name must be a non-empty string, got {name!r}")
    arch, _, tag = name.partition(".")
    return arch, (tag or None)
