"""Deprecated alias of :mod:`ltzoo.recipes.btm` for one release: ``ltzoo.train.btm.train_btm`` warns and resolves."""
from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    from ltzoo.train import moved

    return moved(name, "ltzoo.recipes.btm", old="ltzoo.train.btm")
