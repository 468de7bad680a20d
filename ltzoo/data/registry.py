"""The dataset registry: name -> builder ``(root, split, imb_ratio, download, transform, **kw)``."""
from __future__ import annotations

from ltzoo.registry import Registry

__all__ = ["DATASETS"]

DATASETS = Registry("dataset")
