"""BTM (Balanced Training and Merging, Yu, Du & Wu, "Reviving Undersampling for Long-tailed
Learning", Algorithm 1 and Sec. 3.3) on top of a stage-1 long-tailed model.

0. "FC" stage (Sec. 3.3, :mod:`ltzoo.recipes.btm_fc_stage`): when the stage-1 classifier already
   handles imbalance (``fc_stage="auto"``), first train only the classifier with plain CE on
   all the imbalanced data.
1. Draw N_D balanced few-shot subsets (N_C images per class, seeded; tail classes keep all).
2. Fine-tune a copy of the whole model on each subset (SGD, cosine learning rate, the stage-1
   run's mixer; every image of the subset is used each epoch).
3. Merge the N_D models by averaging all their weights, BatchNorm buffers included
   (optionally re-estimating BatchNorm statistics on the training data afterwards).
4. Post-train the merged model's own classifier on its frozen backbone, MiSLAS-style (the
   authors' stage 2, :mod:`ltzoo.recipes.posttrain`: shifted BatchNorm statistics, label-aware
   smoothing, learnable weight scaling, class-balanced batches); ``posttrain="cached_crt"`` is
   the fast option on cached features.

Every model along the way (stage 1, after the FC stage, each fine-tuned one, the merge, the
post-trained one) is evaluated; the report holds top-1, many/medium/few, H-mean, G-mean and
lowest recall of each, and says whether the FC stage ran and with what. Each fine-tuned model
is saved (safetensors) in ``output_dir`` as soon as it is done, so an interrupted run resumes
at the next subset. Under torchrun the subsets are shared out between the processes and the
fine-tuned weights gathered, so every process merges the same models.
"""
from __future__ import annotations

import copy
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ltzoo.distributed import rank_and_world_size
from ltzoo.engine import builders as B
from ltzoo.engine.distributed import gather_objects, init_distributed, is_main_process
from ltzoo.engine.epoch import train_one_epoch
from ltzoo.engine.evaluation import format_table, write_json
from ltzoo.engine.even_batches import even_batch_loader
from ltzoo.engine.objective import TrainForward, is_mixed_label_loss, mixer_extras
from ltzoo.engine.schedule import build_scheduler
from ltzoo.merge import balanced_subsets, merge_state_dicts, recalibrate_batchnorm
from ltzoo.recipes.btm_config import STAGE1, BTMConfig
from ltzoo.recipes.btm_fc_stage import fc_stage_reasons, run_fc_stage
from ltzoo.recipes.crt import retrain_classifier, without_augmentation
from ltzoo.recipes.posttrain import posttrain_classifier

__all__ = ["BTMConfig", "train_btm", "finetune_on_subset", "finetune_steps", "resolve_mixer", "posttrain_model",
           "report_table", "describe_fc_stage"]


class _LabeledSubset(torch.utils.data.Subset):
    """A ``Subset`` that keeps the ``targets`` of its items (samplers read them)."""

    def __init__(self, dataset: Any, indices: np.ndarray) -> None:
        super().__init__(dataset, indices.tolist())
        self.targets = B.dataset_labels(dataset)[indices].tolist()


def resolve_mixer(cfg: BTMConfig, recipe: Mapping[str, Any] | None) -> tuple[str | None, dict[str, Any]]:
    """The fine-tuning mixer and its arguments: the stage-1 run's when ``cfg.mixer == "stage1"``.

    Args:
        cfg: BTM settings.
        recipe: The stage-1 run's config dict (``mixer``, ``mixer_args``), or None (no mixer known).

    Returns:
        ``(mixer name or None, mixer arguments)``.
    """
    if cfg.mixer == STAGE1:
        recipe = dict(recipe or {})
        name = recipe.get("mixer")
        args = cfg.mixer_args if cfg.mixer_args is not None else dict(recipe.get("mixer_args") or {})
        return name, dict(args) if name else {}
    return cfg.mixer, dict(cfg.mixer_args or {})


def finetune_steps(num_items: int, cfg: BTMConfig) -> int:
    """SGD steps of one balanced fine-tune: ``finetune_epochs * ceil(num_items / batch_size)``."""
    return cfg.finetune_epochs * math.ceil(num_items / cfg.batch_size)


