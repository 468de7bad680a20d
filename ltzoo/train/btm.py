"""BTM (Balanced Training and Merging, Yu, Du & Wu, "Reviving Undersampling for Long-tailed
Learning", Algorithm 1) on top of a stage-1 long-tailed model.

1. Draw N_D balanced few-shot subsets (N_C images per class, seeded; tail classes keep all).
2. Fine-tune a copy of the whole stage-1 model on each subset (SGD, cosine learning rate).
3. Merge the N_D models by averaging all their weights, BatchNorm buffers included
   (optionally re-estimating BatchNorm statistics on the training data afterwards).
4. Post-train the classifier on the frozen merged backbone with class-aware sampling.

Every model along the way (stage 1, each fine-tuned one, the merge, the post-trained one) is
evaluated; the report holds top-1, many/medium/few, H-mean, G-mean and lowest recall of each.
Each fine-tuned model is saved (safetensors) in ``output_dir`` as soon as it is done, so an
interrupted run resumes at the next subset. Under torchrun the subsets are shared out between
the processes and the fine-tuned weights gathered, so every process merges the same models.
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ltzoo.distributed import rank_and_world_size
from ltzoo.merge import balanced_subsets, merge_state_dicts, recalibrate_batchnorm
from ltzoo.train import builders as B
from ltzoo.train.decoupled import retrain_classifier, without_augmentation
from ltzoo.train.distributed import gather_objects, init_distributed, is_main_process
from ltzoo.train.epoch import train_one_epoch
from ltzoo.train.evaluation import format_table, write_json
from ltzoo.train.objective import TrainForward
from ltzoo.train.schedule import build_scheduler

__all__ = ["BTMConfig", "train_btm", "finetune_on_subset"]


@dataclass
class BTMConfig:
    """Settings of BTM (paper defaults: N_D = 10, N_C = 10, 30 epochs, cosine lr, wd 5e-4).

    Args:
        num_subsets: N_D, balanced subsets and fine-tuned models.
        per_class: N_C, images per class in a subset.
        finetune_epochs, finetune_lr, weight_decay, momentum, batch_size: Fine-tuning SGD.
        posttrain_epochs, posttrain_lr: Classifier post-training (class-aware sampling).
        recalibrate_bn: Re-estimate BatchNorm statistics of the merge on the training data
            (the authors do not; off by default).
        loss: Fine-tuning loss (registered name).
        seed: Seeds the subsets, the fine-tuning and the post-training.
    """

    num_subsets: int = 10
    per_class: int = 10
    finetune_epochs: int = 30
    finetune_lr: float = 5e-3
    weight_decay: float = 5e-4
    momentum: float = 0.9
    batch_size: int = 128
    posttrain_epochs: int = 30
    posttrain_lr: float = 5e-3
    recalibrate_bn: bool = False
    loss: str = "ce"
    seed: int = 0
    group_ranges: dict[str, Sequence[int]] | None = field(default=None)

    def __post_init__(self) -> None:
        for name in ("num_subsets", "per_class", "finetune_epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if isinstance(self.posttrain_epochs, bool) or not isinstance(self.posttrain_epochs, int) or self.posttrain_epochs < 0:
            raise ValueError(f"posttrain_epochs must be an integer >= 0, got {self.posttrain_epochs!r}")
        for name in ("finetune_lr", "posttrain_lr"):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")


class _LabeledSubset(torch.utils.data.Subset):
    """A ``Subset`` that keeps the ``targets`` of its items (samplers read them)."""

    def __init__(self, dataset: Any, indices: np.ndarray) -> None:
        super().__init__(dataset, indices.tolist())
        self.targets = B.dataset_labels(dataset)[indices].tolist()


def finetune_on_subset(model: nn.Module, train_set: Any, indices: np.ndarray, cfg: BTMConfig, seed: int,
                       progress: bool = False) -> nn.Module:
    """A copy of ``model`` fine-tuned as a whole on ``train_set[indices]`` (BTM Algorithm 1, step 2).

    Args:
        model: The stage-1 model (left unchanged).
        train_set: The full training set (with augmentation).
        indices: The balanced subset.
        cfg: Fine-tuning settings.
        seed: Seeds the sampler, loader and any random layer.

    Returns:
        The fine-tuned copy, in eval mode.
    """
    tuned = copy.deepcopy(model)
    device = next(tuned.parameters()).device
    subset = _LabeledSubset(train_set, np.asarray(indices))
    k = int(tuned.num_classes)
    labels = np.asarray(subset.targets)
    sampler = B.build_sampler("random", labels, k, seed, {"num_replicas": 1, "rank": 0})
    loader = B.build_train_loader(subset, sampler, min(cfg.batch_size, len(subset)))
    loss_fn = B.build_loss(cfg.loss, tuned, np.bincount(labels, minlength=k).tolist()).to(device)
    optimizer = B.build_optimizer(tuned.parameters(), cfg.finetune_lr, cfg.momentum, cfg.weight_decay)
    scheduler = build_scheduler(optimizer, "cosine", cfg.finetune_epochs, len(loader))
    forward = TrainForward(tuned)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for epoch in range(cfg.finetune_epochs):
            sampler.set_epoch(epoch)
            loader.generator = B.epoch_generator(seed, epoch)
            train_one_epoch(forward, loss_fn, loader, optimizer, scheduler, device, progress=progress,
                            desc=f"fine-tune epoch {epoch + 1}", reduce=False)  # one rank's own subset
    return tuned.eval()


def _evaluate(model: nn.Module, test_set: Any, class_counts: Sequence[float], cfg: BTMConfig) -> dict[str, Any]:
    from ltzoo.metrics import evaluate

    loader = B.build_eval_loader(test_set)
    ranges = {k: tuple(v) for k, v in cfg.group_ranges.items()} if cfg.group_ranges else None
    out = evaluate(model, loader, class_counts, ranges=ranges, progress=False)
    return {k: out[k] for k in ("top1", "many", "medium", "few", "hmean", "gmean", "lowest", "per_class")}


def _finetuned_states(model: nn.Module, train_set: Any, subsets: list[np.ndarray], cfg: BTMConfig,
                      out: Path | None, progress: bool) -> list[dict[str, torch.Tensor]]:
    """Fine-tune on this process's share of the subsets (resuming from saved ones); gather all."""
    from ltzoo.hub.files import read_safetensors, write_safetensors

    rank, world = rank_and_world_size()

    def path(d: int) -> Path | None:
        return out / f"finetuned_{d:02d}.safetensors" if out is not None else None

    mine = {}
    for d in tqdm(range(rank, len(subsets), world), desc="BTM fine-tuning", disable=not progress):
        if path(d) is not None and path(d).is_file():
            mine[d] = read_safetensors(path(d))
            continue
        tuned = finetune_on_subset(model, train_set, subsets[d], cfg, seed=cfg.seed * 1000 + d)
        mine[d] = {k: v.detach().cpu() for k, v in tuned.state_dict().items()}
        if path(d) is not None and rank == 0:
            write_safetensors(mine[d], path(d))  # saved as soon as done: a restart resumes here
    gathered = {}
    for part in gather_objects(mine):
        gathered.update(part)
    if out is not None and rank == 0:  # only rank 0 writes: the other ranks' models too
        for d, state in gathered.items():
            if not path(d).is_file():
                write_safetensors(state, path(d))
    return [gathered[d] for d in range(len(subsets))]


