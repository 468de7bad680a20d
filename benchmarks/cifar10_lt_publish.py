"""Publish finished CIFAR-10-LT runs as pretrained ``resnet32.cifar10_lt_r100_<row>`` weights.

For each row, the run of the chosen schedule, seed and precision becomes ``<model-dir>/<arch.tag>/``
(``model.safetensors``, ``config.json`` and the generated ``README.md`` card with its per-class plot),
whose metrics block is what ``ltzoo eval`` measured on the saved model (the run's
``eval_metrics.json``), with the class counts, the schedule and the command that reproduces it, and
the paper's number beside ours. The row is also entered in ``ltzoo/hub/published.json``, so that
``ltzoo.create_model("resnet32.cifar10_lt_r100_<row>", pretrained=True)`` knows the name; the
weights load from the Hub (``$LTZOO_HUB_ORG``, default "ltzoo") or, offline, from the local copy.
A maintainer then uploads each folder with ``ltzoo push model_cards/<arch.tag> ltzoo/<arch.tag>``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MODEL_CARDS = ROOT / "model_cards"
DATASET = "cifar10_lt_r100"
MIXUP = {"title": "mixup: Beyond Empirical Risk Minimization", "url": "https://arxiv.org/abs/1710.09412"}
BMLS = {"title": "Balancing Mixed Labels: Mixup Meets Neural Collapse in Imbalanced Learning"}
BTM = {"title": "Reviving Undersampling for Long-tailed Learning", "url": "https://arxiv.org/abs/2401.16811"}
PAPERS: dict[str, dict[str, str] | None] = {
    "ce": None, "ce_mixup": MIXUP, "cbs_mixup": MIXUP,
    "la": {"title": "Long-tail learning via logit adjustment", "url": "https://arxiv.org/abs/2007.07314"},
    "etf_dr": {"title": "Inducing Neural Collapse in Imbalanced Learning: Do We Really Need a Learnable "
                        "Classifier at the End of Deep Neural Network?", "url": "https://arxiv.org/abs/2203.09081"},
    "bmls_fc": BMLS, "bmls_ms": BMLS, "bmls_ms_wetf": BMLS,
    "btm_ce_mixup": BTM, "btm_la": BTM,
}
_REGISTRY_FIELDS = ("arch", "tag", "num_classes", "head", "head_args", "model_args", "class_counts", "groups",
                    "metrics", "per_class", "extra_metrics", "recipe", "paper", "license", "description")


def tag_of(row: str) -> str:
    """The "tag" of a row's weights: ``cifar10_lt_r100_<row>``."""
    return f"{DATASET}_{row}"


def publish_row(row: str, work_dir: str | Path, schedule: str = "full", seed: int = 0, precision: str = "fp32",
                model_dir: str | Path = MODEL_CARDS, registry: str | Path | None = None) -> Path:
    """Write one row's model folder and registry entry from its finished run.

    Args:
        row: A row of ``benchmarks.cifar10_lt.ROWS`` or ``BTM_ROWS``.
        work_dir: The run folders' root.
        schedule, seed, precision: Which run.
        model_dir: Where ``<arch.tag>/`` goes (default the repository's ``model_cards/``).
        registry: The ``published.json`` to update (default the package's).

    Returns:
        The model folder.
    """
    import ltzoo
    from benchmarks.cifar10_lt import LABELS, PAPER_TOP1, SCHEDULES, run_dir
    from benchmarks.cifar10_lt_btm import BTM_ROWS
    from benchmarks.cifar10_lt_btm import LABELS as BTM_LABELS
    from ltzoo.files import write_bytes_atomic
    from ltzoo.hub import metrics_block
    from ltzoo.hub.configs import PRETRAINED, PretrainedConfig, register_pretrained, unregister_pretrained
    from ltzoo.hub.published import PUBLISHED_FILE, published_entries
    from ltzoo.hub.records import jsonable

    folder = run_dir(work_dir, schedule, row, seed, precision)
    if not (folder / "done.json").is_file():
        raise FileNotFoundError(f"{folder} is not a finished run (no done.json)")
    record = json.loads((folder / "done.json").read_text())
    measured = json.loads((folder / "eval_metrics.json").read_text())  # what `ltzoo eval` measured
    model = ltzoo.create_model(f"local-dir:{folder / 'model'}", pretrained=True)
    tag = tag_of(row)
    label = BTM_LABELS.get(row) or LABELS[row]
    epochs = SCHEDULES[schedule]["epochs"]
    recipe: dict[str, Any] = {
        "schedule": schedule, "epochs": epochs, "seed": seed, "precision": precision,
        "reproduce": f"python -m benchmarks.cifar10_lt run --schedule {schedule} --rows "
                     f"{BTM_ROWS[row]['stage1'] + ' ' if row in BTM_ROWS else ''}{row} --seeds {seed} "
                     f"--precision {precision}",
        "config": record["config"]}
    if record.get("machine"):
        recipe["trained_on"] = record["machine"]  # CPU / GPU and library versions of the training run
    extra: dict[str, Any] = {}
    if row in PAPER_TOP1:
        extra["paper"] = {"top1": PAPER_TOP1[row][0], "source": PAPER_TOP1[row][1]}
    if row in BTM_ROWS:
        extra["stage1"] = record["stage1_metrics"]
        extra.update({f"control_{name}": {k: v for k, v in m.items() if k != "seconds"}
                      for name, m in record["controls"].items()})
    description = (f"ResNet-32 trained on CIFAR-10-LT (imbalance 100) with {label}, the {schedule} schedule "
                   f"({epochs} epochs), seed {seed}, {precision}; ltzoo's CIFAR-10-LT benchmark row `{row}`.")
    out = Path(model_dir) / f"{model.backbone_name}.{tag}"
    fields = dict(tag=tag, metrics=metrics_block(measured, DATASET, "test"), per_class=measured["per_class"],
                  class_counts=record["class_counts"], groups=measured.get("groups"), extra_metrics=extra or None,
                  recipe=recipe, paper=PAPERS[row], description=description)
    name = f"{model.backbone_name}.{tag}"
    entry = {"arch": model.backbone_name, "num_classes": model.num_classes, "head": model.model_args["head"],
             "head_args": model.model_args["head_args"], **{k: v for k, v in fields.items() if v is not None}}
    cfg = PretrainedConfig(**entry)  # validated before anything is written
    if name in PRETRAINED:
        unregister_pretrained(name)
    register_pretrained(name, cfg)  # registered first, so the card shows the by-name usage line
    path = Path(registry) if registry is not None else PUBLISHED_FILE
    entries = published_entries(path)
    entries[name] = {k: v for k, v in jsonable(entry, "entry").items() if k in _REGISTRY_FIELDS}
    write_bytes_atomic(path, (json.dumps(dict(sorted(entries.items())), indent=1) + "\n").encode())
    ltzoo.save_pretrained(model, out, **fields)
    return out