def finetune_on_subset(model: nn.Module, train_set: Any, indices: np.ndarray, cfg: BTMConfig, seed: int,
                       progress: bool = False, mixer: str | None = None, mixer_args: dict[str, Any] | None = None,
                       total_steps: int | None = None) -> nn.Module:
    """A copy of ``model`` fine-tuned as a whole on ``train_set[indices]`` (BTM Algorithm 1, step 3).

    The loss is ``cfg.loss`` (None: the head's default). A mixed-label loss ("mixed_singleton",
    the "ms" heads' default) trains on "bmls" pairs of the subset, whose two labels always
    differ, as the loss requires; other losses use the "random" sampler and the mixer's
    in-batch partners. Each epoch uses every item, in ceil(n / batch_size) near-equal batches.

    Args:
        model: The model to start from (left unchanged).
        train_set: The full training set (with augmentation).
        indices: The items to train on (a balanced subset, or any index set).
        cfg: Fine-tuning settings (epochs, lr, batch size, SGD, loss).
        seed: Seeds the sampler, loader, mixer and any random layer.
        progress: tqdm bar.
        mixer, mixer_args: A registered mixer and its arguments (see :func:`resolve_mixer`).
        total_steps: Train for exactly this many SGD steps (cosine over them) instead of
            ``cfg.finetune_epochs`` epochs (compute-matched controls).

    Returns:
        The fine-tuned copy, in eval mode.
    """
    tuned = copy.deepcopy(model)
    device = next(tuned.parameters()).device
    subset = _LabeledSubset(train_set, np.asarray(indices))
    k = int(tuned.num_classes)
    labels = np.asarray(subset.targets)
    loss_fn = B.build_loss(cfg.loss, tuned, np.bincount(labels, minlength=k).tolist()).to(device)
    mix = B.build_mixer(mixer, mixer_args)
    sampler_args: dict[str, Any] = {"num_replicas": 1, "rank": 0}  # one rank fine-tunes one subset
    if is_mixed_label_loss(loss_fn):
        if mix is None:
            raise ValueError(f"the fine-tuning loss {type(loss_fn).__name__} trains on mixed labels: give a mixer "
                             "(the stage-1 run's, or cfg.mixer='mixup')")
        name = "bmls"
        sampler_args["include_singletons"] = bool(getattr(loss_fn, "include_singletons", False))
    else:
        name = "random"
    sampler = B.build_sampler(name, labels, k, seed, sampler_args)
    loader = even_batch_loader(subset, sampler, min(cfg.batch_size, len(subset)))
    optimizer = B.build_optimizer(tuned.parameters(), cfg.finetune_lr, cfg.momentum, cfg.weight_decay)
    if total_steps is None:
        epochs, scheduler = cfg.finetune_epochs, build_scheduler(optimizer, "cosine", cfg.finetune_epochs, len(loader))
    else:
        if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 1:
            raise ValueError(f"total_steps must be an integer >= 1 or None, got {total_steps!r}")
        epochs, scheduler = math.ceil(total_steps / len(loader)), build_scheduler(optimizer, "cosine", 1, total_steps)
    forward = TrainForward(tuned, cfg.precision)
    mix_gen = torch.Generator().manual_seed(seed * 7919 + 17)
    done = 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for epoch in range(epochs):
            sampler.set_epoch(epoch)
            loader.generator = B.epoch_generator(seed, epoch)
            limit = None if total_steps is None else total_steps - done
            stats = train_one_epoch(forward, loss_fn, loader, optimizer, scheduler, device, mixer=mix,
                                    mix_generator=mix_gen, mixer_kwargs=mixer_extras(mix, tuned), max_steps=limit,
                                    progress=progress, desc=f"fine-tune epoch {epoch + 1}",
                                    reduce=False)  # one rank's own subset
            done += stats["steps"]
    return tuned.eval()


