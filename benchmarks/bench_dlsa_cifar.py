"""DLSA vs the plain balanced-softmax classifier on CIFAR-10-LT features of a CE-trained ResNet-32.

A larger test set than digits-LT (10,000 balanced test images, 3,000 in the few-shot group), so
single-run differences are far less noisy. CIFAR-10-LT (imbalance ratio 100, 12,406 training images
from the shared JPEG copy); a stratified 20% validation split is carved from it (split seed 0) and
ResNet-32 is trained with plain cross-entropy on the rest on the CPU schedule (30 epochs, SGD lr 0.1,
momentum 0.9, wd 2e-4, batch 128, 5 warm-up epochs, lr x0.1 at epoch 24 and x0.01 at 27, the CIFAR
augmentation, random sampler, no mixing, seed 0) through ``ltzoo.train.train_supervised``
(resumable: the run continues from ``--work-dir``). On its frozen 64-d features
``ltzoo.train.train_dlsa`` (same split) fits, for every head seed, the plain classifier and each
DLSA variant (see benchmarks/bench_dlsa.py: classifier inputs XZP / XZ or XP / X, purity soft_ce or
log1m, all with the authors' flow optimisation); epochs are selected on the validation split only. Groups: many > 1500, medium 200-1500, few < 200 training
images (3 / 4 / 3 classes, the same as the class-index groups [0, 2], [3, 6], [7, 9]).

    LTZOO_CIFAR10_JPEG=/path/to/cifar10 python -m benchmarks.bench_dlsa_cifar [--epochs 30]
        [--head-seeds 5] [--variants xzp_soft_ce xp_soft_ce ...] [--work-dir runs/bench_dlsa_cifar_e30]
        [--threads 2] [--backbone-only]
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks._common import write_result
from benchmarks.bench_dlsa import METRICS, VARIANTS, paired_summary
from ltzoo.data import create_dataset
from ltzoo.data.transforms import build_transform
from ltzoo.metrics import summarize
from ltzoo.train import train_supervised
from ltzoo.train.dlsa import train_dlsa
from ltzoo.train.features import extract_features, stratified_split

HEAD = {"epochs": 30, "flow_epochs": 50, "val_fraction": 0.2, "split_seed": 0, "batch_size": 256}
GROUPS = {"many_threshold": 1500, "few_threshold": 200}  # 3 / 4 / 3 classes at ratio 100 (5000 ... 50 images)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=os.environ.get("LTZOO_CIFAR10_JPEG"), help="CIFAR-10 JPEG tree")
    parser.add_argument("--imb-ratio", type=float, default=100)
    parser.add_argument("--epochs", type=int, default=30, help="backbone epochs")
    parser.add_argument("--head-seeds", type=int, default=5)
    parser.add_argument("--work-dir", default=None,
                        help="backbone run and feature caches (default runs/bench_dlsa_cifar_e<epochs>)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--variants", nargs="+", default=["xzp_soft_ce", "xzp_log1m", "xp_soft_ce", "xp_log1m"],
                        choices=list(VARIANTS))
    parser.add_argument("--backbone-only", action="store_true", help="train (or resume) the backbone, then stop")
    args = parser.parse_args()
    if not args.root:
        parser.error("--root (or LTZOO_CIFAR10_JPEG) must name the CIFAR-10 JPEG tree")
    torch.set_num_threads(args.threads)
    work = Path(args.work_dir or f"runs/bench_dlsa_cifar_e{args.epochs}")
    train_set = create_dataset("imagefolder_lt", root=args.root, imb_ratio=args.imb_ratio, transform="cifar")
    test_set = create_dataset("imagefolder_lt", root=args.root, split="test", transform="cifar")
    fit_part, _ = stratified_split(train_set.targets, HEAD["val_fraction"], HEAD["split_seed"])
    cfg = {"model": "resnet32", "head": "fc", "loss": "ce", "num_classes": 10, "epochs": args.epochs,
           "batch_size": 128, "lr": 0.1, "momentum": 0.9, "weight_decay": 2e-4, "warmup_epochs": 5,
           "schedule": "step", "milestones": [round(args.epochs * 0.8), round(args.epochs * 0.9)], "lr_gamma": 0.1,
           "sampler": "random", "mixer": None, "eval_every": args.epochs, "seed": 0, "num_threads": args.threads,
           "output_dir": str(work / "backbone"), "data": "cifar10", "imb_ratio": args.imb_ratio}
    start = time.perf_counter()
    run = train_supervised(cfg, train_set.subset(fit_part), test_set, class_counts=train_set.class_counts,
                           resume=True)
    backbone_s = time.perf_counter() - start
    if args.backbone_only:
        print(f"backbone done: {run['epochs_done']} epochs in {backbone_s:.0f} s")
        return
    model = run["model"].eval()
    eval_train = train_set.subset(np.arange(len(train_set)), transform=build_transform("cifar", train=False))
    runs: dict[str, list] = {name: [] for name in args.variants}
    start = time.perf_counter()
    for seed in range(args.head_seeds):
        for name in args.variants:
            _, rep = train_dlsa(model, eval_train, test_set, val_fraction=HEAD["val_fraction"], seed=seed,
                                split_seed=HEAD["split_seed"], epochs=HEAD["epochs"], flow_epochs=HEAD["flow_epochs"],
                                batch_size=HEAD["batch_size"], cache_dir=work / "features", progress=False,
                                groups=GROUPS, candidates=[VARIANTS[name]])
            runs[name].append({"seed": seed, "dlsa": {k: round(rep["dlsa"][k], 2) for k in METRICS},
                               "plain": {k: round(rep["plain"][k], 2) for k in METRICS},
                               "test_routing": [round(v, 3) for v in rep["test_routing"]],
                               "flow_epoch": rep["selected"]["flow_epoch"],
                               "flow_pure_clusters": rep["flow_pure_clusters"]})
            r = runs[name][-1]
            print(f"head seed {seed} {name:8s}: few {r['dlsa']['few']:.2f} vs {r['plain']['few']:.2f}, "
                  f"top1 {r['dlsa']['top1']:.2f} vs {r['plain']['top1']:.2f}, flow epoch {r['flow_epoch']}", flush=True)
    xt, yt = extract_features(model, test_set, cache_path=work / "features" / "test.safetensors", progress=False)
    with torch.no_grad():
        ce = summarize(yt, model.get_classifier()(xt).argmax(1), train_set.class_counts, **GROUPS)

    def summary(rs: list) -> dict:
        return {k: {**{n.replace("backbones", "seeds"): v  # one backbone: the spread is over head seeds
                       for n, v in paired_summary([r["dlsa"][k] - r["plain"][k] for r in rs]).items()},
                    "dlsa_mean": round(float(np.mean([r["dlsa"][k] for r in rs])), 2),
                    "plain_mean": round(float(np.mean([r["plain"][k] for r in rs])), 2)} for k in METRICS}

    payload = {
        "data": {"dataset": "CIFAR-10-LT (shared JPEG copy)", "imb_ratio": args.imb_ratio,
                 "train_class_counts": train_set.class_counts, "num_test": len(test_set),
                 "groups": "many > 1500, medium 200-1500, few < 200 training images (3 / 4 / 3 classes)"},
        "backbone": {**{k: cfg[k] for k in ("model", "epochs", "batch_size", "lr", "momentum", "weight_decay",
                                            "warmup_epochs", "schedule", "milestones", "lr_gamma", "sampler",
                                            "seed")}, "loss": "ce", "mixer": None,
                     "trained_on": "training set minus the validation split",
                     "seconds_this_invocation": round(backbone_s, 1),  # training, or only the final evaluation on resume
                     "epochs_run": run["epochs_done"],
                     "ce_classifier": {k: round(ce[k], 2) for k in METRICS}},
        "head": {**HEAD, "head_seeds": list(range(args.head_seeds)), "variants": {n: VARIANTS[n] for n in args.variants},
                 "selection": "flow epoch: most pure validation clusters; classifiers: validation class-balanced CE",
                 "seconds": round(time.perf_counter() - start, 1)},
        "threads": args.threads,
        "summary": {name: summary(rs) for name, rs in runs.items()},
        "runs": runs,
    }
    path = write_result(f"dlsa_cifar10_lt_e{args.epochs}", payload)
    print(f"wrote {path}")
    for name in args.variants:
        for k in ("top1", "few", "hmean"):
            print(name, k, payload["summary"][name][k])


if __name__ == "__main__":
    main()
