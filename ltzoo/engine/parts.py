"""The parts of a supervised run, built from a :class:`TrainConfig`, and their checkpoint state.

``build_parts`` makes the model, loss, sampler, loader, mixer, optimizer, per-iteration
scheduler, EMA and the mixer's generator; ``parts_state`` / ``load_parts_state`` turn all of
them (plus the RNG states of every rank) into a ``weights_only``-loadable checkpoint and back.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import nn

from ltzoo.engine import builders as B
from ltzoo.engine.checkpoint import capture_rng_state, restore_rng_state
from ltzoo.engine.config import TrainConfig
from ltzoo.engine.distributed import DistInfo, gather_objects, wrap_ddp
from ltzoo.engine.objective import TrainForward
from ltzoo.engine.resume_check import check_checkpoint_fits
from ltzoo.engine.schedule import build_scheduler

__all__ = ["RunParts", "build_parts", "parts_state", "load_parts_state", "CHECKPOINT_FORMAT", "RESUMABLE_CHANGES"]

CHECKPOINT_FORMAT = "ltzoo-train-checkpoint-v1"
# Config fields that may differ between a run and its resumption without changing the result.
RESUMABLE_CHANGES = frozenset({"output_dir", "progress", "num_workers", "device", "eval_every", "eval_batch_size",
                               "num_threads", "save_model", "tag", "logit_adjust_tau", "data_root",
                               "max_eval_samples", "data_path"})


@dataclass
class RunParts:
    """Everything a training loop needs; ``model`` is the bare model (never a DDP wrapper)."""

    cfg: TrainConfig
    info: DistInfo
    class_counts: list[float]
    num_classes: int
    model: nn.Module
    loss_fn: nn.Module
    sampler: Any
    loader: torch.utils.data.DataLoader
    steps_per_epoch: int
    mixer: Any
    mix_generator: torch.Generator
    optimizer: torch.optim.Optimizer
    scheduler: Any
    ema: nn.Module | None
    scaler: Any = None  # torch.amp.GradScaler for fp16, else None
    channels_last: bool = False

    def train_forward(self) -> TrainForward:
        """The :class:`~ltzoo.engine.objective.TrainForward` of this run (precision, memory format)."""
        return TrainForward(self.model, self.cfg.precision, self.channels_last)

    def training_callable(self, device: torch.device) -> nn.Module:
        """The forward the training loop calls: :meth:`train_forward`, DDP-wrapped under a process
        group, then compiled when ``cfg.compile`` (the weights stay those of ``self.model``)."""
        forward = wrap_ddp(self.train_forward(), device)
        return torch.compile(forward) if self.cfg.compile else forward


def build_parts(cfg: TrainConfig, train_set: Any, class_counts: Sequence[float], info: DistInfo) -> RunParts:
    """Build a run's parts (seeds torch/numpy/random with ``cfg.seed`` first, so the model init is reproducible).

    Args:
        cfg: The run's config.
        train_set: Map-style training set with ``targets``.
        class_counts: Training counts per class (length K).
        info: This process's rank, world size and device.

    Returns:
        The :class:`RunParts` (model on ``info.device``).
    """
    if cfg.batch_size % info.world_size:
        raise ValueError(f"batch_size={cfg.batch_size} (global) must be divisible by the {info.world_size} processes")
    labels = B.dataset_labels(train_set)
    num_classes = cfg.num_classes or len(class_counts)
    counts = B.check_counts(class_counts, num_classes)
    B.seed_everything(cfg.seed)
    model = B.build_model(cfg.model, cfg.head, num_classes, cfg.model_args).to(info.device)
    model, channels_last, scaler = B.speed_settings(model, cfg.channels_last, cfg.precision, info.device)
    loss_fn = B.build_loss(cfg.loss, model, counts, cfg.loss_args, total_steps=cfg.epochs).to(info.device)
    sampler = B.build_sampler(cfg.sampler, labels, num_classes, cfg.seed, cfg.sampler_args,
                              batch_size=cfg.batch_size if cfg.drop_last else None)
    loader = B.build_train_loader(train_set, sampler, cfg.batch_size // info.world_size, cfg.num_workers,
                                  cfg.drop_last, pin_memory=info.device.type == "cuda", data_path=cfg.data_path,
                                  device=info.device)
    steps = len(loader) if cfg.max_steps_per_epoch is None else min(len(loader), cfg.max_steps_per_epoch)
    if steps < 1:
        raise ValueError(f"the training loader yields no batch (dataset of {len(train_set)}, batch {cfg.batch_size})")
    mixer = B.build_mixer(cfg.mixer, cfg.mixer_args)
    mix_generator = torch.Generator().manual_seed(cfg.seed * 7919 + 17 + info.rank)
    params = list(model.parameters())
    optimizer = B.build_optimizer(params, cfg.lr, cfg.momentum, cfg.weight_decay, cfg.nesterov)
    scheduler = build_scheduler(optimizer, cfg.schedule, cfg.epochs, steps, cfg.warmup_epochs, cfg.milestones,
                                cfg.lr_gamma, cfg.min_lr, cfg.warmup_mode)
    ema = B.build_ema(model, cfg.ema_decay)
    return RunParts(cfg, info, counts, num_classes, model, loss_fn, sampler, loader, steps, mixer, mix_generator,
                    optimizer, scheduler, ema, scaler, channels_last)


def parts_state(parts: RunParts, epoch: int, global_step: int, history: list[dict[str, Any]]) -> dict[str, Any]:
    """The checkpoint of a run after ``epoch`` completed epochs. Every rank must call it (RNG states are gathered).

    Returns:
        A dict loadable with ``torch.load(weights_only=True)``.
    """
    rng = gather_objects({**capture_rng_state(), "mixer": parts.mix_generator.get_state()})
    sampler_state = parts.sampler.state_dict() if hasattr(parts.sampler, "state_dict") else None
    return {
        "format": CHECKPOINT_FORMAT,
        "epoch": int(epoch),
        "global_step": int(global_step),
        "config": parts.cfg.to_dict(),
        "class_counts": list(parts.class_counts),
        "num_classes": int(parts.num_classes),
        "world_size": int(parts.info.world_size),
        "model": parts.model.state_dict(),
        "optimizer": parts.optimizer.state_dict(),
        "scheduler": parts.scheduler.state_dict(),
        "ema": None if parts.ema is None else parts.ema.state_dict(),
        "scaler": None if parts.scaler is None else parts.scaler.state_dict(),
        "loss": parts.loss_fn.state_dict(),
        "sampler": {"epoch": int(getattr(parts.sampler, "epoch", epoch)), "state": sampler_state},
        "rng": rng,
        "history": list(history),
    }


def check_resumable(saved: dict[str, Any], cfg: TrainConfig) -> None:
    """Warn about config fields that differ from the checkpoint's (other than harmless ones)."""
    changed = sorted(k for k, v in cfg.to_dict().items()
                     if k not in RESUMABLE_CHANGES and saved.get(k, v) != v)
    if changed:
        warnings.warn(f"resuming with a config that differs from the checkpoint's in {changed}; "
                      "the result will not match an uninterrupted run", stacklevel=3)


