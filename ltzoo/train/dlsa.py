"""Deprecated alias of :mod:`ltzoo.recipes.dlsa` for one release: ``ltzoo.train.dlsa.train_dlsa`` warns and resolves."""
from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    from ltzoo.train import moved

    return moved(name, "ltzoo.recipes.dlsa", old="ltzoo.train.dlsa")
