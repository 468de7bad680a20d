"""One supervised training epoch: forward, loss (:func:`~ltzoo.engine.objective.compute_loss`),
backward, SGD step, per-iteration LR step, EMA update, progress bar.
"""
from __future__ import annotations

import math
import sys
from typing import Any, Callable

import torch
from torch import nn
from tqdm import tqdm

from ltzoo.engine.distributed import all_reduce_sum
from ltzoo.engine.objective import compute_loss

__all__ = ["train_one_epoch", "progress_enabled", "to_device"]


def progress_enabled(flag: bool | None) -> bool:
    """tqdm bars on: ``flag`` when given, else when stderr is a terminal."""
    if flag is not None:
        return bool(flag)
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def to_device(batch: Any, device: torch.device) -> list[torch.Tensor]:
    """Move every tensor of a loader batch to ``device`` (labels become int64 tensors)."""
    out = []
    for item in batch:
        t = item if isinstance(item, torch.Tensor) else torch.as_tensor(item)
        out.append(t.to(device, non_blocking=True))
    return out


def train_one_epoch(
    forward: nn.Module,
    loss_fn: nn.Module,
    loader: Any,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    device: torch.device,
    *,
    mixer: Any = None,
    mix_generator: torch.Generator | None = None,
    mixer_kwargs: dict[str, Any] | None = None,
    ema: Any = None,
    ema_source: nn.Module | None = None,
    max_steps: int | None = None,
    grad_clip: float | None = None,
    progress: bool = False,
    desc: str = "train",
    on_step: Callable[[dict[str, Any]], None] | None = None,
    reduce: bool = True,
    scaler: Any = None,
    sync_every: int | None = None,
) -> dict[str, float]:
    """Train ``forward`` for one pass over ``loader`` (at most ``max_steps`` iterations).

    Args:
        forward: The (possibly DDP-wrapped) :class:`~ltzoo.engine.objective.TrainForward`.
        loss_fn: Loss built with ``reduction="none"``.
        loader: Training loader (its sampler's ``set_epoch`` already called).
        optimizer: The optimizer.
        scheduler: Per-iteration LR scheduler (stepped after every optimizer step) or None.
        device: Where batches go.
        mixer, mix_generator, mixer_kwargs: See :func:`~ltzoo.engine.objective.compute_loss`.
        ema: An EMA (``update(model)``) or None.
        ema_source: The bare model the EMA follows.
        max_steps: Stop after this many iterations.
        grad_clip: Clip the global gradient norm to this value.
        progress: Show a tqdm bar.
        desc: Bar label.
        on_step: Called after each iteration with ``{"step", "loss"}`` (may raise to interrupt).
        reduce: Average the loss over all ranks (a collective: every rank must call this epoch);
            False for work done by one rank alone (BTM's per-rank fine-tuning).
        scaler: A ``torch.amp.GradScaler`` for fp16 training, or None.
        sync_every: Read the loss back to the host (finiteness check, progress bar) only every this
            many iterations, at the last one and when ``on_step`` is given, so the loop never waits
            for the device in between. None: 50 on GPUs; 1 on the CPU (free there; a non-finite loss
            is then caught before its step).

    Returns:
        ``{"loss": mean loss over all ranks' samples, "steps": iterations}``.
    """
    forward.train()
    total = torch.zeros(2, dtype=torch.float64, device=device)  # (sum of loss * n, n), kept on the device
    steps = 0
    limit = len(loader) if max_steps is None else min(len(loader), max_steps)
    every = (1 if device.type == "cpu" else 50) if sync_every is None else max(1, int(sync_every))
    bar = tqdm(total=limit, desc=desc, disable=not progress, leave=False, dynamic_ncols=True)
    try:
        for batch in loader:
            if steps >= limit:
                break
            batch = to_device(batch, device)
            out = compute_loss(forward, loss_fn, batch, mixer, mix_generator, mixer_kwargs)
            loss = out.loss.detach()
            if every == 1 and not bool(torch.isfinite(loss)):  # before the step: the weights stay finite
                _not_finite(desc, loss, steps + 1)
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:  # fp16: scaled backward, unscale before clipping, skip steps that overflow
                scaler.scale(out.loss).backward()
                if grad_clip is not None:
                    scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(forward.parameters(), grad_clip)
                scaler.step(optimizer)
                scaler.update()
            else:
                out.loss.backward()
                if grad_clip is not None:
                    nn.utils.clip_grad_norm_(forward.parameters(), grad_clip)
                optimizer.step()
            if scheduler is not None:
                scheduler.step()
            if ema is not None:
                ema.update(ema_source)
            n = batch[0].shape[0]
            total[0] += loss.to(torch.float64) * n
            total[1] += n
            steps += 1
            bar.update(1)
            if on_step is not None or steps % every == 0 or steps == limit:
                value = float(loss)  # the only host read of the loop
                if every > 1 and not math.isfinite(value):
                    _not_finite(desc, loss, steps)
                bar.set_postfix(loss=f"{value:.4f}", lr=f"{optimizer.param_groups[0]['lr']:.4g}")
                if on_step is not None:
                    on_step({"step": steps, "loss": value})
    finally:
        bar.close()
    if reduce:
        total = all_reduce_sum(total)  # nccl reduces CUDA tensors only: total lives on the device
    total = total.cpu()
    return {"loss": float(total[0] / total[1].clamp_min(1)), "steps": steps}


def _not_finite(desc: str, loss: torch.Tensor, step: int) -> None:
    raise FloatingPointError(f"{desc}: the loss became {float(loss)} at iteration {step}; lower the learning rate "
                             "or check the data")
