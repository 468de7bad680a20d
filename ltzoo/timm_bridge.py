"""Make ltzoo architectures buildable by ``timm.create_model`` without overwriting timm names.

For every registered ltzoo backbone whose name timm does not already know, a timm model
entrypoint is registered that builds the ltzoo model (FC head by default). Names timm
already has (resnet50, resnet152, resnext50_32x4d) are left to timm.
"""
from __future__ import annotations

import sys
from typing import Any, Callable

import timm
from timm.models import register_model

from ltzoo.backbones import default_cfg_for
from ltzoo.registry import BACKBONES

__all__ = ["register_timm_entrypoints", "bridged_names"]

default_cfgs: dict[str, dict[str, Any]] = {}  # read by timm's register_model for each name
_bridged: list[str] = []


def _entrypoint(arch: str) -> Callable[..., Any]:
    def entrypoint(pretrained: bool = False, **kwargs: Any):
        from ltzoo.models import create_model

        return create_model(arch, pretrained=pretrained, **kwargs)

    entrypoint.__name__ = arch
    entrypoint.__qualname__ = arch
    entrypoint.__module__ = __name__
    entrypoint.__doc__ = f"ltzoo {arch} (backbone + pooling + head); see ltzoo.create_model."
    return entrypoint


def register_timm_entrypoints() -> list[str]:
    """Register every ltzoo backbone timm lacks; return the names registered now."""
    added = []
    module = sys.modules[__name__]
    for arch in BACKBONES.list():
        if arch in _bridged or timm.is_model(arch):
            continue
        default_cfgs[arch] = {**default_cfg_for(arch), "architecture": arch}
        fn = _entrypoint(arch)
        setattr(module, arch, fn)
        register_model(fn)
        _bridged.append(arch)
        added.append(arch)
    return added


def bridged_names() -> list[str]:
    """The ltzoo architectures that timm.create_model builds through this bridge."""
    return sorted(_bridged)
