"""ltzoo: a timm-style model-and-loss zoo for long-tailed image classification.

Compose a backbone, head, loss, sampler and mixer by name::

    import ltzoo
    model = ltzoo.create_model("resnet32", head="fc", num_classes=10)
    ltzoo.list_backbones(), ltzoo.list_heads()
"""
from __future__ import annotations

from typing import Any

from ltzoo import backbones as _backbones  # noqa: F401  (registers backbones)
from ltzoo import data, metrics  # noqa: F401  (public submodules)
from ltzoo import heads as _heads  # noqa: F401  (registers heads)
from ltzoo import losses as _losses  # noqa: F401  (registers losses)
from ltzoo import mixers as _mixers  # noqa: F401  (registers mixers)
from ltzoo import samplers as _samplers  # noqa: F401  (registers samplers)
from ltzoo.hub import push_to_hub, save_pretrained
from ltzoo.hub.factory import create_model, list_models
from ltzoo.hub.timm_bridge import register_timm_entrypoints as _register_timm_entrypoints
from ltzoo.models import LTModel
from ltzoo.registry import BACKBONES, HEADS, LOSSES, MIXERS, SAMPLERS, Registry

__version__ = "0.1.0"

__all__ = [
    "LTModel", "Registry", "__version__", "data", "metrics",
    "create_model", "create_backbone", "create_head", "create_loss", "create_sampler", "create_mixer",
    "list_models", "list_backbones", "list_heads", "list_losses", "list_samplers", "list_mixers",
    "save_pretrained", "push_to_hub",
]


def create_backbone(name: str, **kwargs: Any):
    """Build a registered backbone (unpooled features, ``num_features`` channels)."""
    return BACKBONES.create(name, **kwargs)


def create_head(name: str, in_features: int, num_classes: int, **kwargs: Any):
    """Build a registered head mapping (B, in_features) pooled features to (B, num_classes) logits."""
    return HEADS.create(name, in_features=in_features, num_classes=num_classes, **kwargs)


def create_loss(name: str, **kwargs: Any):
    """Build a registered loss module."""
    return LOSSES.create(name, **kwargs)


def create_sampler(name: str, **kwargs: Any):
    """Build a registered sampler."""
    return SAMPLERS.create(name, **kwargs)


def create_mixer(name: str, **kwargs: Any):
    """Build a registered mixer."""
    return MIXERS.create(name, **kwargs)


def list_backbones(include: str | list[str] = "*", exclude: str | list[str] | None = None) -> list[str]:
    """Registered backbone names matching ``include`` and not ``exclude`` (fnmatch patterns)."""
    return BACKBONES.list(include, exclude)


def list_heads(include: str | list[str] = "*", exclude: str | list[str] | None = None) -> list[str]:
    """Registered head names matching the filters."""
    return HEADS.list(include, exclude)


def list_losses(include: str | list[str] = "*", exclude: str | list[str] | None = None) -> list[str]:
    """Registered loss names matching the filters."""
    return LOSSES.list(include, exclude)


def list_samplers(include: str | list[str] = "*", exclude: str | list[str] | None = None) -> list[str]:
    """Registered sampler names matching the filters."""
    return SAMPLERS.list(include, exclude)


def list_mixers(include: str | list[str] = "*", exclude: str | list[str] | None = None) -> list[str]:
    """Registered mixer names matching the filters."""
    return MIXERS.list(include, exclude)


_register_timm_entrypoints()
