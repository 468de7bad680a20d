"""``ltzoo eval``: evaluate a training checkpoint, a run folder or a saved model folder.

Accepted paths:

* a training checkpoint ``last.pt`` (model, or with ``ema=True`` the EMA weights; config inside);
* a run folder (``output_dir`` of :func:`~ltzoo.recipes.supervised.train_supervised`): its ``model/`` folder
  (the final model) when present, else its ``last.pt``;
* a folder written by :func:`ltzoo.save_pretrained` (``config.json`` + ``model.safetensors``),
  loaded with ``create_model("local-dir:...")``; the data settings come from its recorded recipe.

The test set is rebuilt from the recorded config unless ``data`` / ``data_root`` / ``imb_ratio``
are given; the class counts (groups, post-hoc prior) are the recorded training counts.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ltzoo.engine.config import TrainConfig

__all__ = ["load_for_eval", "evaluate_checkpoint"]


def _strip_prefix(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def load_for_eval(path: str | Path, ema: bool = False,
                  device: str = "cpu") -> tuple[nn.Module, TrainConfig | None, list]:
    """The model, its training config (None when unknown) and its training class counts.

    Args:
        path: A checkpoint file, a run folder or a saved model folder (see the module docstring).
        ema: From a ``last.pt``, load the EMA weights.
        device: Where the model goes.

    Returns:
        ``(model in eval mode, config or None, class counts)``.
    """
    from ltzoo.engine.builders import build_model
    from ltzoo.engine.checkpoint import load_checkpoint
    from ltzoo.hub.factory import create_model

    path = Path(path)
    if path.is_dir():
        if (path / "config.json").is_file():
            folder = path
        elif (path / "model" / "config.json").is_file() and not ema:
            folder = path / "model"
        elif (path / "last.pt").is_file():
            return load_for_eval(path / "last.pt", ema, device)
        else:
            raise FileNotFoundError(f"{path} holds neither a saved model (config.json) nor a run (model/, last.pt)")
        model = create_model(f"local-dir:{folder.resolve()}", pretrained=True)
        pc = model.pretrained_cfg
        recipe = pc.get("recipe")
        if isinstance(recipe, dict) and isinstance(recipe.get("stage1"), dict):
            recipe = recipe["stage1"]  # a BTM model records {"stage1": its stage-1 run's config, "btm": ...}
        cfg = TrainConfig.from_dict(recipe) if isinstance(recipe, dict) else None
        counts = pc.get("class_counts")
        if counts is None:
            raise ValueError(f"{folder} records no class_counts; cannot form many/medium/few groups")
        return model.to(device).eval(), cfg, list(counts)
    state = load_checkpoint(path)
    cfg = TrainConfig.from_dict(state["config"])
    model = build_model(cfg.model, cfg.head, int(state["num_classes"]), cfg.model_args)
    if ema:
        if state.get("ema") is None:
            raise ValueError(f"{path} has no EMA weights (the run had ema_decay=None)")
        model.load_state_dict(_strip_prefix(state["ema"], "module."))
    else:
        model.load_state_dict(state["model"])
    return model.to(device).eval(), cfg, list(state["class_counts"])


def evaluate_checkpoint(
    path: str | Path,
    *,
    data: str | None = None,
    data_root: str | None = None,
    imb_ratio: float | None = None,
    data_args: dict[str, Any] | None = None,
    out: str | Path | None = None,
    plot: str | Path | None = None,
    ema: bool = False,
    logit_adjust_tau: float | None = None,
    device: str = "cpu",
    batch_size: int = 256,
    max_samples: int | None = None,
    groups: dict[str, Any] | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Evaluate a checkpoint on its test set; write the metrics JSON and the per-class plot.

    Args:
        path: Checkpoint, run folder or saved model folder.
        data, data_root, imb_ratio, data_args: Override the recorded data settings.
        out: Metrics JSON path (None: don't write).
        plot: Per-class accuracy PNG path, classes sorted by training frequency (None: don't
            draw; needs matplotlib).
        ema: Use the EMA weights of a ``last.pt``.
        logit_adjust_tau: Also report post-hoc logit-adjusted metrics.
        device: Evaluation device.
        batch_size: Test batch size.
        max_samples: Evaluate on a class-stratified part of the test set of about this size.
        groups: The many / medium / few split (a record of :mod:`ltzoo.metrics.groups`); default the
            one recorded with the model, else the run config's, else the test set's convention.
        progress: tqdm bar.

    Returns:
        The ``ltzoo.metrics.evaluate`` summary (plus "posthoc" when asked) with ``"checkpoint"``
        and ``"dataset"``.
    """
    from ltzoo.engine.builders import build_eval_loader
    from ltzoo.engine.data import build_datasets
    from ltzoo.engine.evaluation import evaluate_model, limit_test_set, resolve_group_split, write_json
    from ltzoo.metrics.groups import check_group_split
    from ltzoo.validation import check_float

    if logit_adjust_tau is not None:  # checked before anything is loaded
        logit_adjust_tau = check_float(logit_adjust_tau, "logit_adjust_tau (--logit-adjust-tau)", minimum=0.0)
    model, cfg, counts = load_for_eval(path, ema, device)
    if cfg is None and data is None:
        raise ValueError(f"{path} records no training recipe: say which test set to use (--data, --root)")
    cfg = cfg or TrainConfig(data=data)
    changes = {k: v for k, v in {"data": data, "data_root": data_root, "imb_ratio": imb_ratio,
                                 "data_args": data_args}.items() if v is not None}
    cfg = cfg.replace(**changes)
    _, test_set, name = build_datasets(cfg)
    loader = build_eval_loader(limit_test_set(test_set, max_samples), batch_size, cfg.num_workers)
    recorded = (getattr(model, "pretrained_cfg", None) or {}).get("groups")
    if groups is not None:
        split = check_group_split(groups, len(counts))
    elif recorded is not None:
        split = check_group_split(recorded, len(counts), "the recorded groups")
    else:
        split = resolve_group_split(cfg, test_set)
    summary = evaluate_model(model, loader, counts, split, logit_adjust_tau, progress)
    summary = {"checkpoint": str(path), "dataset": name, **summary}
    if out is not None:
        write_json(out, summary)
    if plot is not None:
        from ltzoo.engine.checkpoint import write_atomic
        from ltzoo.hub.cards import per_class_plot

        few = "n/a" if summary["few"] is None else f"{summary['few']:.1f}%"
        title = f"{Path(path).name} on {name}: top-1 {summary['top1']:.1f}%, few-shot {few}"
        write_atomic(plot, per_class_plot(summary["per_class"], counts, title))
    return summary
