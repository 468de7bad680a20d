"""Saving a BTM result as a pretrained model folder (weights, metrics block, the recipe that made it)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

__all__ = ["save_btm_model", "SUMMARY_KEYS"]

SUMMARY_KEYS = ("top1", "many", "medium", "few", "hmean", "gmean", "lowest")


def save_btm_model(result: Mapping[str, Any], folder: str | Path, stage1_recipe: Mapping[str, Any],
                   class_counts: Sequence[float], dataset_name: str) -> Path:
    """Write the post-trained merged model of :func:`~ltzoo.recipes.btm.train_btm` with ``save_pretrained``.

    Args:
        result: ``train_btm``'s return value.
        folder: The model folder to write.
        stage1_recipe: The stage-1 run's config dict (``TrainConfig.to_dict()``); ``ltzoo eval``
            rebuilds the test set from it.
        class_counts: Training images per class.
        dataset_name: Test-set name for the metrics block, e.g. "cifar10_lt_r100".

    Returns:
        The folder.
    """
    from ltzoo.hub import metrics_block
    from ltzoo.hub.save import save_pretrained

    report = result["report"]
    final = report.get("posttrained", report["merged"])
    save_pretrained(result["model"], folder, metrics=metrics_block(final, dataset_name, "test"),
                    per_class=final["per_class"], class_counts=list(class_counts),
                    extra_metrics={"stage1": {k: report["stage1"][k] for k in SUMMARY_KEYS}},
                    recipe={"stage1": dict(stage1_recipe), "btm": report["config"], "fc_stage": report["fc_stage"],
                            "posttrain": report.get("posttrain")})
    return Path(folder)
