"""timm's feature-extraction API for backbones built from a sequence of stages.

A backbone lists its feature levels (stem, then each stage) in ``feature_info`` as timm does:
``dict(num_chs=C, reduction=R, module="stages.0")``, R the input-to-map downsampling. Its
``feature_levels()`` returns the modules to apply one after the other, one per level; the mixin
then provides ``forward_intermediates`` (timm's signature), gradient checkpointing and
``group_matcher``. The last level's output equals ``forward_features`` (checked by the tests).
"""
from __future__ import annotations

from typing import Any

import torch
from timm.models._features import feature_take_indices
from torch import nn
from torch.utils.checkpoint import checkpoint

__all__ = ["StagedBackbone", "prefix_matcher", "prefix_feature_info"]


class StagedBackbone(nn.Module):
    """Base class of ltzoo's own backbones: feature levels, ``forward_intermediates``, checkpointing."""

    def __init__(self) -> None:
        super().__init__()
        self.grad_checkpointing = False

    def feature_levels(self) -> list[nn.Module]:
        """The modules producing each feature level in turn (overridden by each backbone)."""
        raise NotImplementedError

    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        """Regexes over this backbone's parameter names: "stem" and "blocks" (timm's layer-decay groups)."""
        raise NotImplementedError

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each stage in the backward pass instead of storing its activations (training only)."""
        self.grad_checkpointing = bool(enable)

    def run_stages(self, stages: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
        """Apply ``stages`` (each checkpointed in training when gradient checkpointing is on)."""
        if self.grad_checkpointing and self.training and not torch.jit.is_scripting():
            for stage in stages:
                x = checkpoint(stage, x, use_reentrant=False)
            return x
        return stages(x)

    @torch.jit.ignore
    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: int | list[int] | tuple[int, ...] | None = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """The feature maps of the chosen levels (timm's ``forward_intermediates``).

        Args:
            x: Input images (N, C, H, W).
            indices: None for every level, an int n for the last n, or a sequence of level indices
                (negative ones count from the end).
            norm: Accepted for timm's API; the levels are the stage outputs as they are.
            stop_early: Stop after the last level asked for (the returned final map is then that level's).
            output_fmt: Only "NCHW".
            intermediates_only: Return only the list of intermediate maps.

        Returns:
            The list of maps, or (final feature map, list of maps).
        """
        if output_fmt != "NCHW":
            raise ValueError(f"output_fmt must be 'NCHW', got {output_fmt!r}")
        take, max_index = feature_take_indices(len(self.feature_info), indices)
        intermediates = []
        for i, level in enumerate(self.feature_levels()):
            if stop_early and i > max_index:
                break
            if self.grad_checkpointing and self.training:
                x = checkpoint(level, x, use_reentrant=False)
            else:
                x = level(x)
            if i in take:
                intermediates.append(x)
        if intermediates_only:
            return intermediates
        return x, intermediates


def prefix_matcher(matcher: dict[str, Any], prefix: str) -> dict[str, Any]:
    """Re-anchor a timm group matcher (regexes starting with "^") below the submodule ``prefix``.

    Args:
        matcher: timm's group matcher: group name -> regex, or a list of (regex, suffix) pairs.
        prefix: Submodule path, e.g. "backbone".

    Returns:
        The same matcher over the parent's parameter names (capture groups unchanged).
    """
    def one(pattern: str) -> str:
        return "^" + prefix.replace(".", r"\.") + r"\.(?:" + pattern.lstrip("^") + ")"

    out: dict[str, Any] = {}
    for name, value in matcher.items():
        if isinstance(value, str):
            out[name] = one(value)
        else:
            out[name] = [(one(pattern), suffix) for pattern, suffix in value]
    return out


def prefix_feature_info(info: Any, prefix: str) -> list[dict[str, Any]]:
    """timm feature info (a list of dicts or a FeatureInfo) with each module name under ``prefix``."""
    entries = info.info if hasattr(info, "info") else info
    return [{**entry, "module": f"{prefix}.{entry['module']}"} for entry in entries]
