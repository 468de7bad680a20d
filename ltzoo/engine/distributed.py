"""Process-group set-up for the recipes: torchrun environment, DDP wrapping, rank-0 helpers.

``torchrun --nproc_per_node=N`` sets RANK, WORLD_SIZE and LOCAL_RANK; :func:`init_distributed`
reads them and starts a process group (gloo on CPU, nccl on CUDA). Without them everything
runs in one process and every helper here is a no-op. The samplers read rank and world size
from ``torch.distributed`` themselves; running estimates use ``ltzoo.distributed.all_reduce_sum``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from ltzoo.distributed import all_reduce_sum, is_distributed, rank_and_world_size

__all__ = [
    "DistInfo", "init_distributed", "teardown", "is_main_process", "barrier", "wrap_ddp", "unwrap",
    "resolve_device", "broadcast_object", "gather_objects", "all_reduce_sum", "is_distributed",
]


@dataclass(frozen=True)
class DistInfo:
    """Rank (global), world size, local rank and this process's device."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device


def resolve_device(device: str = "auto", local_rank: int = 0) -> torch.device:
    """"auto": ``cuda:<local_rank>`` when CUDA is available, else CPU; "cuda" means ``cuda:<local_rank>``."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        return torch.device("cuda", local_rank)
    return torch.device(device)


def init_distributed(device: str = "auto", timeout_s: float = 1800.0) -> DistInfo:
    """Start the default process group from the torchrun environment, if there is one.

    Safe to call more than once and in a plain single process (then it returns rank 0 of 1).

    Args:
        device: "auto", "cpu", "cuda" or "cuda:N"; CUDA selects nccl, CPU gloo.
        timeout_s: Collective timeout.

    Returns:
        The :class:`DistInfo` of this process.
    """
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and dist.is_available() and not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group(backend=backend, timeout=timedelta(seconds=timeout_s))
    rank, world = rank_and_world_size()
    return DistInfo(rank, world, local_rank, dev)


def teardown() -> None:
    """Destroy the default process group if one is initialised."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def is_main_process() -> bool:
    """True on rank 0 (and in a single process)."""
    return rank_and_world_size()[0] == 0


def barrier() -> None:
    """Wait for every process (no-op in a single process)."""
    if is_distributed():
        dist.barrier()


def wrap_ddp(module: nn.Module, device: torch.device, **kwargs: Any) -> nn.Module:
    """``DistributedDataParallel(module)`` under a process group, else ``module`` unchanged.

    Args:
        module: The module whose forward the training step calls.
        device: Its device (``device_ids`` is set for CUDA).
        **kwargs: Passed to DDP (e.g. ``find_unused_parameters=True``).
    """
    if not is_distributed():
        return module
    ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=ids, **kwargs)


def unwrap(module: nn.Module) -> nn.Module:
    """The module inside a DDP wrapper (or the module itself)."""
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every rank (picklable objects; identity in a single process)."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj`` in rank order, on every rank (``[obj]`` in a single process)."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out
