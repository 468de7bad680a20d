"""Build a run's parts by name: model, loss, sampler, mixer, optimizer, EMA, loaders, seeds.

Every recipe (supervised, FixMatch, BTM) builds its parts through these functions, so the
conventions live in one place: losses are built with ``reduction="none"`` (the recipe reduces,
which the mixed-label bookkeeping needs) and get ``class_counts`` / ``head`` / ``total_steps``
filled in when their constructor takes them; samplers get the labels, K and the seed (rank and
world size come from ``torch.distributed``).
"""
from __future__ import annotations

import inspect
import os
import random
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from ltzoo.models import no_weight_decay_names
from ltzoo.registry import LOSSES, MIXERS, SAMPLERS
from ltzoo.validation import as_number

__all__ = [
    "seed_everything", "build_model", "build_loss", "build_sampler", "build_mixer", "build_optimizer",
    "weight_decay_groups",
    "build_ema", "build_train_loader", "build_eval_loader", "is_pair_sampler", "epoch_generator",
    "dataset_labels", "check_counts",
]


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, numpy's global RNG and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def dataset_labels(dataset: Dataset) -> np.ndarray:
    """The int64 labels of a dataset (its ``targets``), without loading any image."""
    targets = getattr(dataset, "targets", None)
    if targets is None:
        raise TypeError(f"the training set must expose .targets (labels), got {type(dataset).__name__}")
    return np.asarray(targets, dtype=np.int64).reshape(-1)


def check_counts(class_counts: Sequence[float], num_classes: int) -> list[float]:
    """Validated class counts as a list (length K, finite, >= 0, not all zero)."""
    from ltzoo.validation import check_class_counts

    counts = check_class_counts(class_counts, num_classes=num_classes)
    return [int(c) if float(c).is_integer() else float(c) for c in counts]


def build_model(name: str, head: str, num_classes: int, model_args: dict[str, Any] | None = None) -> nn.Module:
    """``ltzoo.create_model(name, head=head, num_classes=num_classes, **model_args)``."""
    from ltzoo.hub.factory import create_model

    return create_model(name, head=head, num_classes=num_classes, **dict(model_args or {}))


def build_loss(name: str | None, model: nn.Module, class_counts: Sequence[float],
               loss_args: dict[str, Any] | None = None, total_steps: int | None = None,
               reduction: str = "none") -> nn.Module:
    """A registered loss with the recipe's arguments filled in.

    Args:
        name: Loss name; None takes the model head's ``default_loss`` (else "ce").
        model: The model (its head is passed as ``head=`` to losses that take one, e.g. "dot_regression").
        class_counts: Training counts, passed as ``class_counts=`` to losses that take it.
        loss_args: User arguments; they win over the filled-in ones.
        total_steps: Passed as ``total_steps=`` to losses that take it (UDAL: the unit of its ``step()``).
        reduction: The loss's reduction (recipes use "none" and reduce themselves).

    Returns:
        The loss module.
    """
    head = model.get_classifier() if hasattr(model, "get_classifier") else None
    if name is None:
        name = getattr(head, "default_loss", "ce")
    cls = LOSSES.get(name)
    params = inspect.signature(cls).parameters
    kwargs = dict(loss_args or {})
    filled = {"class_counts": list(class_counts), "head": head, "total_steps": total_steps, "reduction": reduction}
    for key, value in filled.items():
        if key in params and key not in kwargs and value is not None:
            kwargs[key] = value
    return cls(**kwargs)


def build_sampler(name: str, labels: np.ndarray, num_classes: int, seed: int,
                  sampler_args: dict[str, Any] | None = None, batch_size: int | None = None) -> Sampler:
    """A registered epoch sampler over ``labels`` (sharded by the torch.distributed rank).

    ``batch_size`` (the global batch of a ``drop_last`` loader) goes to samplers that take it
    ("bmls" sizes its plan to whole batches) unless ``sampler_args`` sets it.
    """
    if name == "mix_bank":
        raise ValueError("'mix_bank' is BEM's online partner store, not a DataLoader sampler; "
                         "choose 'random', 'class_balanced', 'class_aware' or 'bmls'")
    args = {"labels": labels, "num_classes": num_classes, "seed": seed, **dict(sampler_args or {})}
    if batch_size is not None and "batch_size" not in args \
            and "batch_size" in inspect.signature(SAMPLERS.get(name)).parameters:
        args["batch_size"] = batch_size
    return SAMPLERS.create(name, **args)


