"""Training checkpoints: atomic writes, ``weights_only`` loads, RNG state capture.

A checkpoint is a dict of tensors, numbers, strings, lists and dicts only, so it loads with
``torch.load(path, weights_only=True)``: no class is ever unpickled. RNG states are stored as
tensors (torch, CUDA) and plain lists of ints (numpy's legacy MT19937, Python's ``random``).
Writing goes to a temporary file in the same folder, flushed and fsynced, then
``os.replace`` moves it over the target: a crash mid-write leaves the previous checkpoint intact.
"""
from __future__ import annotations

import os
import pickle
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ltzoo.files import atomic_path

__all__ = ["save_checkpoint", "load_checkpoint", "capture_rng_state", "restore_rng_state", "write_atomic"]


def _atomic(path: str | os.PathLike, write: Any) -> Path:
    """Call ``write(file)`` on ltzoo's temporary file next to ``path``, fsync, then ``os.replace`` it onto ``path``
    (:func:`ltzoo.files.atomic_path`: the user's umask mode, stale temporary files of dead processes removed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        with open(tmp, "xb") as f:
            write(f)
    return path


def write_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``.

    Args:
        path: Target file (its folder is created).
        data: Bytes to write.

    Returns:
        The path.
    """
    return _atomic(path, lambda f: f.write(data))


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Save ``state`` atomically with ``torch.save`` (a crash mid-write leaves the old file intact).

    Args:
        path: Target file, e.g. ``run/last.pt``.
        state: Tensors, numbers, strings, bools, None, and lists / dicts of them (what
            ``weights_only=True`` loading accepts).

    Returns:
        The path.
    """
    return _atomic(path, lambda f: torch.save(state, f))


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`, with ``weights_only=True`` (never unpickles code).

    Args:
        path: The file.
        map_location: Where tensors go (default CPU).

    Returns:
        The state dict.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    size = path.stat().st_size
    if size == 0:
        raise ValueError(f"checkpoint {path} is empty (0 bytes): an interrupted copy? Delete it or train again")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != b"PK\x03\x04":  # torch.save writes a zip archive
        raise ValueError(f"checkpoint {path} is not a torch.save file (it does not start with a zip header); "
                         "is it a safetensors model, or another program's file?")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:  # weights_only refused a class: a foreign (or hostile) file
        found = re.search(r"Unsupported global: [^\n]*?(?=\.? *(?:This|Please|Check|$))", str(e), re.M)
        detail = found.group(0).strip() if found else "it holds objects other than tensors and plain values"
        raise ValueError(f"checkpoint {path} is not an ltzoo training checkpoint: weights_only loading refused it "
                         f"({detail}); ltzoo never unpickles code") from None
    except Exception as e:  # truncated zip, bad records, ...
        why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"checkpoint {path} ({size} bytes) cannot be read: {why} "
                         "(truncated or corrupted, or not written by ltzoo)") from None
    if not isinstance(state, dict):
        raise ValueError(f"checkpoint {path} does not hold a checkpoint dict (got {type(state).__name__})")
    return state


def capture_rng_state() -> dict[str, Any]:
    """The states of torch's CPU (and CUDA) RNG, numpy's global RNG and Python's ``random``.

    Returns:
        ``{"torch": ByteTensor, "cuda": [ByteTensor, ...], "numpy": [...], "python": [...]}``, all
        loadable with ``weights_only=True``.
    """
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": list(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() else [],
        "numpy": [str(name), [int(k) for k in keys], int(pos), int(has_gauss), float(gauss)],
        "python": [int(version), [int(v) for v in internal], gauss_next],
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`capture_rng_state` returned (CUDA states only where CUDA is present)."""
    torch.set_rng_state(torch.as_tensor(state["torch"], dtype=torch.uint8).cpu())
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([torch.as_tensor(s, dtype=torch.uint8).cpu() for s in cuda])
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), int(pos), int(has_gauss), float(gauss)))
    version, internal, gauss_next = state["python"]
    random.setstate((int(version), tuple(int(v) for v in internal), gauss_next))