def posttrain_model(model: nn.Module, train_set: Any, test_set: Any, class_counts: Sequence[float], cfg: BTMConfig,
                    progress: bool = False) -> dict[str, Any]:
    """Post-train ``model``'s classifier in place as ``cfg.posttrain`` says (Algorithm 1 step 4).

    Args:
        model: The (merged) model.
        train_set: The long-tailed training set with augmentation.
        test_set: Its test split (its transform gives the un-augmented images of "cached_crt").
        class_counts: Training counts.
        cfg: BTM settings (the ``posttrain*`` fields).
        progress: tqdm bars.

    Returns:
        What ran: the mode and its settings (and the learned LWS scale for "mislas").
    """
    info: dict[str, Any] = {"mode": cfg.posttrain, "epochs": cfg.posttrain_epochs,
                            "batch_size": cfg.posttrain_batch_size, "loss": cfg.posttrain_loss,
                            "loss_args": dict(cfg.posttrain_loss_args), "kept_classifier": not cfg.posttrain_reinit}
    if cfg.posttrain == "cached_crt":
        retrain_classifier(model, without_augmentation(train_set, test_set), sampler="class_aware",
                           epochs=cfg.posttrain_epochs, lr=cfg.posttrain_lr, batch_size=cfg.posttrain_batch_size,
                           weight_decay=cfg.posttrain_weight_decay, loss=cfg.posttrain_loss,
                           loss_args=cfg.posttrain_loss_args, class_counts=class_counts, reinit=cfg.posttrain_reinit,
                           seed=cfg.seed, progress=progress)
        return {**info, "lr": cfg.posttrain_lr, "shift_bn": False, "lws": False}
    out = posttrain_classifier(
        model, train_set, epochs=cfg.posttrain_epochs, lr=cfg.posttrain_lr, lr_factor=cfg.posttrain_lr_factor,
        batch_size=cfg.posttrain_batch_size, momentum=cfg.momentum, weight_decay=cfg.posttrain_weight_decay,
        shift_bn=cfg.posttrain_shift_bn, lws=cfg.posttrain_lws, loss=cfg.posttrain_loss,
        loss_args=cfg.posttrain_loss_args, samples_per_class=cfg.posttrain_samples_per_class,
        mixer=cfg.posttrain_mixer, mixer_args=cfg.posttrain_mixer_args, reinit=cfg.posttrain_reinit,
        class_counts=class_counts, seed=cfg.seed, progress=progress, precision=cfg.precision)
    return {**info, "lr": cfg.posttrain_lr, "classifier_lr": cfg.posttrain_lr * cfg.posttrain_lr_factor,
            "shift_bn": cfg.posttrain_shift_bn, "lws": cfg.posttrain_lws, **out}


def _evaluate(model: nn.Module, test_set: Any, class_counts: Sequence[float], cfg: BTMConfig) -> dict[str, Any]:
    from ltzoo.metrics import evaluate
    from ltzoo.metrics.groups import split_of

    loader = B.build_eval_loader(test_set)
    # explicit ranges, else the test set's conventional split (CIFAR-LT by class index)
    groups = {"ranges": dict(cfg.group_ranges)} if cfg.group_ranges else split_of(test_set)
    out = evaluate(model, loader, class_counts, groups=groups, progress=False)
    return {k: out[k] for k in ("top1", "many", "medium", "few", "hmean", "gmean", "lowest", "per_class", "groups")}


# BTMConfig fields (besides finetune_*) that change a fine-tuned model: part of its cache key
_FINETUNE_FIELDS = ("per_class", "weight_decay", "momentum", "batch_size", "loss", "loss_args", "seed", "precision")


