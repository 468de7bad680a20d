"""Deprecated: the old home of the recipes and their machinery, kept for one release.

``ltzoo.train.<name>`` still resolves, with a DeprecationWarning naming the new path:
recipes are in :mod:`ltzoo.recipes`, what they share in :mod:`ltzoo.engine`.
"""
from __future__ import annotations

import importlib
import warnings
from typing import Any

__all__: list[str] = []

NEW_HOMES = {
    "train_supervised": "ltzoo.recipes.supervised", "train_fixmatch": "ltzoo.recipes.fixmatch",
    "train_btm": "ltzoo.recipes.btm", "train_dlsa": "ltzoo.recipes.dlsa",
    "retrain_classifier": "ltzoo.recipes.crt", "without_augmentation": "ltzoo.recipes.crt",
    "TrainConfig": "ltzoo.engine.config", "load_config": "ltzoo.engine.config", "SSLConfig": "ltzoo.engine.ssl_config",
    "make_ltssl_split": "ltzoo.engine.ssl_data", "make_ltssl_digits": "ltzoo.engine.ssl_data",
    "extract_features": "ltzoo.engine.features", "TrainForward": "ltzoo.engine.objective",
    "compute_loss": "ltzoo.engine.objective", "mixed_loss": "ltzoo.engine.objective",
    "build_scheduler": "ltzoo.engine.schedule", "lr_multiplier": "ltzoo.engine.schedule",
    "save_checkpoint": "ltzoo.engine.checkpoint", "load_checkpoint": "ltzoo.engine.checkpoint",
    "capture_rng_state": "ltzoo.engine.checkpoint", "restore_rng_state": "ltzoo.engine.checkpoint",
}


def moved(name: str, module: str, old: str = "ltzoo.train") -> Any:
    """``module.name``, after a DeprecationWarning that ``old.name`` has moved there."""
    warnings.warn(f"{old}.{name} moved to {module}.{name}; the {old} alias goes in the next release",
                  DeprecationWarning, stacklevel=3)
    return getattr(importlib.import_module(module), name)


def __getattr__(name: str) -> Any:
    if name in NEW_HOMES:
        return moved(name, NEW_HOMES[name])
    raise AttributeError(f"module 'ltzoo.train' has no attribute {name!r} (recipes: ltzoo.recipes, "
                         "their machinery: ltzoo.engine)")
