"""Forward passes that use batch statistics but leave BatchNorm's running statistics alone.

A training step that runs extra no-gradient forwards (BEM's pseudo-label forward of the weak
views) must not move the running mean / variance or ``num_batches_tracked`` more than once per
step, as a plain FixMatch step (one forward of [A_w(x), A_w(u), A_s(u)]) does. Inside
:func:`frozen_norm_stats` every BatchNorm layer still normalises with the statistics of the
batch it sees (train-mode behaviour), but its running buffers are neither read nor written.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

__all__ = ["frozen_norm_stats"]


@contextmanager
def frozen_norm_stats(model: nn.Module) -> Iterator[None]:
    """Within the block, BatchNorm layers of ``model`` in train mode use batch statistics only.

    Turns ``track_running_stats`` off on every ``_BatchNorm`` (BatchNorm1d/2d/3d, SyncBatchNorm)
    for the duration of the block and restores each flag afterwards, so ``running_mean``,
    ``running_var`` and ``num_batches_tracked`` stay exactly as they were. Layers in eval mode
    keep normalising with their running statistics (which they never update anyway).

    Args:
        model: Any module (the bare model, not a DDP wrapper).

    Yields:
        Nothing; use as ``with frozen_norm_stats(model): logits = model(x)``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    # Only train-mode layers that track statistics change behaviour; an eval-mode layer with
    # track_running_stats False would switch to batch statistics, so it is left untouched.
    layers = [m for m in model.modules() if isinstance(m, _BatchNorm) and m.training and m.track_running_stats]
    for m in layers:
        m.track_running_stats = False
    try:
        yield
    finally:
        for m in layers:
            m.track_running_stats = True