def train_btm(model: nn.Module, train_set: Any, test_set: Any, class_counts: Sequence[float] | None = None,
              cfg: BTMConfig | None = None, output_dir: str | Path | None = None,
              progress: bool = True) -> dict[str, Any]:
    """Run BTM from a stage-1 model and report every stage.

    Args:
        model: The stage-1 :class:`~ltzoo.models.LTModel` (not modified).
        train_set: The long-tailed training set (with augmentation; ``targets``).
        test_set: The test set.
        class_counts: Training counts (default: the histogram of ``train_set.targets``).
        cfg: BTM settings (default :class:`BTMConfig`).
        output_dir: Where fine-tuned weights and ``btm_report.json`` go (rank 0 writes); None keeps
            nothing on disk (no resume).
        progress: tqdm bars.

    Returns:
        ``{"report": {"stage1": ..., "finetuned": [...], "merged": ..., "posttrained": ...},
        "model": the post-trained merged model, "merged_state": the merged state dict}``.
    """
    cfg = cfg or BTMConfig()
    init_distributed()
    labels = B.dataset_labels(train_set)
    k = int(model.num_classes)
    counts = B.check_counts(class_counts if class_counts is not None else np.bincount(labels, minlength=k), k)
    out = Path(output_dir) if output_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    subsets = balanced_subsets(labels, cfg.num_subsets, cfg.per_class, seed=cfg.seed, num_classes=k)  # step 1
    report: dict[str, Any] = {"config": asdict(cfg), "class_counts": counts, "stage1": _evaluate(model, test_set, counts, cfg)}
    states = _finetuned_states(model, train_set, subsets, cfg, out, progress)  # step 2
    probe = copy.deepcopy(model)
    report["finetuned"] = []
    for state in states:
        probe.load_state_dict(state)
        report["finetuned"].append(_evaluate(probe, test_set, counts, cfg))
    merged_state = merge_state_dicts(states)  # step 3
    merged = copy.deepcopy(model)
    merged.load_state_dict(merged_state)
    if cfg.recalibrate_bn:
        loader = B.build_eval_loader(without_augmentation(train_set, test_set))
        recalibrate_batchnorm(merged, loader, device=next(merged.parameters()).device)
    report["merged"] = _evaluate(merged.eval(), test_set, counts, cfg)
    if cfg.posttrain_epochs > 0:  # step 4
        retrain_classifier(merged, without_augmentation(train_set, test_set), sampler="class_aware",
                           epochs=cfg.posttrain_epochs, lr=cfg.posttrain_lr, weight_decay=cfg.weight_decay,
                           class_counts=counts, seed=cfg.seed, progress=progress)
        report["posttrained"] = _evaluate(merged, test_set, counts, cfg)
    if out is not None and is_main_process():
        write_json(out / "btm_report.json", report)
    return {"report": report, "model": merged, "merged_state": merged_state}


def report_table(report: dict[str, Any]) -> str:
    """One row per stage of a BTM report (fine-tuned models averaged)."""
    rows = [{"model": "stage 1", **report["stage1"]}]
    tuned = report["finetuned"]
    keys = ("top1", "hmean", "gmean", "lowest")
    rows.append({"model": f"fine-tuned (mean of {len(tuned)})",
                 **{k: float(np.mean([t[k] for t in tuned])) for k in keys}})
    rows.append({"model": "merged", **report["merged"]})
    if "posttrained" in report:
        rows.append({"model": "merged + post-trained", **report["posttrained"]})
    return format_table(rows, name_key="model")
