"""``ltzoo demo``: the library's main job on embedded data, in about a minute on a laptop CPU.

Builds digits-LT (scikit-learn's digits, no download; imbalance ratio 20, training counts
113, 81, 58, 41, 29, 21, 15, 10, 7, 5, so with the ImageNet-LT thresholds class 0 is "many",
classes 1-5 "medium" and classes 6-9 "few"), trains the 0.24M-parameter ``small_cnn`` with three
recipes for three seeds, evaluates each on the balanced test split (629 images) and prints one
table of seed means:

* CE: plain cross-entropy, instance-uniform sampling;
* LA: logit-adjusted cross-entropy (Menon et al., tau = 1);
* BMLS+MS: balanced mixed-label sampler, mixup, mixed-singleton loss on an FC head (BMLS paper).

The images are resampled from 32x32 to 16x16 (the source digits are 8x8, nothing is lost)
so that a run takes seconds on one core.
"""
from __future__ import annotations

import time
from typing import Any, Sequence

from ltzoo.engine.config import TrainConfig

__all__ = ["RECIPES", "demo_config", "run_demo", "summarize_demo"]

RECIPES: dict[str, dict[str, Any]] = {
    "CE": {"loss": "ce"},
    "LA": {"loss": "logit_adjusted"},
    "BMLS+MS": {"head": "ms", "loss": "mixed_singleton", "sampler": "bmls", "mixer": "mixup",
                  "mixer_args": {"alpha": 1.0}},
}
KEYS = ("top1", "many", "medium", "few", "hmean", "gmean", "lowest")


def demo_config(epochs: int = 20, seed: int = 0, quick: bool = False, **changes: Any) -> TrainConfig:
    """The shared config of the demo runs (``quick`` halves the epochs, for smoke tests).

    Args:
        epochs: Training epochs per recipe.
        seed: Seed of model init, sampler, mixer and augmentation.
        quick: Use ``max(2, epochs // 2)`` epochs.
        **changes: Any other :class:`TrainConfig` field.
    """
    epochs = max(2, epochs // 2) if quick else epochs
    values = dict(model="small_cnn", data="digits", imb_ratio=20, data_args={"image_size": 16}, epochs=epochs,
                  batch_size=64, lr=0.1, momentum=0.9, weight_decay=5e-4, warmup_epochs=1, schedule="cosine",
                  eval_every=epochs, seed=seed, num_threads=1, progress=False, save_model=False)
    values.update(changes)
    return TrainConfig.from_dict(values)


def run_demo(epochs: int = 20, seeds: Sequence[int] = (0, 1, 2), quick: bool = False,
             recipes: Sequence[str] | None = None, print_table: bool = True, progress: bool | None = None,
             **changes: Any) -> list[dict[str, Any]]:
    """Train each recipe on digits-LT for every seed; print the table of seed-averaged metrics.

    Args:
        epochs: Training epochs per run.
        seeds: Seeds; the table shows means over them.
        quick: Halve the epochs.
        recipes: Names from :data:`RECIPES` (default all).
        print_table: Print the table (and the wall time).
        progress: tqdm bars over the runs (None: when stderr is a terminal).
        **changes: Other :class:`TrainConfig` fields for every run.

    Returns:
        One dict per (recipe, seed): ``{"method", "seed", "top1", "many", "medium", "few", "hmean",
        "gmean", "lowest", "per_class", "time_s"}`` (percentages).
    """
    from tqdm import tqdm

    from ltzoo.engine.data import build_datasets
    from ltzoo.engine.epoch import progress_enabled
    from ltzoo.recipes.supervised import train_supervised

    names = list(recipes or RECIPES)
    unknown = [n for n in names if n not in RECIPES]
    if unknown:
        raise ValueError(f"unknown demo recipes {unknown}; choose from {list(RECIPES)}")
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    train_set, test_set, _ = build_datasets(demo_config(epochs, int(seeds[0]), quick, **changes))
    rows: list[dict[str, Any]] = []
    start = time.perf_counter()
    runs = [(name, int(seed)) for name in names for seed in seeds]
    for name, seed in tqdm(runs, desc="demo runs", disable=not progress_enabled(progress)):
        cfg = demo_config(epochs, seed, quick, **{**RECIPES[name], **changes})
        t0 = time.perf_counter()
        metrics = train_supervised(cfg, train_set, test_set)["metrics"]
        rows.append({"method": name, "seed": seed, **{k: metrics[k] for k in KEYS},
                     "per_class": metrics["per_class"], "time_s": time.perf_counter() - t0})
    if print_table:
        from ltzoo.engine.evaluation import format_table

        counts = train_set.class_counts
        cfg0 = demo_config(epochs, 0, quick, **changes)
        print(f"digits-LT (imbalance {cfg0.imb_ratio:g}, train counts {counts}, test {len(test_set)} images), "
              f"small_cnn, {cfg0.epochs} epochs, mean over seeds {list(seeds)}; "
              "many > 100, few < 20 training images")
        print(format_table(summarize_demo(rows)))
        print(f"wall time {time.perf_counter() - start:.1f} s")
    return rows


def summarize_demo(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Seed-averaged metrics per method, in first-seen method order (None stays None)."""
    out = []
    for name in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == name]
        avg = {k: (None if any(r[k] is None for r in mine) else sum(r[k] for r in mine) / len(mine)) for k in KEYS}
        out.append({"method": name, **avg})
    return out
