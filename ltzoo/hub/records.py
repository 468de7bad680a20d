"""Validation of what a pretrained config records: the metrics block and per-class numbers.

The metrics block of a checkpoint is exactly ``{"dataset", "split", "top1", "many", "medium",
"few", "hmean", "gmean", "lowest"}``: percentages in [0, 100] measured on the named test set
(``many``/``medium``/``few`` may be ``None`` when the group has no test class). Numbers
measured elsewhere (a BTM checkpoint's stage-1 models, a validation split) go in
``extra_metrics``, never in this block.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

__all__ = ["METRIC_KEYS", "METRICS_FIELDS", "check_metrics", "metrics_block", "check_per_class",
           "check_extra_metrics", "jsonable"]

METRIC_KEYS = ("top1", "many", "medium", "few", "hmean", "gmean", "lowest")
METRICS_FIELDS = ("dataset", "split") + METRIC_KEYS
_MAY_BE_NONE = frozenset({"many", "medium", "few"})


def _percentage(value: Any, what: str, allow_none: bool) -> float | None:
    if value is None:
        if allow_none:
            return None
        raise ValueError(f"{what} is required, got None")
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
        raise TypeError(f"{what} must be a number (a percentage in [0, 100]), got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value) or not 0.0 <= value <= 100.0:
        raise ValueError(f"{what} must be a percentage in [0, 100], got {value}")
    return value


def check_metrics(metrics: Mapping[str, Any], name: str = "metrics") -> dict[str, Any]:
    """Validate a metrics block and return it as a plain dict in canonical key order.

    Args:
        metrics: ``{"dataset", "split", "top1", "many", "medium", "few", "hmean", "gmean", "lowest"}``,
            exactly these keys; ``dataset`` and ``split`` non-empty strings, the rest percentages.
        name: Name used in error messages.

    Returns:
        The validated block (floats, ``None`` where a group is empty).

    Raises:
        ValueError: On a missing or unexpected key, or a value outside [0, 100].
        TypeError: On a value of the wrong type.
    """
    if not isinstance(metrics, Mapping):
        raise TypeError(f"{name} must be a mapping with keys {list(METRICS_FIELDS)}, got {type(metrics).__name__}")
    missing = [k for k in METRICS_FIELDS if k not in metrics]
    unexpected = sorted(set(metrics) - set(METRICS_FIELDS))
    if missing or unexpected:
        raise ValueError(
            f"{name} must have exactly the keys {list(METRICS_FIELDS)}; missing {missing}, unexpected {unexpected} "
            "(numbers measured elsewhere, e.g. BTM stage-1 models, belong in extra_metrics)"
        )
    out: dict[str, Any] = {}
    for key in ("dataset", "split"):
        if not isinstance(metrics[key], str) or not metrics[key].strip():
            raise ValueError(f"{name}[{key!r}] must be a non-empty string naming the test set, got {metrics[key]!r}")
        out[key] = metrics[key]
    for key in METRIC_KEYS:
        out[key] = _percentage(metrics[key], f"{name}[{key!r}]", key in _MAY_BE_NONE)
    return out


def metrics_block(summary: Mapping[str, Any], dataset: str, split: str = "test") -> dict[str, Any]:
    """Build the metrics block from :func:`ltzoo.metrics.summarize` / ``evaluate`` output.

    Args:
        summary: A summary dict (percentages) holding at least the keys in ``METRIC_KEYS``.
        dataset: Name of the test set the summary was measured on, e.g. "cifar10_lt_r100".
        split: Its split, e.g. "test".

    Returns:
        The validated block (extra summary keys such as ``per_class`` are left out).
    """
    missing = [k for k in METRIC_KEYS if k not in summary]
    if missing:
        raise ValueError(f"summary lacks the metrics {missing}; pass the output of ltzoo.metrics.summarize")
    return check_metrics({"dataset": dataset, "split": split, **{k: summary[k] for k in METRIC_KEYS}})


def check_per_class(per_class: Any, num_classes: int) -> tuple[float | None, ...]:
    """Validate per-class top-1 accuracies (percentages, ``None`` for a class without test samples)."""
    if hasattr(per_class, "tolist"):
        per_class = per_class.tolist()
    if isinstance(per_class, (str, bytes)) or not hasattr(per_class, "__len__"):
        raise TypeError(f"per_class must be a sequence of percentages, got {type(per_class).__name__}")
    if len(per_class) != num_classes:
        raise ValueError(f"per_class must have one entry per class (num_classes={num_classes}), got {len(per_class)}")
    values = []
    for i, v in enumerate(per_class):
        if v is not None and isinstance(v, float) and math.isnan(v):
            v = None
        values.append(_percentage(v, f"per_class[{i}]", allow_none=True))
    return tuple(values)


def check_extra_metrics(extra: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Validate named extra measurement blocks, e.g. ``{"stage1_mean": {"top1": 80.1, ...}}``."""
    if not isinstance(extra, Mapping):
        raise TypeError(f"extra_metrics must map a name to a dict of measurements, got {type(extra).__name__}")
    out = {}
    for key, block in extra.items():
        if not isinstance(key, str) or not key or not isinstance(block, Mapping):
            raise ValueError(f"extra_metrics must map a non-empty name to a dict, got {key!r}: {block!r}")
        out[key] = jsonable(dict(block), f"extra_metrics[{key!r}]")
    return out


def jsonable(value: Any, name: str) -> Any:
    """``value`` with tuples, arrays and tensors turned into lists; raise if it is not JSON-serialisable."""
    def convert(v: Any) -> Any:
        if hasattr(v, "detach"):
            v = v.detach().cpu()
        if hasattr(v, "tolist") and not isinstance(v, (str, bytes)):
            return v.tolist()
        if isinstance(v, Mapping):
            return {str(k): convert(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [convert(x) for x in v]
        return v

    value = convert(value)
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{name} must be JSON-serialisable (strings, numbers, lists, dicts): {e}") from None
    return value
