"""Names shared by ltzoo and timm: which timm entrypoint builds which ltzoo architecture.

Names timm already has (resnet50, resnet152, resnext50_32x4d) stay timm's; the ltzoo model on
such a backbone is known to timm as "ltzoo_<name>" (the architecture name ltzoo's config.json
files use). :mod:`ltzoo.hub.timm_bridge` fills these tables when it registers the entrypoints.
"""
from __future__ import annotations

__all__ = ["ALIAS_PREFIX", "timm_name", "ltzoo_arch", "bridged", "aliases"]

ALIAS_PREFIX = "ltzoo_"
bridged: list[str] = []  # ltzoo archs registered in timm under their own name
aliases: dict[str, str] = {}  # timm name "ltzoo_<arch>" -> ltzoo arch, for archs whose name timm has


def timm_name(arch: str) -> str:
    """The timm entrypoint name that builds ltzoo architecture ``arch`` ("resnet32", "ltzoo_resnet50")."""
    for name, target in aliases.items():
        if target == arch:
            return name
    return arch


def ltzoo_arch(name: str) -> str:
    """The ltzoo architecture behind timm entrypoint ``name`` (inverse of :func:`timm_name`)."""
    return aliases.get(name, name)
