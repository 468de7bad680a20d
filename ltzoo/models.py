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

from ltzoo.backbones.stages import prefix_feature_info, prefix_matcher
from ltzoo.registry import BACKBONES, HEADS
from ltzoo.validation import check_num_classes

__all__ = ["LTModel", "split_model_name", "no_weight_decay_names"]

POOL_TYPES = ("avg", "max", "avgmax", "catavgmax", "")  # "": no pooling (only with num_classes=0, as in timm)


class LTModel(nn.Module):
    """A classifier composed of a registered backbone and a registered head.

    Args:
        backbone: Registered backbone name.
        head: Registered head name.
        num_classes: Number of classes K (>= 1), or 0 for no classifier (an Identity head: the model
            returns the pooled features, as timm's ``num_classes=0``).
        global_pool: Pooling between backbone and head: "avg", "max", "avgmax", "catavgmax", or ""
            (no pooling, with ``num_classes=0`` only: the model returns the feature map).
        drop_rate: Dropout on the pooled features before the head.
        in_chans: Input image channels.
        pretrained_backbone: Load the backbone's own pretrained weights (timm backbones only).
        backbone_args: Extra keyword arguments for the backbone factory.
        head_args: Extra keyword arguments for the head.
    """

    __jit_unused_properties__ = ["model_args", "head_in_features"]  # Python-only: torch.jit.script skips them

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
        self.num_classes = _check_classes_or_zero(num_classes)
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
        self.feature_info = prefix_feature_info(self.backbone.feature_info, "backbone")
        self.global_pool = _make_pool(global_pool, self.num_classes)
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
        if num_classes == 0:
            return nn.Identity()
        return HEADS.create(name, in_features=self.head_in_features, num_classes=num_classes, **head_args)

    @torch.jit.ignore
    def classifier_name(self) -> str:
        """The module holding the classifier's parameters: "head.fc" for the FC-style heads ("fc",
        "ms"), whose ``.weight`` is a state-dict key; "head" itself for the ETF heads (its ``etf``
        buffer, plus the per-class ``scale`` of "wetf" / "ms_wetf") and the DLSA head."""
        return "head.fc" if isinstance(getattr(self.head, "fc", None), nn.Linear) else "head"

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The backbone's unpooled feature map (N, C, H, W)."""
        return self.backbone.forward_features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Pool the feature map; return the pooled features if ``pre_logits``, else the logits."""
        x = self.drop(self.global_pool(x))
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    @torch.jit.ignore
    def forward_intermediates(self, x: torch.Tensor, indices: int | list[int] | tuple[int, ...] | None = None,
                              norm: bool = False, stop_early: bool = False, output_fmt: str = "NCHW",
                              intermediates_only: bool = False) -> Any:
        """timm's feature-extraction call: the backbone's feature maps at ``indices`` (see ``feature_info``).

        Args:
            x: Input images (N, C, H, W).
            indices: None (every level), an int n (the last n) or a sequence of level indices.
            norm: Passed to the backbone (timm's meaning; ltzoo's own backbones ignore it).
            stop_early: Stop at the last level asked for.
            output_fmt: "NCHW".
            intermediates_only: Return only the list of maps.

        Returns:
            The list of maps, or (unpooled final feature map, list of maps).
        """
        return self.backbone.forward_intermediates(x, indices=indices, norm=norm, stop_early=stop_early,
                                                   output_fmt=output_fmt, intermediates_only=intermediates_only)

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        """timm's parameter groups (stem, blocks) over this model's names; the head falls in the last group."""
        return prefix_matcher(self.backbone.group_matcher(coarse), "backbone")

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute the backbone's stages in the backward pass instead of storing activations."""
        self.backbone.set_grad_checkpointing(enable)

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        """Names of the parameters trained without weight decay (biases, normalisation weights, the
        ETF heads' per-class scale): read by timm's optimizer factory and by ltzoo's recipes."""
        return no_weight_decay_names(self)

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: str | None = None, head: str | None = None,
                         **head_args: Any) -> None:
        """Replace the head with a freshly initialised one.

        Args:
            num_classes: New number of classes; 0 removes the classifier (an Identity head: the model
                returns pooled features).
            global_pool: New pooling type, if given ("" with ``num_classes=0``: the feature map).
            head: New registered head name (defaults to the current one).
            **head_args: Head keyword arguments (default: the current head's).
        """
        num_classes = _check_classes_or_zero(num_classes)
        self.global_pool = _make_pool(self.global_pool.pool_type if global_pool is None else global_pool, num_classes)
        self.num_classes = num_classes
        if head is not None:
            self.head_name = head
            self.head_args = {}
        self.head_args.update(head_args)
        device = next(self.backbone.parameters()).device
        self.head = self._make_head(self.head_name, self.num_classes, self.head_args).to(device)


def _make_pool(global_pool: str, num_classes: int) -> SelectAdaptivePool2d:
    if global_pool not in POOL_TYPES:
        raise ValueError(f"global_pool must be one of {POOL_TYPES}, got {global_pool!r}")
    if global_pool == "" and num_classes != 0:
        raise ValueError("global_pool='' (no pooling) needs num_classes=0: heads take pooled (B, D) features")
    return SelectAdaptivePool2d(pool_type=global_pool, flatten=bool(global_pool))


def _check_classes_or_zero(num_classes: int) -> int:
    if num_classes == 0 and not isinstance(num_classes, bool):
        return 0
    return check_num_classes(num_classes)


def no_weight_decay_names(model: nn.Module) -> set[str]:
    """The parameters of ``model`` to train without weight decay: every one with ``ndim <= 1``.

    That is every bias, the weight and bias of BatchNorm / LayerNorm / GroupNorm, and per-class
    scales (WETF, LWS); conv and linear weights (ndim >= 2) keep their decay. FixMatch's recipe
    and timm's optimizer factory (through ``LTModel.no_weight_decay``) both use this one rule.

    Args:
        model: Any module.

    Returns:
        The set of parameter names (as in ``model.named_parameters()``).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return {name for name, p in model.named_parameters() if p.ndim <= 1}


def split_model_name(name: str) -> tuple[str, str | None]:
    """Split "arch.tag" into ("arch", "tag"); a name without a tag gives ("arch", None)."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"model_name must be a non-empty string, got {name!r}")
    arch, _, tag = name.partition(".")
    return arch, (tag or None)