def _finetuned_states(model: nn.Module, train_set: Any, subsets: list[np.ndarray], cfg: BTMConfig,
                      out: Path | None, progress: bool, mixer: tuple[str | None, dict[str, Any]]
                      ) -> list[dict[str, torch.Tensor]]:
    """Fine-tune on this process's share of the subsets (resuming from saved ones); gather all."""
    from ltzoo.cache_keys import cache_key, content_hash, key_matches
    from ltzoo.files import read_safetensors, read_safetensors_metadata, write_safetensors

    rank, world = rank_and_world_size()
    source = content_hash(model)  # the model every subset fine-tunes from (stage 1, after the FC stage)
    settings = {k: v for k, v in asdict(cfg).items() if k.startswith("finetune_") or k in _FINETUNE_FIELDS}
    settings["run_seed"] = settings.pop("seed", None)
    keys = [cache_key(source, subset=np.asarray(subsets[d]).tolist(), seed=cfg.seed * 1000 + d, mixer=mixer[0],
                      mixer_args=mixer[1], **settings) for d in range(len(subsets))]

    def path(d: int) -> Path | None:
        return out / f"finetuned_{d:02d}.safetensors" if out is not None else None

    def cached(d: int) -> bool:  # a fine-tune of THIS model with THESE settings, not one left by another run
        return path(d) is not None and path(d).is_file() and key_matches(read_safetensors_metadata(path(d)), keys[d])

    def save(d: int, state: dict[str, torch.Tensor]) -> None:
        write_safetensors(state, path(d), metadata={"ltzoo_cache_key": keys[d]})

    mine = {}
    for d in tqdm(range(rank, len(subsets), world), desc="BTM fine-tuning", disable=not progress):
        if cached(d):
            mine[d] = read_safetensors(path(d))
            continue
        tuned = finetune_on_subset(model, train_set, subsets[d], cfg, seed=cfg.seed * 1000 + d, mixer=mixer[0],
                                   mixer_args=mixer[1])
        mine[d] = {k: v.detach().cpu() for k, v in tuned.state_dict().items()}
        if path(d) is not None and rank == 0:
            save(d, mine[d])  # saved as soon as done: a restart resumes here
    gathered = {}
    for part in gather_objects(mine):
        gathered.update(part)
    if out is not None and rank == 0:  # only rank 0 writes: the other ranks' models too
        for d, state in gathered.items():
            if not cached(d):
                save(d, state)
    return [gathered[d] for d in range(len(subsets))]


def _fc_stage(model: nn.Module, train_set: Any, counts: list, cfg: BTMConfig, recipe: Mapping[str, Any] | None,
              mixer: tuple[str | None, dict[str, Any]], progress: bool) -> tuple[nn.Module, dict[str, Any]]:
    """The model BTM fine-tunes (a copy after the FC stage when it runs) and what the FC stage did."""
    reasons = fc_stage_reasons(recipe, model)
    run = cfg.fc_stage == "on" or (cfg.fc_stage == "auto" and bool(reasons))
    info: dict[str, Any] = {"mode": cfg.fc_stage, "reasons": reasons, "recipe_known": recipe is not None, "ran": False}
    if not run:
        return model, info
    base = copy.deepcopy(model)
    info.update(run_fc_stage(base, train_set, counts, epochs=cfg.fc_epochs, lr=cfg.fc_lr or cfg.finetune_lr,
                             batch_size=cfg.batch_size, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                             mixer=mixer[0], mixer_args=mixer[1], reinit=cfg.fc_reinit,
                             cache_features=cfg.fc_cache_features, seed=cfg.seed, progress=progress))
    return base.train(), info


