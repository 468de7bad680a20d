"""MiSLAS-style classifier post-training (BTM Algorithm 1 step 4, as the BTM authors' stage 2 runs it).

On the frozen backbone (no gradients) the model's OWN classifier (kept, not re-initialised) is
trained further together with a learnable weight scaling (LWS, a per-class logit scale, init 1):

* ``shift_bn``: the frozen backbone runs in training mode under ``no_grad``, so its BatchNorm
  layers re-estimate their running statistics on the post-training batches;
* loss: label-aware smoothing (``"label_aware_smoothing"``, eps_head 0.3, eps_tail 0.0, concave);
* class-balanced batches: the class-aware sampler with 4 consecutive samples per class visit and
  an epoch of K * n_max samples (the authors' ``ClassAwareSampler``), on the augmented images;
* one SGD (momentum 0.9, weight decay 5e-4 on both groups) with two groups under a per-EPOCH
  cosine from lr = 0.1: the classifier at ``lr_factor * lr`` (0.05 x) and the LWS scale at lr,
  lr_e = 0.5 * lr * (1 + cos(pi * e / E)) for epoch e = 0 .. E-1; batch 256; 10 epochs.

After training the LWS scale is folded into the head (:func:`ltzoo.heads.lws.fold_logit_scale`),
so the returned model has its usual architecture. Under torch.distributed the sampler shards,
the per-process batch is ``batch_size // world_size``, and the classifier + scale train in DDP
(rank 0's BatchNorm buffers are broadcast at each forward).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ltzoo.engine import builders as B
from ltzoo.engine.distributed import wrap_ddp
from ltzoo.engine.epoch import train_one_epoch
from ltzoo.engine.even_batches import even_batch_loader
from ltzoo.engine.frozen_backbone import FrozenBackboneForward, freeze_parameters
from ltzoo.engine.objective import mixer_extras, takes_features
from ltzoo.heads.lws import LearnableWeightScaling, fold_logit_scale
from ltzoo.validation import as_number

__all__ = ["posttrain_classifier", "cosine_epoch_factor"]


def _broadcast_buffers(model: nn.Module) -> None:
    """Copy rank 0's buffers (BatchNorm running statistics) to every process (no-op in one process)."""
    from ltzoo.distributed import is_distributed

    if not is_distributed():
        return
    import torch.distributed as dist

    for buf in model.buffers():
        dist.broadcast(buf.data, src=0)


def cosine_epoch_factor(epoch: int, epochs: int) -> float:
    """The authors' per-epoch cosine: 0.5 * (1 + cos(pi * epoch / epochs)) for 0-based ``epoch``."""
    return 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))


