"""DLSA vs the plain balanced-softmax classifier on digits-LT features of a CE-trained small_cnn.

digits_lt (imbalance ratio 10: 457 training images, counts 113..11; 629 test images). A stratified
20% validation split is carved from the training set (split seed 0); small_cnn is trained with
plain cross-entropy on the rest only (SGD, lr 0.05, momentum 0.9, wd 5e-4, batch 64, seed 0), so the
validation features are unseen by the backbone. Then ``ltzoo.train.train_dlsa`` (same split) fits,
for every head seed, the plain classifier (baseline) and DLSA variants, selecting epochs on the
validation split only; test metrics are reported for both (top1, many/medium/few, hmean, gmean,
lowest; many > 100, few < 20 training images: 1 / 6 / 3 classes).

Variants: "default" (depth 1, cluster-aided classifier trained on every sample reaching its level,
the plain classifier as the last level), "depth2", and "authors" (cluster-aided classifier trained
on the filtered samples only, last-level classifier on the unfiltered rest only).

    python -m benchmarks.bench_dlsa [--seeds 5] [--cnn-epochs 8 15] [--threads 1]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from typing import Any

import numpy as np
import torch
from torch import nn

import ltzoo
from benchmarks._common import write_result
from ltzoo.data import create_dataset
from ltzoo.train.dlsa import train_dlsa
from ltzoo.train.features import stratified_split

METRICS = ("top1", "many", "medium", "few", "hmean", "gmean", "lowest")
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "depth2": {"depth": 2},
    "authors": {"aided_on": "passed", "plain_on": "rest"},
}
CNN = {"arch": "small_cnn", "width": 128, "optimizer": "SGD", "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4,
       "batch_size": 64, "loss": "cross-entropy", "seed": 0}
HEAD = {"epochs": 30, "flow_epochs": 15, "val_fraction": 0.2, "split_seed": 0, "batch_size": 128}


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


def _aggregate(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for who in ("dlsa", "plain"):
        out[who] = {k: {"mean": round(float(np.mean([r[who][k] for r in runs])), 2),
                        "std": round(float(np.std([r[who][k] for r in runs])), 2)} for k in METRICS}
    few = np.array([r["dlsa"]["few"] - r["plain"]["few"] for r in runs])
    out["few_delta"] = {"mean": round(float(few.mean()), 2), "min": round(float(few.min()), 2),
                        "max": round(float(few.max()), 2), "wins": int((few > 0).sum()),
                        "ties": int((few == 0).sum()), "losses": int((few < 0).sum())}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="head seeds 0..n-1 per backbone and variant")
    parser.add_argument("--cnn-epochs", type=int, nargs="+", default=[8, 15], help="one backbone per value")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (results depend on it)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    train_set = create_dataset("digits_lt", split="train", imb_ratio=10, transform="none")
    test_set = create_dataset("digits_lt", split="test")
    fit_part, _ = stratified_split(train_set.targets, HEAD["val_fraction"], HEAD["split_seed"])
    backbones = []
    for cnn_epochs in args.cnn_epochs:
        start = time.perf_counter()
        model = train_ce(train_set.subset(fit_part), cnn_epochs, CNN["seed"])
        cnn_s = time.perf_counter() - start
        variants = {}
        with tempfile.TemporaryDirectory() as cache:
            for name, cand in VARIANTS.items():
                runs = []
                for seed in range(args.seeds):
                    start = time.perf_counter()
                    _, rep = train_dlsa(model, train_set, test_set, val_fraction=HEAD["val_fraction"], seed=seed,
                                        split_seed=HEAD["split_seed"], epochs=HEAD["epochs"],
                                        flow_epochs=HEAD["flow_epochs"], batch_size=HEAD["batch_size"],
                                        candidates=[cand], cache_dir=cache, progress=False)
                    runs.append({"seed": seed, "dlsa": _pick(rep["dlsa"]), "plain": _pick(rep["plain"]),
                                 "val_mean_recall": rep["val"], "selected": rep["selected"],
                                 "train_routing": rep["train_routing"], "test_routing": rep["test_routing"],
                                 "seconds": round(time.perf_counter() - start, 2)})
                    print(f"cnn {cnn_epochs} ep | {name:8s} seed {seed}: few dlsa {runs[-1]['dlsa']['few']:.1f} "
                          f"plain {runs[-1]['plain']['few']:.1f} | top1 {runs[-1]['dlsa']['top1']:.1f} "
                          f"vs {runs[-1]['plain']['top1']:.1f}", flush=True)
                variants[name] = {"candidate": cand, "summary": _aggregate(runs), "runs": runs}
        backbones.append({"cnn_epochs": cnn_epochs, "cnn_train_seconds": round(cnn_s, 2), "variants": variants})
    payload = {
        "data": {"dataset": "digits_lt", "imb_ratio": 10, "train_class_counts": train_set.class_counts,
                 "num_test": len(test_set), "groups": "many > 100, medium 20-100, few < 20 training images"},
        "backbone": {**CNN, "trained_on": "training set minus the validation split"},
        "head": {**HEAD, "head_seeds": list(range(args.seeds)), "selection": "validation class-balanced CE"},
        "threads": args.threads,
        "backbones": backbones,
    }
    path = write_result("dlsa_digits", payload)
    print(f"wrote {path}")
    for b in backbones:
        for name, v in b["variants"].items():
            s = v["summary"]
            print(f"cnn {b['cnn_epochs']} ep {name:8s} few dlsa {s['dlsa']['few']['mean']:.1f} plain "
                  f"{s['plain']['few']['mean']:.1f} delta {s['few_delta']}")


if __name__ == "__main__":
    main()
