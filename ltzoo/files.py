"""Files of a saved checkpoint folder: names, atomic writes, and safetensors-only weight I/O.

Low-level (imports nothing of ltzoo): backbones read timm weights with it, the Hub layer
reads and writes model folders with it.

Weights are read only from safetensors files. A file is checked before it is parsed: its name
must end in ``.safetensors``, and its content must be an 8-byte little-endian header length, a
JSON header and exactly the tensor bytes that header describes. Pickle and zip (``torch.save``)
files are refused, never unpickled.
"""
from __future__ import annotations

import json
import os
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch

__all__ = ["WEIGHTS_NAME", "CONFIG_NAME", "CARD_NAME", "PLOT_NAME", "PICKLE_SUFFIXES", "TEMP_PREFIX",
           "atomic_path", "temp_path_for", "seal_file", "clean_stale_temps", "fsync_file", "write_bytes_atomic", "check_safetensors_file", "read_safetensors", "read_safetensors_metadata", "write_safetensors"]

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
CARD_NAME = "README.md"
PLOT_NAME = "per_class_accuracy.png"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".tar", ".npz", ".h5")
_MAX_HEADER_BYTES = 100 * 1024 * 1024  # the safetensors format's own limit


TEMP_PREFIX = ".ltzoo-tmp-"  # ltzoo's temporary files: .ltzoo-tmp-<pid>-<random>-<final name>


