"""Average the weights of compatible trained runs into one saved model (``ltzoo merge``; BTM's merge step)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ['merge_checkpoints', 'check_out_apart', 'evaluate_on_recorded_test_set']


def merge_checkpoints(paths: list[str], out: str | Path, weights: list[float] | None = None,
                      evaluate: bool = True, device: str = "cpu") -> dict[str, Any]:
    """Average the weights of compatible checkpoints and save the merge with ``save_pretrained``.

    Args:
        paths: Training checkpoints (``last.pt``), run folders or saved model folders.
        out: Folder for the merged model (``model.safetensors``, ``config.json``, card).
        weights: One weight per checkpoint (default uniform).
        evaluate: Measure the merge on the first checkpoint's recorded test set and store the
            metrics with it (otherwise the merged model is saved without metrics).
        device: Evaluation device.

    Returns:
        The evaluation summary (empty when ``evaluate`` is False).
    """
    from ltzoo.engine.eval_checkpoint import load_for_eval
    from ltzoo.hub import metrics_block
    from ltzoo.hub.save import save_pretrained
    from ltzoo.merge import merge_state_dicts

    if len(paths) < 2:
        raise ValueError(f"paths must name at least two checkpoints to merge, got {len(paths)}")
    check_out_apart(paths, out)
    loaded = [load_for_eval(p, device=device) for p in paths]
    model, cfg, counts = loaded[0]
    merged = merge_state_dicts([m.state_dict() for m, _, _ in loaded], weights)
    model.load_state_dict(merged)
    summary: dict[str, Any] = {}
    fields: dict[str, Any] = {"class_counts": counts,
                              "recipe": {"merge": "uniform" if weights is None else list(weights),
                                         "sources": [str(p) for p in paths]}}
    if evaluate and cfg is not None:
        summary = evaluate_on_recorded_test_set(model, cfg, counts)
        fields.update(metrics=metrics_block(summary, summary.pop("dataset"), "test"), per_class=summary["per_class"])
    save_pretrained(model, out, **fields)
    return summary


def check_out_apart(paths: list[str], out: str | Path) -> None:
    """Refuse an output folder that is, holds, or lies inside one of the inputs (it would overwrite them).

    Raises:
        ValueError: Naming ``out`` and the input it collides with.
    """
    target = Path(out).expanduser().resolve()
    for p in paths:
        src = Path(p).expanduser().resolve()
        if src == target or target in src.parents or (src.is_dir() and src in target.parents):
            raise ValueError(f"out {str(out)!r} would overwrite the input {str(p)!r} (the same folder, or one inside "
                             "the other); choose a separate folder for the merged model")


def evaluate_on_recorded_test_set(model: Any, cfg: Any, counts: list) -> dict[str, Any]:
    """The metrics of ``model`` on the test set its training config names, with that run's class groups."""
    from ltzoo.engine.builders import build_eval_loader
    from ltzoo.engine.data import build_datasets
    from ltzoo.engine.evaluation import evaluate_model, resolve_group_split

    _, test_set, name = build_datasets(cfg)
    loader = build_eval_loader(test_set, num_workers=cfg.num_workers)
    groups = resolve_group_split(cfg, test_set)
    return {"dataset": name, **evaluate_model(model, loader, counts, groups, None, False)}
