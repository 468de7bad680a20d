"""DLSA vs the plain balanced-softmax classifier on digits-LT features of CE-trained small_cnn backbones.

A paired grid. For every imbalance ratio (10, 20), backbone schedule (4, 8, 15 epochs) and backbone
seed (0-3), a stratified 20% validation split is carved from the digits_lt training set (split
seed 0) and small_cnn is trained with plain cross-entropy on the rest (SGD, lr 0.05, momentum 0.9,
wd 5e-4, batch 64), so the validation features are unseen by the backbone. On its frozen features
``ltzoo.train.train_dlsa`` (same split) fits, for every head seed (0-4), the plain classifier (the
baseline) and each DLSA variant, selecting epochs on the validation split only. Test metrics
(629 images) are reported for both, and for the backbone's own cross-entropy classifier as a
reference; groups: many > 100, few < 20 training images.

The paired differences DLSA - plain are summarised per variant as the mean over backbones (each
backbone's mean over head seeds), its standard error across backbones and the one-sided 95%
t-bounds: ``lower95`` >= 0 would show DLSA above the plain classifier, ``upper95`` < 0 below it;
overall and per backbone schedule (``by_cnn_epochs``).

Every variant uses the authors' flow optimisation (class-uniform pairs, (n_max / n_c)^2 MLE weights
normalised over classes, lambda_lh 2, contrast_freeze, plain SGD lr 0.2, batch 1024, 50 epochs
chosen by pure validation clusters), depth 1, the cluster-aided classifier trained on every sample
reaching its level and the regular classifier on all samples, and sets explicitly: the classifier
inputs ("xzp": XZP / XZ with z the flow latent; "xp": XP / X, the features in place of z, which is
what the authors' released entry point computes, as it passes the features themselves as the
classifiers' "Z" input; the regular classifier is then the plain classifier itself) and the purity
form ("soft_ce", the authors', or "log1m", -log(1 - q.p)). "..._authors_split": cluster-aided
classifier on the filtered samples only, regular classifier on the unfiltered rest only;
"..._cluster_filter": only clusters with training purity >= 0.7 and size >= 10 pass.

    python -m benchmarks.bench_dlsa [--seeds 5] [--cnn-epochs 4 8 15] [--cnn-seeds 0 1 2 3]
                                    [--imb-ratios 10 20] [--threads 1]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from typing import Any

import numpy as np
import torch
from scipy import stats
from torch import nn

import ltzoo
from benchmarks._common import write_result
from ltzoo.data import create_dataset
from ltzoo.metrics import summarize
from ltzoo.train.dlsa import train_dlsa
from ltzoo.train.features import extract_features, stratified_split

METRICS = ("top1", "many", "medium", "few", "hmean", "lowest")
VARIANTS: dict[str, dict[str, Any]] = {  # explicit settings, so a result file does not depend on the defaults
    "xzp_soft_ce": {"aided_inputs": "XZP", "regular_inputs": "XZ", "purity": "soft_ce"},
    "xzp_log1m": {"aided_inputs": "XZP", "regular_inputs": "XZ", "purity": "log1m"},
    "xp_soft_ce": {"aided_inputs": "XP", "regular_inputs": "X", "purity": "soft_ce"},
    "xp_log1m": {"aided_inputs": "XP", "regular_inputs": "X", "purity": "log1m"},
    "xp_soft_ce_authors_split": {"aided_inputs": "XP", "regular_inputs": "X", "purity": "soft_ce",
                                 "aided_on": "passed", "plain_on": "rest"},
    "xp_soft_ce_cluster_filter": {"aided_inputs": "XP", "regular_inputs": "X", "purity": "soft_ce",
                                  "cluster_filter": True},
}
CNN = {"arch": "small_cnn", "width": 128, "optimizer": "SGD", "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4,
       "batch_size": 64, "loss": "cross-entropy"}
HEAD = {"epochs": 30, "flow_epochs": 50, "val_fraction": 0.2, "split_seed": 0, "batch_size": 128}


def train_ce(dataset, epochs: int, seed: int) -> nn.Module:
    """small_cnn trained with cross-entropy on ``dataset`` (a TensorImageDataset)."""
    torch.manual_seed(seed)
    model = ltzoo.create_model("small_cnn", num_classes=10, backbone_args={"width": CNN["width"]})
    opt = torch.optim.SGD(model.parameters(), lr=CNN["lr"], momentum=CNN["momentum"],
                          weight_decay=CNN["weight_decay"])
    x, y = dataset.images, torch.tensor(dataset.targets)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(y), generator=gen)
        for i in range(0, len(y), CNN["batch_size"]):
            idx = perm[i:i + CNN["batch_size"]]
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


def _pick(summary: dict[str, Any]) -> dict[str, float]:
    return {k: round(summary[k], 2) for k in METRICS}


def paired_summary(per_backbone: list[float]) -> dict[str, float]:
    """Mean of per-backbone mean differences, its standard error, one-sided 95% t-bounds
    (lower95 / upper95) and the two-sided 95% t-interval (ci95)."""
    d = np.asarray(per_backbone, dtype=float)
    mean = float(d.mean())
    se = float(d.std(ddof=1) / np.sqrt(d.size)) if d.size > 1 else float("nan")
    t = float(stats.t.ppf(0.95, d.size - 1)) if d.size > 1 else float("nan")
    t2 = float(stats.t.ppf(0.975, d.size - 1)) if d.size > 1 else float("nan")
    return {"mean": round(mean, 2), "se": round(se, 2), "lower95": round(mean - t * se, 2),
            "upper95": round(mean + t * se, 2), "ci95": [round(mean - t2 * se, 2), round(mean + t2 * se, 2)],
            "backbones_above": int((d > 0).sum()),
            "backbones_below": int((d < 0).sum()), "backbones": int(d.size)}


def _aggregate(cells: list[dict[str, Any]], name: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k in METRICS:
        per_backbone = [np.mean([r["dlsa"][k] - r["plain"][k] for r in c["variants"][name]]) for c in cells]
        out[k] = paired_summary(per_backbone)
    runs = [r for c in cells for r in c["variants"][name]]
    few = np.array([r["dlsa"]["few"] - r["plain"]["few"] for r in runs])
    out["few_runs"] = {"runs": int(few.size), "above": int((few > 0).sum()), "ties": int((few == 0).sum()),
                       "below": int((few < 0).sum()), "min": round(float(few.min()), 2),
                       "max": round(float(few.max()), 2)}
    out["by_cnn_epochs"] = {
        str(ep): {k: paired_summary([np.mean([r["dlsa"][k] - r["plain"][k] for r in c["variants"][name]])
                                     for c in cells if c["cnn_epochs"] == ep]) for k in ("few", "top1", "hmean")}
        for ep in sorted({c["cnn_epochs"] for c in cells})}
    out["dlsa_few_mean"] = round(float(np.mean([r["dlsa"]["few"] for r in runs])), 2)
    out["plain_few_mean"] = round(float(np.mean([r["plain"]["few"] for r in runs])), 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="head seeds 0..n-1 per backbone and variant")
    parser.add_argument("--cnn-epochs", type=int, nargs="+", default=[4, 8, 15])
    parser.add_argument("--cnn-seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--imb-ratios", type=float, nargs="+", default=[10, 20])
    parser.add_argument("--variants", nargs="+", default=["xzp_soft_ce", "xzp_log1m", "xp_soft_ce", "xp_log1m"],
                        choices=list(VARIANTS))
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (results depend on it)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    test_set = create_dataset("digits_lt", split="test")
    cells, data = [], {}
    start_all = time.perf_counter()
    for imb in args.imb_ratios:
        train_set = create_dataset("digits_lt", split="train", imb_ratio=imb, transform="none")
        data[str(imb)] = train_set.class_counts
        fit_part, _ = stratified_split(train_set.targets, HEAD["val_fraction"], HEAD["split_seed"])
        for cnn_epochs in args.cnn_epochs:
            for cnn_seed in args.cnn_seeds:
                start = time.perf_counter()
                model = train_ce(train_set.subset(fit_part), cnn_epochs, cnn_seed)
                cell: dict[str, Any] = {"imb_ratio": imb, "cnn_epochs": cnn_epochs, "cnn_seed": cnn_seed,
                                        "cnn_train_seconds": round(time.perf_counter() - start, 2)}
                with torch.no_grad():
                    xt, yt = extract_features(model, test_set, progress=False)
                    cell["ce_classifier"] = _pick(summarize(yt, model.get_classifier()(xt).argmax(1),
                                                            train_set.class_counts))
                cell["variants"] = {}
                with tempfile.TemporaryDirectory() as cache:
                    for name in args.variants:
                        runs = []
                        for seed in range(args.seeds):
                            _, rep = train_dlsa(model, train_set, test_set, val_fraction=HEAD["val_fraction"],
                                                seed=seed, split_seed=HEAD["split_seed"], epochs=HEAD["epochs"],
                                                flow_epochs=HEAD["flow_epochs"], batch_size=HEAD["batch_size"],
                                                candidates=[VARIANTS[name]], cache_dir=cache, progress=False)
                            runs.append({"seed": seed, "dlsa": _pick(rep["dlsa"]), "plain": _pick(rep["plain"]),
                                         "test_routing": [round(v, 3) for v in rep["test_routing"]]})
                        cell["variants"][name] = runs
                        few = np.mean([r["dlsa"]["few"] - r["plain"]["few"] for r in runs])
                        print(f"ratio {imb:g} | cnn {cnn_epochs:2d} ep seed {cnn_seed} | {name:14s} "
                              f"few delta {few:+.2f} (plain few {np.mean([r['plain']['few'] for r in runs]):.1f})",
                              flush=True)
                cells.append(cell)
    summary = {name: _aggregate(cells, name) for name in args.variants}
    payload = {
        "data": {"dataset": "digits_lt", "train_class_counts": data, "num_test": len(test_set),
                 "groups": "many > 100, medium 20-100, few < 20 training images"},
        "backbone": {**CNN, "epochs": args.cnn_epochs, "seeds": args.cnn_seeds,
                     "trained_on": "training set minus the validation split"},
        "head": {**HEAD, "head_seeds": list(range(args.seeds)),
                 "selection": "flow epoch: most pure validation clusters; classifiers: validation class-balanced CE"},
        "variants": {name: VARIANTS[name] for name in args.variants},
        "threads": args.threads,
        "seconds": round(time.perf_counter() - start_all, 1),
        "summary": summary,
        "ce_classifier_mean": {k: round(float(np.mean([c["ce_classifier"][k] for c in cells])), 2) for k in METRICS},
        "cells": cells,
    }
    path = write_result("dlsa_digits", payload)
    print(f"wrote {path}")
    for name, s in summary.items():
        print(f"{name:14s} few {s['dlsa_few_mean']:.2f} vs {s['plain_few_mean']:.2f}: delta {s['few']} | "
              f"top1 {s['top1']['mean']:+.2f} hmean {s['hmean']['mean']:+.2f}")


if __name__ == "__main__":
    main()