def load_parts_state(parts: RunParts, state: dict[str, Any]) -> tuple[int, int, list[dict[str, Any]]]:
    """Restore a checkpoint into freshly built parts (call before wrapping the model in DDP).

    Returns:
        ``(completed epochs, global step, evaluation history)``.
    """
    if state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"not an ltzoo training checkpoint (format {state.get('format')!r})")
    check_checkpoint_fits(state, parts.cfg.to_dict(), parts.num_classes, parts.model)  # a clear error, not torch's
    check_resumable(state["config"], parts.cfg)
    dev = parts.info.device
    parts.model.load_state_dict(state["model"])
    parts.optimizer.load_state_dict(state["optimizer"])
    parts.scheduler.load_state_dict(state["scheduler"])
    if parts.ema is not None:
        if state.get("ema") is None:
            raise ValueError("the checkpoint has no EMA weights but ema_decay is set")
        parts.ema.load_state_dict(state["ema"])
    if parts.scaler is not None and state.get("scaler"):
        parts.scaler.load_state_dict(state["scaler"])
    parts.loss_fn.load_state_dict(state["loss"])
    parts.loss_fn.to(dev)
    sampler_state = state.get("sampler") or {}
    if sampler_state.get("state") is not None and hasattr(parts.sampler, "load_state_dict"):
        parts.sampler.load_state_dict(sampler_state["state"])
    rng = state["rng"]
    if len(rng) != parts.info.world_size:
        warnings.warn(f"checkpoint written by {len(rng)} process(es), resumed on {parts.info.world_size}: "
                      "random streams differ from an uninterrupted run", stacklevel=2)
    mine = rng[parts.info.rank % len(rng)]
    restore_rng_state(mine)
    parts.mix_generator.set_state(torch.as_tensor(mine["mixer"], dtype=torch.uint8).cpu())
    return int(state["epoch"]), int(state["global_step"]), list(state.get("history") or [])
