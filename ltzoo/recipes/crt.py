"""Decoupled classifier retraining (cRT, Kang et al. ICLR 2020; BTM's "FC" stage and, as an
option, a fast cached-feature post-training).

The backbone is frozen (no gradients, BatchNorm in eval mode, running statistics untouched), the
head is re-initialised (``reinit=True``, cRT) or kept and fine-tuned (``reinit=False``) and
trained alone with a class-aware, class-balanced or random sampler, SGD and a per-iteration
cosine schedule. (BTM's default post-training is the MiSLAS-style stage in
:mod:`ltzoo.recipes.posttrain`: kept classifier, shifted BatchNorm, label-aware smoothing, LWS.) With ``cache_features=True`` (default) the pooled features of the
training set are computed ONCE, without augmentation (pass the training set with the test
transform, e.g. :func:`without_augmentation`), and the head trains on them: an epoch costs a
few matrix products. Under torch.distributed every rank computes the same cached features and
trains the same head on the same (unsharded) plan, so the heads agree without communication;
without caching, the sampler shards, the head is wrapped in DDP, an optional mixer mixes the
images, and every epoch keeps all its images (near-equal batches, no ``drop_last``).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from tqdm import tqdm

from ltzoo.engine import builders as B
from ltzoo.engine.distributed import wrap_ddp
from ltzoo.engine.epoch import train_one_epoch
from ltzoo.engine.even_batches import even_batch_loader
from ltzoo.engine.features import extract_features
from ltzoo.engine.frozen_backbone import FrozenBackboneForward, freeze_parameters
from ltzoo.engine.objective import mixer_extras
from ltzoo.engine.schedule import build_scheduler

__all__ = ["retrain_classifier", "without_augmentation"]


class _HeadForward(nn.Module):
    """``forward(features, features=False)`` on cached pooled features: the head's logits (or the input)."""

    def __init__(self, head: nn.Module) -> None:
        super().__init__()
        self.head = head

    def forward(self, x: torch.Tensor, features: bool = False) -> torch.Tensor:
        return x if features else self.head(x)


def without_augmentation(train_set: Any, test_set: Any = None) -> Any:
    """The training set with the test set's transform (no augmentation), where the dataset allows it.

    Args:
        train_set: An ltzoo dataset (``subset(indices, transform=...)``).
        test_set: Its test split, whose ``transform`` is used (None: no transform, for tensor sets).

    Returns:
        The re-transformed training set, or ``train_set`` itself when it cannot be re-transformed.
    """
    if not hasattr(train_set, "subset"):
        return train_set
    return train_set.subset(np.arange(len(train_set)), transform=getattr(test_set, "transform", None))


def retrain_classifier(
    model: nn.Module,
    train_set: Any,
    *,
    sampler: str = "class_aware",
    epochs: int = 10,
    lr: float = 0.05,
    batch_size: int = 128,
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    loss: str | None = "ce",
    loss_args: dict[str, Any] | None = None,
    sampler_args: dict[str, Any] | None = None,
    class_counts: Any = None,
    reinit: bool = True,
    cache_features: bool = True,
    mixer: str | None = None,
    mixer_args: dict[str, Any] | None = None,
    seed: int = 0,
    num_workers: int = 0,
    progress: bool = False,
) -> nn.Module:
    """Retrain ``model``'s classifier on its frozen backbone; the model is changed in place and returned.

    Args:
        model: An :class:`~ltzoo.models.LTModel` (``forward_features``, ``forward_head``,
            ``get_classifier``, ``reset_classifier``) on its device.
        train_set: Training set with ``targets`` (without augmentation when caching features).
        sampler: "class_aware" (cRT / BTM), "class_balanced" or "random".
        epochs: Epochs over ``len(train_set)`` draws.
        lr, batch_size, momentum, weight_decay: SGD settings (cosine schedule to 0, no warm-up).
        loss: Loss of the head (None: the head's ``default_loss``); "mixed_singleton" needs a mixer
            and is refused here (use "ce" for an "ms" head).
        loss_args, sampler_args: Extra arguments of the loss and the sampler.
        class_counts: Counts for losses that take them (default: the labels' histogram).
        reinit: Re-initialise the head first (``reset_classifier``); False fine-tunes it.
        cache_features: Compute the pooled features once and train on them.
        mixer, mixer_args: A registered mixer for the image path (``cache_features=False``), e.g.
            the stage-1 run's "mixup"; cached features cannot be mixed.
        seed: Seeds the head init, the sampler and the mixer.
        num_workers: Loader workers for the image passes.
        progress: tqdm bars.

    Returns:
        The model: backbone unchanged (and ``requires_grad`` flags restored), retrained head, in eval mode.
    """
    if mixer is not None and cache_features:
        raise ValueError(f"mixer={mixer!r} mixes images, but cache_features=True trains on cached features: "
                         "set cache_features=False to mix")
    device = next(model.parameters()).device
    labels = B.dataset_labels(train_set)
    k = int(model.num_classes)
    counts = B.check_counts(class_counts if class_counts is not None else np.bincount(labels, minlength=k), k)
    restore_grad_flags = freeze_parameters(model)
    try:
        if reinit:
            with torch.random.fork_rng(devices=[]):  # seeded head init, caller's RNG untouched
                torch.manual_seed(seed)
                model.reset_classifier(k)
        head = model.get_classifier()
        for p in head.parameters():
            p.requires_grad_(True)
        loss_fn = B.build_loss(loss, model, counts, loss_args, total_steps=epochs).to(device)
        args = dict(sampler_args or {})
        if cache_features:  # identical on every rank: no sharding, no DDP
            args.setdefault("num_replicas", 1)
            args.setdefault("rank", 0)
        plan = B.build_sampler(sampler, labels, k, seed, args)
        if cache_features:
            feats, ys = extract_features(model, train_set, num_workers=num_workers, progress=progress)
            feats, ys = feats.to(device), ys.to(device)
            data, forward = TensorDataset(feats, ys), _HeadForward(head)
            loader = DataLoader(data, batch_size=batch_size, sampler=plan, drop_last=len(plan) >= batch_size)
        else:
            forward = wrap_ddp(FrozenBackboneForward(model), device)
            loader = even_batch_loader(train_set, plan, batch_size, num_workers)  # no image dropped
        mix = B.build_mixer(mixer, mixer_args)
        mix_gen = torch.Generator().manual_seed(seed * 7919 + 31)
        optimizer = B.build_optimizer(head.parameters(), lr, momentum, weight_decay)
        scheduler = build_scheduler(optimizer, "cosine", epochs, len(loader))
        for epoch in tqdm(range(epochs), desc="classifier retraining", disable=not progress, leave=False):
            plan.set_epoch(epoch)
            loader.generator = B.epoch_generator(seed, epoch)
            train_one_epoch(forward, loss_fn, loader, optimizer, scheduler, device, mixer=mix, mix_generator=mix_gen,
                            mixer_kwargs=mixer_extras(mix, model), progress=False)
    finally:
        restore_grad_flags()
        model.eval()
    return model