def train_btm(model: nn.Module, train_set: Any, test_set: Any, class_counts: Sequence[float] | None = None,
              cfg: BTMConfig | None = None, output_dir: str | Path | None = None,
              progress: bool = True, stage1_recipe: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Run BTM from a stage-1 model and report every stage.

    Args:
        model: The stage-1 :class:`~ltzoo.models.LTModel` (not modified).
        train_set: The long-tailed training set (with augmentation; ``targets``).
        test_set: The test set (its transform is the un-augmented view for cached features).
        class_counts: Training counts (default: the histogram of ``train_set.targets``).
        cfg: BTM settings (default :class:`BTMConfig`).
        output_dir: Where fine-tuned weights and ``btm_report.json`` go (rank 0 writes); None keeps
            nothing on disk (no resume).
        progress: tqdm bars.
        stage1_recipe: The stage-1 run's config (``TrainConfig.to_dict()``): its loss, head,
            sampler and cRT stage decide ``fc_stage="auto"``, its mixer the fine-tuning mixer
            (``cfg.mixer="stage1"``). None: unknown (only the model's head is checked; no mixer).

    Returns:
        ``{"report": {"config", "class_counts", "stage1", "fc_stage", ["after_fc_stage"], "finetune",
        "finetuned": [...], "merged", ["posttrain", "posttrained"]}, "model": the post-trained
        merged model, "merged_state": the merged state dict, "base": the model the subsets were
        fine-tuned from (stage 1, or its copy after the FC stage), "subsets": the N_D balanced index
        arrays}``.
    """
    cfg = cfg or BTMConfig()
    init_distributed()
    labels = B.dataset_labels(train_set)
    k = int(model.num_classes)
    counts = B.check_counts(class_counts if class_counts is not None else np.bincount(labels, minlength=k), k)
    out = Path(output_dir) if output_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    mixer = resolve_mixer(cfg, stage1_recipe)
    report: dict[str, Any] = {"config": asdict(cfg), "class_counts": counts, "stage1": _evaluate(model, test_set, counts, cfg)}
    base, report["fc_stage"] = _fc_stage(model, train_set, counts, cfg, stage1_recipe, mixer, progress)  # Sec. 3.3
    if report["fc_stage"]["ran"]:
        report["after_fc_stage"] = _evaluate(base.eval(), test_set, counts, cfg)
    subsets = balanced_subsets(labels, cfg.num_subsets, cfg.per_class, seed=cfg.seed, num_classes=k)  # step 2
    probe_loss = B.build_loss(cfg.loss, base, counts)
    loss_name = cfg.loss or getattr(base.get_classifier(), "default_loss", "ce")
    report["finetune"] = {"mixer": mixer[0], "mixer_args": mixer[1], "loss": loss_name,
                          "sampler": "bmls" if is_mixed_label_loss(probe_loss) else "random",
                          "subset_sizes": [int(len(s)) for s in subsets],
                          "steps": [finetune_steps(len(s), cfg) for s in subsets]}
    states = _finetuned_states(base.train(), train_set, subsets, cfg, out, progress, mixer)  # step 3
    probe = copy.deepcopy(base)
    report["finetuned"] = []
    for state in states:
        probe.load_state_dict(state)
        report["finetuned"].append(_evaluate(probe, test_set, counts, cfg))
    merged_state = merge_state_dicts(states)  # step 3: uniform average, 1 / N_D each
    merged = copy.deepcopy(base)
    merged.load_state_dict(merged_state)
    if cfg.recalibrate_bn:
        loader = B.build_eval_loader(without_augmentation(train_set, test_set))
        recalibrate_batchnorm(merged, loader, device=next(merged.parameters()).device)
    report["merged"] = _evaluate(merged.eval(), test_set, counts, cfg)
    if cfg.posttrain_epochs > 0:  # step 4
        report["posttrain"] = posttrain_model(merged, train_set, test_set, counts, cfg, progress=progress)
        report["posttrained"] = _evaluate(merged, test_set, counts, cfg)
    if out is not None and is_main_process():
        write_json(out / "btm_report.json", report)
    return {"report": report, "model": merged, "merged_state": merged_state, "base": base, "subsets": subsets}


def report_table(report: dict[str, Any]) -> str:
    """One row per stage of a BTM report (fine-tuned models averaged)."""
    rows = [{"model": "stage 1", **report["stage1"]}]
    if "after_fc_stage" in report:
        rows.append({"model": "after FC stage", **report["after_fc_stage"]})
    tuned = report["finetuned"]
    keys = ("top1", "hmean", "gmean", "lowest")
    rows.append({"model": f"fine-tuned (mean of {len(tuned)})",
                 **{k: float(np.mean([t[k] for t in tuned])) for k in keys}})
    rows.append({"model": "merged", **report["merged"]})
    if "posttrained" in report:
        rows.append({"model": "merged + post-trained", **report["posttrained"]})
    return format_table(rows, name_key="model")


def describe_fc_stage(info: Mapping[str, Any]) -> str:
    """One line saying whether the FC stage ran, why, and with what settings."""
    why = "; ".join(info.get("reasons") or []) or "the stage-1 classifier is plain CE / fc / random"
    if not info.get("ran"):
        return f"FC stage ({info.get('mode')}): skipped ({why})"
    kept = "kept the stage-1 FC weights" if info.get("kept_classifier") else "fresh 'fc' head"
    return (f"FC stage ({info.get('mode')}): ran because {why}; {info['epochs']} epochs, lr {info['lr']:g}, "
            f"batch {info['batch_size']}, sampler {info['sampler']}, loss {info['loss']}, {kept}, "
            f"mixer {info.get('mixer')}{', cached features' if info.get('cache_features') else ''}")