def is_pair_sampler(sampler: Sampler) -> bool:
    """True for samplers that yield index pairs (i, j) to be served by ``PairedDataset`` ("bmls")."""
    from ltzoo.samplers.bmls import BalancedMixedLabelSampler

    return bool(getattr(sampler, "yields_pairs", isinstance(sampler, BalancedMixedLabelSampler)))


def build_mixer(name: str | None, mixer_args: dict[str, Any] | None = None) -> Any:
    """A registered mixer (``ltzoo.list_mixers()``), or None for ``name=None``."""
    if name is None:
        return None
    return MIXERS.create(name, **dict(mixer_args or {}))


def weight_decay_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Two SGD parameter groups: weight decay on weights, none on biases and normalisation parameters.

    The exempt parameters are those named by ``model.no_weight_decay()`` where the model has it (the
    method timm's optimizer factory reads), else :func:`ltzoo.models.no_weight_decay_names`: every
    parameter with ``ndim <= 1`` (biases, BatchNorm / LayerNorm / GroupNorm weights and biases) goes
    to the group with ``weight_decay`` 0, as FixMatch's recipe does; conv and linear weights keep
    ``weight_decay``. Frozen parameters are left out; an empty group is dropped.

    Args:
        model: The model to optimise.
        weight_decay: Decay of the decayed group (>= 0).

    Returns:
        A list of ``{"params": [...], "weight_decay": ...}`` dicts for ``torch.optim.SGD``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    weight_decay = as_number(weight_decay)  # numpy / 0-d tensor scalars are numbers too
    if isinstance(weight_decay, bool) or not isinstance(weight_decay, (int, float)) or not weight_decay >= 0:
        raise ValueError(f"weight_decay must be a number >= 0, got {weight_decay!r}")
    target = getattr(model, "module", model)  # a DistributedDataParallel wrapper: the wrapped model's names
    # one rule with timm's optimizer factory: the model's own no_weight_decay() (LTModel's lists ndim <= 1)
    exempt = set(target.no_weight_decay()) if hasattr(target, "no_weight_decay") else no_weight_decay_names(target)
    decay, no_decay = [], []
    for name, p in target.named_parameters():
        if p.requires_grad:
            (no_decay if name in exempt else decay).append(p)
    groups = [{"params": decay, "weight_decay": float(weight_decay)}, {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def build_optimizer(params: Any, lr: float, momentum: float = 0.9, weight_decay: float = 0.0,
                    nesterov: bool = False) -> torch.optim.SGD:
    """SGD with momentum and weight decay on the parameters that require gradients.

    Args:
        params: An iterable of parameters, or of parameter-group dicts (e.g.
            :func:`weight_decay_groups`; a group's own ``weight_decay`` wins over the argument).
        lr, momentum, weight_decay, nesterov: SGD settings.

    Returns:
        The optimizer.
    """
    items = list(params)
    if items and all(isinstance(g, dict) for g in items):
        groups = [{**g, "params": [p for p in g["params"] if p.requires_grad]} for g in items]
        trainable: list[Any] = [g for g in groups if g["params"]]
    else:
        trainable = [p for p in items if p.requires_grad]
    if not trainable:
        raise ValueError("no trainable parameter to optimise")
    return torch.optim.SGD(trainable, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)


def speed_settings(model: nn.Module, channels_last: bool | None, precision: str,
                   device: torch.device) -> tuple[nn.Module, bool, Any]:
    """Memory format and mixed precision of a run: ``(model, channels_last, grad scaler or None)``.

    ``channels_last=None`` turns it on (every registered backbone is a conv net); fp16 needs a CUDA
    device and gets a ``torch.amp.GradScaler``.
    """
    channels_last = True if channels_last is None else bool(channels_last)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if precision == "fp16" and device.type != "cuda":
        raise ValueError(f"precision='fp16' needs a CUDA device, got {device}; use 'bf16' on CPUs")
    return model, channels_last, torch.amp.GradScaler("cuda") if precision == "fp16" else None


def build_ema(model: nn.Module, decay: float | None, device: torch.device | None = None) -> nn.Module | None:
    """timm's ``ModelEmaV3`` (parameters and buffers averaged; ``.module`` is the EMA model) or None.

    Update it after each optimizer step with ``ema.update(model)``; save ``ema.state_dict()``.
    """
    if decay is None:
        return None
    from timm.utils import ModelEmaV3

    return ModelEmaV3(model, decay=decay, device=device)


def epoch_generator(seed: int, epoch: int, rank: int = 0) -> torch.Generator:
    """The DataLoader generator of one epoch on one rank (seeds the workers' RNGs reproducibly)."""
    return torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch) * 1009 + int(rank))


DATA_PATHS = ("auto", "tensor", "per_sample")


def build_train_loader(dataset: Dataset, sampler: Sampler, batch_size: int, num_workers: int | None = 0,
                       drop_last: bool = True, pin_memory: bool = False, data_path: str = "per_sample",
                       device: torch.device | str = "cpu") -> Any:
    """The training loader: batched tensor ops on an in-memory copy, or a per-sample ``DataLoader``.

    Args:
        dataset: Map-style training set of ``(image, label)``.
        sampler: An epoch sampler (call ``set_epoch`` before each epoch).
        batch_size: Per-process batch size.
        num_workers: Per-sample loader workers (None: :func:`default_num_workers`).
        drop_last: Drop the last incomplete batch (keeps BatchNorm away from tiny batches);
            ignored when the shard holds fewer than ``batch_size`` items.
        pin_memory: Pin host memory (CUDA runs, per-sample path).
        data_path: "tensor" (:class:`~ltzoo.engine.tensor_loader.TensorBatchLoader`: images held as one
            tensor on ``device``, the augmentation applied to whole batches; ValueError when the set
            cannot be held), "per_sample" (a ``DataLoader``; a ``PairedDataset`` for pair samplers), or
            "auto" (tensor when possible, else per-sample).
        device: Where the tensor path keeps the images and augments them.
    """
    from ltzoo.samplers.paired import PairedDataset

    if data_path not in DATA_PATHS:
        raise ValueError(f"data_path must be one of {DATA_PATHS}, got {data_path!r}")
    if data_path != "per_sample":
        from ltzoo.data.in_memory import in_memory_images
        from ltzoo.engine.tensor_loader import TensorBatchLoader

        held = in_memory_images(dataset)
        if held is not None:
            return TensorBatchLoader(held, sampler, batch_size, drop_last, device)
        if data_path == "tensor":
            raise ValueError("data_path='tensor' needs a training set that can be held in memory as one tensor with a "
                             f"recognised augmentation (CIFAR / image folder / tensor sets); got {type(dataset).__name__} "
                             f"with transform {getattr(dataset, 'transform', None)!r}: use 'auto' or 'per_sample'")
    data = PairedDataset(dataset) if is_pair_sampler(sampler) else dataset
    drop_last = drop_last and len(sampler) >= batch_size
    workers = default_num_workers(dataset) if num_workers is None else num_workers
    return DataLoader(data, batch_size=batch_size, sampler=sampler, num_workers=workers, drop_last=drop_last,
                      pin_memory=pin_memory, persistent_workers=False)


def default_num_workers(dataset: Any) -> int:
    """Per-sample loader workers by default: none for tensor datasets (indexing is cheap), else up to 4,
    leaving one CPU core to the training step."""
    from ltzoo.data.base import TensorImageDataset

    if isinstance(dataset, TensorImageDataset):
        return 0
    return max(0, min(4, (os.cpu_count() or 1) - 1))


def build_eval_loader(dataset: Dataset, batch_size: int = 256, num_workers: int | None = 0) -> DataLoader:
    """A sequential loader over the whole test set (evaluation runs on rank 0 only; None workers: the default)."""
    workers = default_num_workers(dataset) if num_workers is None else num_workers
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers)