def posttrain_classifier(
    model: nn.Module,
    train_set: Any,
    *,
    epochs: int = 10,
    lr: float = 0.1,
    lr_factor: float = 0.05,
    batch_size: int = 256,
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    shift_bn: bool = True,
    lws: bool = True,
    loss: str = "label_aware_smoothing",
    loss_args: dict[str, Any] | None = None,
    samples_per_class: int = 4,
    num_samples: int | None = None,
    mixer: str | None = None,
    mixer_args: dict[str, Any] | None = None,
    reinit: bool = False,
    class_counts: Any = None,
    seed: int = 0,
    num_workers: int = 0,
    progress: bool = False,
    precision: str = "fp32",
) -> dict[str, Any]:
    """Post-train ``model``'s classifier on its frozen backbone, MiSLAS-style; the model changes in place.

    Args:
        model: An :class:`~ltzoo.models.LTModel` (the merged BTM model).
        train_set: The long-tailed training set WITH its training augmentation (``targets``).
        epochs: Post-training epochs (authors: 10).
        lr: Base learning rate of the per-epoch cosine (authors: 0.1); the LWS scale's.
        lr_factor: The classifier's learning rate is ``lr_factor * lr`` (authors: 0.05).
        batch_size: Global batch size (authors: 256).
        momentum, weight_decay: SGD settings (authors: 0.9, 5e-4, on both groups).
        shift_bn: Re-estimate the frozen backbone's BatchNorm statistics on the post-training
            batches (authors: True); False keeps them (eval mode).
        lws: Train a learnable per-class logit scale with the classifier, folded into it after.
        loss: Registered loss on the (scaled) logits (default label-aware smoothing).
        loss_args: Its arguments (``class_counts`` is filled in), e.g. ``{"eps_head": 0.3}``.
        samples_per_class: Consecutive samples per class visit of the class-aware sampler (authors: 4).
        num_samples: Samples per epoch; None = K * n_max (the authors' class-aware epoch).
        mixer: Optional registered mixer (the authors' Places-LT config mixes; ImageNet-LT does not).
        mixer_args: Its arguments.
        reinit: Re-initialise the classifier first (cRT-style) instead of keeping it.
        class_counts: Training counts (default the histogram of ``train_set.targets``).
        seed: Seeds the sampler, the mixer and any re-initialisation.
        num_workers: Loader workers.
        progress: tqdm bar over the epochs.
        precision: "fp32" (default), "bf16" or "fp16": autocast dtype of the frozen backbone's forward.

    Returns:
        ``{"lws_scale": the learned (K,) scale as a list (None without LWS), "steps": SGD steps,
        "num_samples": samples per epoch}``; the model (in eval mode) has the scale folded in.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be an integer >= 1, got {epochs!r}")
    for name, value in (("lr", lr), ("lr_factor", lr_factor)):
        value = as_number(value)  # numpy / 0-d tensor scalars are numbers too
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"{name} must be a number > 0, got {value!r}")
    from ltzoo.distributed import rank_and_world_size

    rank, world = rank_and_world_size()
    if batch_size % world:
        raise ValueError(f"batch_size={batch_size} (global) must be divisible by the {world} processes")
    device = next(model.parameters()).device
    labels = B.dataset_labels(train_set)
    k = int(model.num_classes)
    counts = B.check_counts(class_counts if class_counts is not None else np.bincount(labels, minlength=k), k)
    restore_grad_flags = freeze_parameters(model)
    scaler = LearnableWeightScaling(k).to(device) if lws else None
    steps = 0
    try:
        if reinit:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                model.reset_classifier(k)
        head = model.get_classifier()
        head_params = list(head.parameters())
        for p in head_params:
            p.requires_grad_(True)
        loss_fn = B.build_loss(loss, model, counts, loss_args, total_steps=epochs).to(device)
        if takes_features(loss_fn) and lws:
            raise ValueError(f"loss {loss!r} works on features, not logits, so LWS cannot scale its logits: set lws=False")
        n_max = int(np.bincount(labels, minlength=k).max())
        epoch_samples = k * n_max if num_samples is None else int(num_samples)
        plan = B.build_sampler("class_aware", labels, k, seed,
                               {"samples_per_class": samples_per_class, "num_samples": epoch_samples})
        loader = even_batch_loader(train_set, plan, batch_size // world, num_workers)
        groups = [{"params": [p for p in head_params if p.requires_grad], "lr": lr_factor * lr}]
        if scaler is not None:
            groups.append({"params": list(scaler.parameters()), "lr": lr})
        if not groups[0]["params"]:
            groups = groups[1:]
        if not groups:
            raise ValueError("the classifier has no trainable parameter and lws=False: nothing to post-train")
        optimizer = torch.optim.SGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay)
        base_lrs = [g["lr"] for g in optimizer.param_groups]
        forward = wrap_ddp(FrozenBackboneForward(model, shift_bn=shift_bn, scale=scaler, precision=precision), device)
        mix = B.build_mixer(mixer, mixer_args)
        mix_gen = torch.Generator().manual_seed(seed * 7919 + 29 + rank)
        for epoch in tqdm(range(epochs), desc="post-training", disable=not progress, leave=False):
            factor = cosine_epoch_factor(epoch, epochs)  # lr_e = 0.5 lr (1 + cos(pi e / E)), per epoch
            for group, base in zip(optimizer.param_groups, base_lrs):
                group["lr"] = base * factor
            plan.set_epoch(epoch)
            loader.generator = B.epoch_generator(seed, epoch, rank)
            stats = train_one_epoch(forward, loss_fn, loader, optimizer, None, device, mixer=mix, mix_generator=mix_gen,
                                    mixer_kwargs=mixer_extras(mix, model), progress=False)
            steps += stats["steps"]
    finally:
        restore_grad_flags()
        model.eval()
    _broadcast_buffers(model)  # the last batch's BatchNorm update is per process: take rank 0's, as DDP does
    scale = None
    if scaler is not None:
        fold_logit_scale(model.get_classifier(), scaler.scale)
        scale = scaler.scale.detach().cpu().tolist()
    return {"lws_scale": scale, "steps": steps, "num_samples": epoch_samples}
