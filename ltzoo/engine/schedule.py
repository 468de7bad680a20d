"""Learning-rate schedules: linear warm-up, then cosine, multi-step, constant or FixMatch's cosine.

The schedule is a ``torch.optim.lr_scheduler.LambdaLR`` stepped once per ITERATION (call
``scheduler.step()`` after every ``optimizer.step()``), so cosine decay is smooth within an
epoch; milestones are given in epochs and take effect at the first iteration of that epoch.
Warm-up is per epoch by default, as LDAM-DRW's code (which the BMLS paper's "linearly warmed up"
follows): lr x (epoch + 1) / W during epochs 0 .. W-1, constant within an epoch;
``warmup_mode="iteration"`` ramps per iteration instead, (t + 1) / (W x steps per epoch). Its ``state_dict`` holds only the iteration counter and learning rates (the multiplier
is a closure rebuilt from the config), so it loads with ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import bisect
import math
from typing import Callable, Sequence

import torch
from torch.optim.lr_scheduler import LambdaLR

__all__ = ["lr_multiplier", "build_scheduler", "WARMUP_MODES"]

WARMUP_MODES = ("epoch", "iteration")


def lr_multiplier(
    schedule: str,
    total_steps: int,
    steps_per_epoch: int,
    warmup_epochs: float = 0.0,
    milestones: Sequence[int] = (),
    gamma: float = 0.1,
    min_lr_ratio: float = 0.0,
    warmup_mode: str = "epoch",
) -> Callable[[int], float]:
    """The factor applied to the base learning rate at iteration ``t`` (0-based).

    Args:
        schedule: "cosine": 0.5 (1 + cos(pi p)) decayed from 1 to ``min_lr_ratio`` over the
            iterations after warm-up (p in [0, 1]); "step": ``gamma`` ** (milestones passed),
            milestones in epochs; "constant": 1; "fixmatch": cos(7 pi t / (16 T)) (FixMatch,
            BEM), with t counted after warm-up.
        total_steps: T, iterations of the whole run (>= 1).
        steps_per_epoch: Iterations per epoch (>= 1), converts epochs to iterations.
        warmup_epochs: Linear warm-up length W in epochs (see ``warmup_mode``).
        warmup_mode: "epoch" (LDAM-DRW): factor min(1, (e + 1) / W) in epoch e = t // steps_per_epoch
            while t < round(W * steps_per_epoch); "iteration": (t + 1) / round(W * steps_per_epoch).
        milestones: Epochs at which "step" multiplies by ``gamma``.
        gamma: Multiplier per milestone.
        min_lr_ratio: Final factor of "cosine" (min_lr / lr).

    Returns:
        A function of the iteration index.
    """
    if total_steps < 1 or steps_per_epoch < 1:
        raise ValueError(f"total_steps and steps_per_epoch must be >= 1, got {total_steps} and {steps_per_epoch}")
    if warmup_mode not in WARMUP_MODES:
        raise ValueError(f"warmup_mode must be one of {WARMUP_MODES}, got {warmup_mode!r}")
    warmup = min(int(round(warmup_epochs * steps_per_epoch)), total_steps)
    marks = sorted(int(m) * steps_per_epoch for m in milestones)

    def factor(t: int) -> float:
        if t < warmup:
            if warmup_mode == "epoch":  # LDAM-DRW: lr * epoch / 5 for 1-based epochs 1..5
                return min(1.0, (t // steps_per_epoch + 1) / warmup_epochs)
            return (t + 1) / warmup
        span = max(total_steps - warmup, 1)
        p = min(max(t - warmup, 0) / span, 1.0)
        if schedule == "cosine":
            return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * p))
        if schedule == "step":
            return gamma ** bisect.bisect_right(marks, t)
        if schedule == "fixmatch":
            return math.cos(7.0 * math.pi * p / 16.0)
        if schedule == "constant":
            return 1.0
        raise ValueError(f"unknown schedule {schedule!r}")

    factor(0)  # fail now on an unknown schedule
    return factor


def build_scheduler(optimizer: torch.optim.Optimizer, schedule: str, epochs: int, steps_per_epoch: int,
                    warmup_epochs: float = 0.0, milestones: Sequence[int] = (), gamma: float = 0.1,
                    min_lr: float = 0.0, warmup_mode: str = "epoch") -> LambdaLR:
    """A per-iteration ``LambdaLR`` for ``optimizer`` (see :func:`lr_multiplier`).

    Args:
        optimizer: Its param groups' ``lr`` is the peak learning rate.
        schedule: "cosine", "step", "constant" or "fixmatch".
        epochs: Epochs of the run.
        steps_per_epoch: Iterations per epoch.
        warmup_epochs, milestones, gamma, warmup_mode: See :func:`lr_multiplier`.
        min_lr: Final learning rate of "cosine" (relative to the first group's lr).

    Returns:
        The scheduler; call ``step()`` once per iteration.
    """
    base = optimizer.param_groups[0]["lr"]
    ratio = min_lr / base if base > 0 else 0.0
    fn = lr_multiplier(schedule, epochs * steps_per_epoch, steps_per_epoch, warmup_epochs, milestones, gamma, ratio,
                       warmup_mode)
    return LambdaLR(optimizer, fn)
