"""The pretrained weights ltzoo publishes, registered by name from ``published.json`` on import.

``published.json`` (package data, written by ``python -m benchmarks.cifar10_lt publish``) maps each
"arch.tag" to the fields of its :class:`~ltzoo.hub.configs.PretrainedConfig`: the metrics that
``ltzoo eval`` measured, the class counts, the recipe and schedule that reproduce it, and the paper.
The weights themselves are on the Hub (``<org>/<arch>.<tag>``) with a local copy in the
repository's ``model_cards/<arch.tag>/``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["PUBLISHED_FILE", "published_entries", "register_published"]

PUBLISHED_FILE = Path(__file__).with_name("published.json")


def published_entries(path: str | Path = PUBLISHED_FILE) -> dict[str, dict[str, Any]]:
    """The published "arch.tag" names and their config fields (an empty dict when none are published)."""
    path = Path(path)
    if not path.is_file():
        return {}
    entries = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(entries, dict):
        raise ValueError(f"{path} must hold a JSON object mapping 'arch.tag' names to config fields")
    return entries


def register_published(path: str | Path = PUBLISHED_FILE) -> list[str]:
    """Register every entry of ``published.json`` that is not registered yet; return their names."""
    from ltzoo.hub.configs import PRETRAINED, PretrainedConfig, register_pretrained

    names = []
    for name, fields in published_entries(path).items():
        cfg = PretrainedConfig(**fields)
        if cfg.name != name:
            raise ValueError(f"{path}: entry {name!r} describes {cfg.name!r}")
        if name not in PRETRAINED:
            register_pretrained(name, cfg)
        names.append(name)
    return names
