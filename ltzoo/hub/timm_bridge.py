"""Make ltzoo architectures buildable by ``timm.create_model`` without overwriting timm names.

For every registered ltzoo backbone whose name timm does not already know, a timm model
entrypoint is registered that builds the ltzoo model (FC head by default). Names timm
already has (resnet50, resnet152, resnext50_32x4d) are left to timm; the ltzoo model on such a
backbone is registered as "ltzoo_<name>" (e.g. "ltzoo_resnet50"), the architecture name that
ltzoo's config.json files use so that ``timm.create_model("hf-hub:...")`` reaches ltzoo.
"""
from __future__ import annotations

import sys
from typing import Any, Callable

import timm
from timm.models import register_model

from ltzoo.backbones import default_cfg_for
from ltzoo.hub.factory import create_model
from ltzoo.hub.timm_names import ALIAS_PREFIX, ltzoo_arch, timm_name
from ltzoo.hub.timm_names import aliases as _aliases
from ltzoo.hub.timm_names import bridged as _bridged
from ltzoo.registry import BACKBONES

__all__ = ["register_timm_entrypoints", "bridged_names", "timm_name", "ltzoo_arch", "ALIAS_PREFIX"]

default_cfgs: dict[str, dict[str, Any]] = {}  # read by timm's register_model for each name


def _entrypoint(arch: str, name: str | None = None) -> Callable[..., Any]:
    name = name or arch

    def entrypoint(pretrained: bool = False, **kwargs: Any):
        return create_model(arch, pretrained=pretrained, **kwargs)

    entrypoint.__name__ = name
    entrypoint.__qualname__ = name
    entrypoint.__module__ = __name__
    entrypoint.__doc__ = f"ltzoo {arch} (backbone + pooling + head); see ltzoo.create_model."
    return entrypoint


def register_timm_entrypoints() -> list[str]:
    """Register every ltzoo backbone (as "ltzoo_<arch>" where timm has the name); return the names added."""
    added = []
    module = sys.modules[__name__]
    for arch in BACKBONES.list():
        if arch in _bridged or arch in _aliases.values():
            continue
        name = ALIAS_PREFIX + arch if timm.is_model(arch) else arch
        if timm.is_model(name):
            continue
        default_cfgs[name] = {**default_cfg_for(arch), "architecture": name}
        fn = _entrypoint(arch, name)
        setattr(module, name, fn)
        register_model(fn)
        if name == arch:
            _bridged.append(arch)
        else:
            _aliases[name] = arch
        added.append(name)
    return added


def bridged_names() -> list[str]:
    """The ltzoo architectures that timm.create_model builds through this bridge."""
    return sorted(_bridged)
