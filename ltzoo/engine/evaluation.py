"""Evaluation of a run: the full ``ltzoo.metrics`` summary, post-hoc LA, EMA, and the JSON log.

Under torch.distributed, evaluation runs on rank 0 over the whole test set and its result is
broadcast, so every rank returns the same numbers and only rank 0 touches the files.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from ltzoo.engine.checkpoint import write_atomic
from ltzoo.engine.distributed import broadcast_object, is_main_process

__all__ = ["limit_test_set", "resolve_group_split", "group_split_fields", "evaluate_model", "evaluate_run", "posthoc_adjustment", "write_json",
           "read_json_log", "append_json_log", "format_table", "SUMMARY_KEYS"]

SUMMARY_KEYS = ("top1", "many", "medium", "few", "hmean", "gmean", "lowest")


def limit_test_set(test_set: Any, max_samples: int | None) -> Any:
    """The first ceil(max_samples / K) items of every class of ``test_set`` (itself for None or a small set)."""
    import numpy as np

    if max_samples is None or len(test_set) <= max_samples:
        return test_set
    labels = np.asarray(test_set.targets, dtype=np.int64)
    classes = np.unique(labels)
    per_class = -(-max_samples // classes.size)
    keep = np.sort(np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in classes]))
    if hasattr(test_set, "subset"):
        return test_set.subset(keep)
    return torch.utils.data.Subset(test_set, keep.tolist())


def resolve_group_split(cfg: Any, dataset: Any = None, recorded: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The many / medium / few split a run or an evaluation uses, as a group split record.

    Precedence: the config's ``group_ranges``, then its ``many_threshold`` / ``few_threshold``
    (either set), then ``recorded`` (a saved model's split), then ``dataset.group_split``, then
    the > 100 / < 20 threshold default.

    Args:
        cfg: A config with ``group_ranges``, ``many_threshold``, ``few_threshold``.
        dataset: The training (or test) set, whose ``group_split`` is the convention.
        recorded: A split recorded with a saved model.

    Returns:
        A validated record (see :mod:`ltzoo.metrics.groups`).
    """
    from ltzoo.metrics.groups import check_group_split, split_of

    k = getattr(dataset, "num_classes", None)
    if cfg.group_ranges is not None:
        return check_group_split({"ranges": cfg.group_ranges}, k, "group_ranges")
    thresholds = {n: getattr(cfg, n) for n in ("many_threshold", "few_threshold") if getattr(cfg, n) is not None}
    if thresholds:
        return check_group_split(thresholds, k)
    if recorded is not None:
        return check_group_split(recorded, k, "the recorded groups")
    return split_of(dataset)


def group_split_fields(split: Mapping[str, Any]) -> dict[str, Any]:
    """Config field values that record ``split`` (``group_ranges`` or the two thresholds)."""
    if "ranges" in split:
        return {"group_ranges": {k: list(v) for k, v in split["ranges"].items()},
                "many_threshold": None, "few_threshold": None}
    return {"group_ranges": None, "many_threshold": split["many_threshold"], "few_threshold": split["few_threshold"]}


def posthoc_adjustment(class_counts: Sequence[float], tau: float) -> torch.Tensor:
    """tau * log prior, the vector ``ltzoo.metrics.evaluate`` subtracts for post-hoc logit adjustment."""
    from ltzoo.losses.logit_adjusted import log_prior

    return tau * log_prior(class_counts)


def evaluate_model(model: nn.Module, loader: Any, class_counts: Sequence[float],
                   groups: Mapping[str, Any] | None = None, logit_adjust_tau: float | None = None,
                   progress: bool = False) -> dict[str, Any]:
    """``ltzoo.metrics.evaluate`` of ``model``, plus the post-hoc logit-adjusted version when asked.

    Args:
        model: The bare model (not a DDP wrapper).
        loader: Test loader of ``(images, labels)``.
        class_counts: Training counts (groups and the post-hoc prior).
        groups: A group split record (:func:`resolve_group_split`).
        logit_adjust_tau: Also evaluate with logits - tau * log prior.
        progress: tqdm bar.

    Returns:
        The metrics summary (percentages, per-class, confusion matrix); with ``logit_adjust_tau``
        it holds the adjusted summary under ``"posthoc"`` (and its tau under ``"posthoc_tau"``).
    """
    from ltzoo.metrics import evaluate

    groups = dict(groups or {})
    out = evaluate(model, loader, class_counts, progress=progress, **groups)
    if logit_adjust_tau is not None:
        adj = posthoc_adjustment(class_counts, logit_adjust_tau)
        out["posthoc"] = evaluate(model, loader, class_counts, logit_adjustment=adj, progress=progress, **groups)
        out["posthoc_tau"] = float(logit_adjust_tau)
    return out


def evaluate_run(models: Mapping[str, nn.Module | None], loader: Any, class_counts: Sequence[float],
                 groups: Mapping[str, Any] | None = None, logit_adjust_tau: float | None = None,
                 progress: bool = False) -> dict[str, Any]:
    """Evaluate several models (e.g. {"metrics": model, "ema_metrics": ema_model}) on rank 0 and broadcast.

    Entries whose model is None are skipped. Every rank must call this (it broadcasts).

    Returns:
        ``{key: summary}`` for each evaluated model, the same on every rank.
    """
    result: dict[str, Any] | None = None
    if is_main_process():
        result = {key: evaluate_model(m, loader, class_counts, groups, logit_adjust_tau, progress)
                  for key, m in models.items() if m is not None}
    return broadcast_object(result)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON atomically (temporary file + ``os.replace``)."""
    return write_atomic(path, (json.dumps(obj, indent=2, allow_nan=False) + "\n").encode("utf-8"))


def read_json_log(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The list of records of a JSON log (empty when the file does not exist)."""
    path = Path(path)
    if not path.is_file():
        return []
    records = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(records, list):
        raise ValueError(f"{path} must hold a JSON list of evaluation records")
    return records


def append_json_log(path: str | os.PathLike, record: Mapping[str, Any]) -> Path:
    """Append ``record`` to the JSON list at ``path`` (rewritten atomically; created if missing)."""
    return write_json(path, [*read_json_log(path), dict(record)])


def format_table(rows: Sequence[Mapping[str, Any]], name_key: str = "method") -> str:
    """A fixed-width text table: one row per result with top-1, many/medium/few, H-mean, G-mean, lowest."""
    headers = [name_key, *SUMMARY_KEYS]
    labels = {"top1": "top-1", "hmean": "H-mean", "gmean": "G-mean", "lowest": "lowest"}
    width = max([len(name_key)] + [len(str(r[name_key])) for r in rows]) + 2
    line = f"{name_key:<{width}}" + "".join(f"{labels.get(k, k):>9}" for k in headers[1:])
    out = [line, "-" * len(line)]
    for r in rows:
        cells = "".join(f"{'-' if r.get(k) is None else format(r[k], '.1f'):>9}" for k in SUMMARY_KEYS)
        out.append(f"{str(r[name_key]):<{width}}{cells}")
    return "\n".join(out)
