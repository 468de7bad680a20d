"""Backbone registration with a default (pretrained-style) config per architecture."""
from __future__ import annotations

from typing import Any, Callable

from ltzoo.data.transforms import CIFAR_MEAN, CIFAR_STD, IMAGENET_MEAN, IMAGENET_STD  # noqa: F401
from ltzoo.registry import BACKBONES


def cifar_cfg(num_classes: int = 10, pool_size: tuple[int, int] = (8, 8), **overrides: Any) -> dict[str, Any]:
    """Default config of a 32x32 CIFAR backbone (input size, normalisation, default classes, map size)."""
    cfg = dict(
        num_classes=num_classes, input_size=(3, 32, 32), pool_size=tuple(pool_size), mean=CIFAR_MEAN, std=CIFAR_STD,
        crop_pct=1.0, interpolation="bilinear", classifier="head", first_conv="backbone.stem.0",
    )
    cfg.update(overrides)
    return cfg


def register_backbone(default_cfg: dict[str, Any] | Callable[[], dict[str, Any]], num_features: int):
    """Decorator: register a backbone factory under its function name, with its default config.

    Args:
        default_cfg: The architecture's default config (input size, mean/std, num_classes), or a
            zero-argument function returning it (evaluated lazily, e.g. to ask timm).
        num_features: Channels of the feature map at default settings (for messages and listings).

    Returns:
        The decorator, which returns the factory unchanged apart from a ``default_cfg`` attribute.
    """
    def decorator(fn):
        fn.default_cfg = default_cfg
        fn.num_features = num_features
        return BACKBONES.register(fn.__name__, fn)
    return decorator


def default_cfg_for(name: str) -> dict[str, Any]:
    """The default config of backbone ``name`` (a fresh dict; unknown names raise ValueError)."""
    cfg = BACKBONES.get(name).default_cfg
    return dict(cfg() if callable(cfg) else cfg)


def feature_dims() -> dict[str, int]:
    """Registered backbone name -> feature dimension at default settings."""
    return {name: BACKBONES.get(name).num_features for name in BACKBONES.list()}
