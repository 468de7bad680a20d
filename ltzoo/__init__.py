"""ltzoo: a timm-style model-and-loss zoo for long-tailed image classification.

Compose a backbone, head, loss, sampler and mixer by name::

    import ltzoo
    model = ltzoo.create_model("resnet32", head="fc", num_classes=10)
    ltzoo.list_backbones(), ltzoo.list_heads()

``import ltzoo`` is light: torch, timm and the components load on first use of the API (so the
``ltzoo`` command starts fast). ltzoo's architectures reach ``timm.create_model`` as soon as timm
is loaded (see :mod:`ltzoo.lazy`).
"""
from __future__ import annotations

import importlib
from typing import Any

from ltzoo import lazy as _lazy
from ltzoo.registry import BACKBONES, HEADS, LOSSES, MIXERS, SAMPLERS, Registry

__version__ = "0.1.0"

__all__ = [
    "LTModel", "Registry", "__version__", "data", "metrics",
    "create_model", "create_backbone", "create_head", "create_loss", "create_sampler", "create_mixer",
    "list_models", "list_backbones", "list_heads", "list_losses", "list_samplers", "list_mixers",
    "save_pretrained", "push_to_hub",
]

_LAZY = {  # public name -> module defining it, imported on first access
    "create_model": "ltzoo.hub.factory", "list_models": "ltzoo.hub.factory",
    "save_pretrained": "ltzoo.hub", "push_to_hub": "ltzoo.hub", "LTModel": "ltzoo.models",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    else:
        try:
            value = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module 'ltzoo' has no attribute {name!r}") from None
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


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


_lazy.install()
