"""BTM on digits-LT against its stage-1 model and against classifier retraining (cRT) alone.

Stage 1: small_cnn with cross-entropy (the demo's digits-LT, imbalance 20, 10 epochs). Then
(a) cRT alone: the stage-1 classifier retrained on the frozen backbone with class-aware
sampling, and (b) BTM: 4 balanced subsets of 10 images per class, 20 fine-tuning epochs each,
merge, then the same classifier post-training. The baseline measured in the same run is (a),
so the table separates what merging adds from what the post-training alone gives.

    python -m benchmarks.bench_btm
"""
from __future__ import annotations

import copy
import time

import torch

from benchmarks._common import write_result
from ltzoo.metrics import evaluate
from ltzoo.train.btm import BTMConfig, train_btm
from ltzoo.train.builders import build_eval_loader
from ltzoo.train.data import build_datasets
from ltzoo.train.decoupled import retrain_classifier, without_augmentation
from ltzoo.train.demo import demo_config
from ltzoo.train.supervised import train_supervised

KEYS = ("top1", "many", "medium", "few", "hmean", "gmean", "lowest")
BTM = dict(num_subsets=4, per_class=10, finetune_epochs=20, finetune_lr=0.02, posttrain_epochs=20,
           posttrain_lr=0.1, batch_size=32)


def _metrics(model, test, counts):
    out = evaluate(model, build_eval_loader(test), counts, progress=False)
    return {k: out[k] for k in KEYS}


if __name__ == "__main__":
    torch.set_num_threads(1)
    runs = []
    for seed in (0, 1, 2):
        start = time.perf_counter()
        cfg = demo_config(epochs=10, seed=seed)
        train, test, _ = build_datasets(cfg)
        stage1 = train_supervised(cfg, train, test)["model"]
        counts = train.class_counts
        crt = retrain_classifier(copy.deepcopy(stage1), without_augmentation(train, test), sampler="class_aware",
                                 epochs=BTM["posttrain_epochs"], lr=BTM["posttrain_lr"], weight_decay=5e-4,
                                 class_counts=counts, seed=seed)
        report = train_btm(stage1, train, test, counts, BTMConfig(seed=seed, **BTM), progress=False)["report"]
        runs.append({"seed": seed, "stage1": {k: report["stage1"][k] for k in KEYS},
                     "crt_only": _metrics(crt, test, counts),
                     "btm_merged": {k: report["merged"][k] for k in KEYS},
                     "btm_posttrained": {k: report["posttrained"][k] for k in KEYS},
                     "seconds": time.perf_counter() - start})
        print(runs[-1], flush=True)
    mean = {stage: {k: sum(r[stage][k] for r in runs) / len(runs) for k in ("top1", "few", "hmean", "gmean", "lowest")}
            for stage in ("stage1", "crt_only", "btm_merged", "btm_posttrained")}
    path = write_result("btm_digits", {
        "setup": {"data": "digits_lt, imbalance 20, 16x16", "stage1": "small_cnn, CE, 10 epochs", "btm": BTM,
                  "crt_only": "class-aware classifier retraining of stage 1, same epochs and lr as BTM's post-training"},
        "baseline": "crt_only",
        "means": mean,
        "hmean_gain_over_crt": mean["btm_posttrained"]["hmean"] - mean["crt_only"]["hmean"],
        "runs": runs,
    })
    print(mean)
    print(f"wrote {path}")
