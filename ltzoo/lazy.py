"""Keep ``import ltzoo`` light (no torch, no timm) while ``timm.create_model`` still finds ltzoo models.

``import ltzoo`` loads only the registries; the API (``ltzoo.create_model``, ...) and submodules
load on first use (:func:`ltzoo.__getattr__`). ltzoo's architectures must still reach timm once
timm is loaded, whoever loads it, so :func:`install` puts a small finder on ``sys.meta_path``:
when the import of ``timm`` (by user code) or of an ltzoo module that pulled timm in finishes, and
no ltzoo module is still being imported, the timm entrypoints are registered (once). Where timm
is already loaded when ltzoo is imported, they are registered right away.
"""
from __future__ import annotations

import importlib
import importlib.abc
import sys
from types import ModuleType
from typing import Any

__all__ = ["install", "register_with_timm"]

_state = {"depth": 0, "registered": False}


def register_with_timm() -> None:
    """Register ltzoo's architectures as timm entrypoints (idempotent)."""
    if _state["registered"]:
        return
    _state["registered"] = True
    importlib.import_module("ltzoo.hub.timm_bridge").register_timm_entrypoints()


def _after_import() -> None:
    if _state["depth"] == 0 and not _state["registered"] and "timm" in sys.modules:
        register_with_timm()


class _CountingLoader(importlib.abc.Loader):
    """Wraps a module's loader to count ltzoo / timm imports in progress."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: Any) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        _state["depth"] += 1
        try:
            self._loader.exec_module(module)
        finally:
            _state["depth"] -= 1
        _after_import()

    def __getattr__(self, name: str) -> Any:  # get_source, get_resource_reader, is_package, ...
        return getattr(self._loader, name)


class _Finder(importlib.abc.MetaPathFinder):
    """Finds ``timm`` and ``ltzoo.*`` with the other finders and wraps their loaders."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != "timm" and not name.startswith("ltzoo."):
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec = find(name, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _CountingLoader(spec.loader)
        return spec


def install() -> None:
    """Register with timm now if timm is loaded, else when it is (called once by ``ltzoo/__init__``)."""
    if "timm" in sys.modules:
        register_with_timm()
    elif not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