def _umask_mode() -> int:
    """The mode a plain ``open()`` would give a new file: 0o666 minus the user's umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists (another user's process) or cannot tell: keep its file
    return True


def clean_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Remove ltzoo's temporary files in ``folder`` left by processes that are no longer running.

    Only names ``.ltzoo-tmp-<pid>-...`` are considered, and only those whose ``<pid>`` is not alive;
    nothing else in the folder is touched.

    Args:
        folder: The folder to clean.

    Returns:
        The removed paths.
    """
    folder, removed = Path(folder), []
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        if not entry.name.startswith(TEMP_PREFIX) or not entry.is_file():
            continue
        pid = entry.name[len(TEMP_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            try:
                entry.unlink()
                removed.append(entry)
            except FileNotFoundError:
                pass
    return removed


def fsync_file(path: str | os.PathLike) -> None:
    """Flush a written file's data to disk (before it is renamed into place)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_path_for(final: str | os.PathLike) -> Path:
    """A fresh name for ltzoo's temporary file next to ``final`` (``.ltzoo-tmp-<pid>-<random>-<name>``)."""
    final = Path(final)
    return final.with_name(f"{TEMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:12]}-{final.name}")


def seal_file(path: str | os.PathLike) -> None:
    """Give a written temporary file the user's umask mode and fsync it (before it is renamed into place)."""
    os.chmod(path, _umask_mode())
    fsync_file(path)


@contextmanager
def atomic_path(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh temporary path next to ``final``; on success move it onto ``final`` (os.replace).

    The temporary name starts with :data:`TEMP_PREFIX` and the writer's pid, so a later write to
    the same folder removes what an interrupted process left (:func:`clean_stale_temps`). The
    file is fsynced and given the user's umask mode (as ``config.json`` gets) before the rename.
    On any error the temporary file is removed and ``final`` is left as it was.
    """
    final = Path(final)
    clean_stale_temps(final.parent)
    tmp = temp_path_for(final)
    try:
        yield tmp
        seal_file(tmp)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes_atomic(final: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``final`` atomically (a failed write leaves no partial file)."""
    with atomic_path(final) as tmp:
        with open(tmp, "xb") as f:
            f.write(data)


def _refuse_pickle(path: Path, why: str) -> ValueError:
    return ValueError(
        f"refusing to unpickle {path}: {why}. ltzoo loads weights only from safetensors files "
        f"(model.safetensors) and never runs pickle; convert trusted checkpoints with "
        f"safetensors.torch.save_file(model.state_dict(), 'model.safetensors')"
    )


def check_safetensors_file(path: str | os.PathLike) -> dict:
    """Check that ``path`` is a complete safetensors file without parsing any tensor.

    Args:
        path: The weights file.

    Returns:
        The parsed JSON header.

    Raises:
        ValueError: "refusing to unpickle ..." for a pickle/zip file or a name not ending in
            ``.safetensors``; "... is not a valid safetensors file ..." for a truncated or corrupted one.
        FileNotFoundError: If the file does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    size = path.stat().st_size
    with open(path, "rb") as f:
        prefix = f.read(8)
        n = int.from_bytes(prefix, "little") if len(prefix) == 8 else -1
        # A safetensors file is an 8-byte header length followed by a JSON object. Decide on that
        # first: a valid length's low byte may well be 0x80, the first byte of a pickle.
        fits = 2 <= n <= _MAX_HEADER_BYTES and 8 + n <= size
        json_next = f.read(1) == b"{"
        if not (fits and json_next) and (prefix[:1] == b"\x80" or prefix[:4] == b"PK\x03\x04"):
            raise _refuse_pickle(path, "it is a pickle / torch.save file, not safetensors")
        if path.suffix != ".safetensors":
            raise _refuse_pickle(path, f"its name does not end in '.safetensors' (suffix {path.suffix!r})")
        invalid = f"{path} is not a valid safetensors file"
        if len(prefix) < 8:
            raise ValueError(f"{invalid}: only {size} bytes, shorter than the 8-byte header length (truncated?)")
        if not fits:
            raise ValueError(f"{invalid}: header length {n} does not fit a {size}-byte file (truncated or corrupted)")
        f.seek(8)
        try:
            header = json.loads(f.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"{invalid}: its header is not JSON ({e}); the file is corrupted") from None
    if not isinstance(header, dict):
        raise ValueError(f"{invalid}: its header is not a JSON object")
    end = 0
    for key, info in header.items():
        if key == "__metadata__":
            continue
        offsets = info.get("data_offsets") if isinstance(info, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)):
            raise ValueError(f"{invalid}: tensor {key!r} has no valid data_offsets (corrupted header)")
        end = max(end, offsets[1])
    if 8 + n + end != size:
        raise ValueError(
            f"{invalid}: the header describes {end} bytes of tensor data but the file holds {size - 8 - n} "
            "(truncated or corrupted download?)"
        )
    return header


def read_safetensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load a state dict from a safetensors file on the CPU, after :func:`check_safetensors_file`.

    Raises:
        ValueError: As :func:`check_safetensors_file`, or if safetensors cannot decode the file.
    """
    from safetensors.torch import load_file

    check_safetensors_file(path)
    try:
        return load_file(str(path), device="cpu")
    except Exception as e:  # safetensors raises its own SafetensorError
        raise ValueError(f"{path} is not a valid safetensors file: {e}") from None


def read_safetensors_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The ``__metadata__`` strings of a safetensors file ({} when it has none), after :func:`check_safetensors_file`."""
    meta = check_safetensors_file(path).get("__metadata__") or {}
    return {str(k): str(v) for k, v in meta.items()} if isinstance(meta, dict) else {}


def write_safetensors(state_dict: dict[str, torch.Tensor], path: str | os.PathLike,
                      metadata: dict[str, str] | None = None, atomic: bool = True) -> None:
    """Write a state dict to ``path`` as safetensors (contiguous CPU copies, no shared storage).

    Args:
        state_dict: Name -> tensor.
        path: Target file.
        metadata: String metadata stored in the header.
        atomic: Through :func:`atomic_path` (fsynced temporary file + rename); False writes ``path``
            directly (for a caller that stages its own temporary file).
    """
    from safetensors.torch import save_file

    tensors, seen = {}, set()
    for key, value in state_dict.items():
        t = value.detach().to("cpu").contiguous()
        ptr = t.untyped_storage().data_ptr() if t.numel() else None
        if ptr is not None and ptr in seen:
            t = t.clone()  # safetensors refuses tensors that share memory
            ptr = t.untyped_storage().data_ptr()
        seen.add(ptr)
        tensors[key] = t
    if not atomic:
        save_file(tensors, str(path), metadata=metadata)
        return
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
