"""``save_pretrained``: write a model folder (model.safetensors, config.json, README.md, plot).

config.json is timm-compatible (``timm.create_model("hf-hub:...")`` / ``"local-dir:..."`` read it)::

    {
      "architecture": "resnet32",          # timm entrypoint name ("ltzoo_resnet50" where timm has the name)
      "num_classes": 10, "num_features": 64, "global_pool": "avg", "head": "fc",
      "library_name": "ltzoo", "ltzoo_version": "0.1.0",
      "model_args": {"head": "fc", "head_args": {}, "global_pool": "avg", "drop_rate": 0.0,
                     "in_chans": 3, "backbone_args": {}},
      "pretrained_cfg": {timm fields: architecture, tag, hf_hub_id, num_classes, input_size, mean, std,
                         crop_pct, interpolation, first_conv, classifier, license, paper_name, ...;
                         ltzoo fields: library, head, class_counts, groups, metrics, per_class_top1,
                         extra_metrics, recipe, paper, revision}
    }
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from torch import nn

from ltzoo.files import CONFIG_NAME, WEIGHTS_NAME, write_safetensors
from ltzoo.folder_manifest import write_folder
from ltzoo.hub.configs import PretrainedConfig

__all__ = ["save_pretrained", "config_for_model", "config_json"]


def _check_model(model: nn.Module) -> None:
    from ltzoo.models import LTModel

    if not isinstance(model, LTModel):
        raise TypeError(f"save_pretrained saves ltzoo models (LTModel from ltzoo.create_model), got {type(model).__name__}")


def config_for_model(model: nn.Module, tag: str | None = None, **fields: Any) -> PretrainedConfig:
    """The :class:`PretrainedConfig` of ``model``'s architecture and data config, plus ``fields``.

    Nothing is inherited from a checkpoint the model was loaded from: metrics, class counts,
    recipe and paper describe the weights being saved and must be passed each time.
    """
    _check_model(model)
    pc = getattr(model, "pretrained_cfg", None) or {}
    args = model.model_args
    return PretrainedConfig(
        arch=model.backbone_name, tag=tag, num_classes=model.num_classes, head=args.pop("head"),
        head_args=args.pop("head_args"), model_args=args, input_size=pc.get("input_size"), mean=pc.get("mean"),
        std=pc.get("std"), crop_pct=pc.get("crop_pct"), interpolation=pc.get("interpolation"), **fields,
    )


def config_json(model: nn.Module, cfg: PretrainedConfig) -> dict[str, Any]:
    """The ``config.json`` content for ``model`` described by ``cfg`` (schema in the module docstring)."""
    from ltzoo import __version__
    from ltzoo.hub.timm_names import timm_name

    model_args = cfg.ltzoo_model_args()
    return {
        "architecture": timm_name(cfg.arch), "num_classes": cfg.num_classes,
        "num_features": int(model.num_features), "global_pool": model_args["global_pool"], "head": cfg.head,
        "library_name": "ltzoo", "ltzoo_version": __version__,
        "model_args": model_args, "pretrained_cfg": cfg.to_pretrained_cfg(),
    }


def save_pretrained(
    model: nn.Module,
    directory: str | os.PathLike,
    *,
    tag: str | None = None,
    repo_id: str | None = None,
    metrics: dict[str, Any] | None = None,
    per_class: Any = None,
    class_counts: Any = None,
    groups: dict[str, Any] | None = None,
    extra_metrics: dict[str, Any] | None = None,
    recipe: Any = None,
    paper: Any = None,
    license: str | None = "apache-2.0",
    description: str | None = None,
    plot: bool = True,
) -> Path:
    """Write ``model.safetensors``, ``config.json`` and ``README.md`` (and the per-class plot) to ``directory``.

    Every file is first written to a temporary file in ``directory`` (fsynced, the user's umask
    mode), then all are moved into place and a manifest of their sha256 is written last
    (:func:`ltzoo.folder_manifest.write_folder`): a failed write leaves the folder as it was, an
    interrupted one is refused on load. Everything is validated before the first file is written.

    Args:
        model: An :class:`~ltzoo.models.LTModel`.
        directory: Target folder (created if needed). Files of an earlier ltzoo save there are replaced
            or, when this save does not write them (a per-class plot), removed; other files are kept.
            A manifest of the files' sha256 is written last and checked on load.
        tag: The "arch.tag" tag of these weights, e.g. "cifar10_lt_r100_bmls_ms".
        repo_id: Hub repository the folder is meant for (default ``<org>/<arch>.<tag>`` when tagged).
        metrics: Test-set metrics block ``{"dataset", "split", "top1", "many", "medium", "few", "hmean",
            "gmean", "lowest"}`` in percent (:func:`ltzoo.hub.metrics_block` builds it from a summary).
        per_class: Per-class top-1 accuracy (percent) on that test set; drawn sorted by class frequency.
        class_counts: Training images per class.
        groups: The many / medium / few split the metrics were measured with (``ltzoo eval`` reuses it).
        extra_metrics: Other named measurements (e.g. ``{"stage1": {...}}``), shown on the card only.
        recipe: Training recipe (a name or a JSON-serialisable dict).
        paper: The paper (a title, or a dict with "title", "url", "bibtex").
        license: License identifier of the weights.
        description: A paragraph for the model card.
        plot: Write ``per_class_accuracy.png`` when ``per_class`` is given (needs matplotlib).

    Returns:
        The directory.
    """
    from ltzoo.hub.cards import render_card

    cfg = config_for_model(model, tag=tag, hf_hub_id=repo_id, metrics=metrics, per_class=per_class,
                           class_counts=class_counts, groups=groups, extra_metrics=extra_metrics, recipe=recipe,
                           paper=paper, license=license, description=description)
    config = config_json(model, cfg)
    config_text = json.dumps(config, indent=2, sort_keys=False, allow_nan=False) + "\n"
    # built before anything is written; without an explicit repository the card loads the model from this folder
    files = render_card(config, plot=plot, folder=None if repo_id else str(directory))
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"directory {str(directory)!r} exists and is not a folder")
    state = model.state_dict()
    writers = {WEIGHTS_NAME: lambda tmp: write_safetensors(state, tmp, metadata={
        "format": "pt", "library": "ltzoo", "architecture": cfg.arch}, atomic=False)}
    for name, data in {CONFIG_NAME: config_text.encode("utf-8"), **files}.items():
        writers[name] = lambda tmp, data=data: tmp.write_bytes(data)
    # all staged first; then marker, renames, stale files of the last save removed, manifest last
    return write_folder(directory, writers)
