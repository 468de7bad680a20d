"""One keying helper for every on-disk cache: what produced it -> a short hex key.

Low-level (imports only torch and the standard library). A cache entry (extracted features,
fine-tuned weights, decoded images, ...) is valid only for the exact source it was computed from
and the settings used, so its key hashes both:

    key = cache_key(source, **settings)

``source`` is the *content* of what the cache derives from, not its name: a path to a file
(hashed by its bytes), a state dict / ``nn.Module`` (hashed by every tensor's name, dtype, shape
and bytes), raw ``bytes``, or a key returned by an earlier ``cache_key`` / :func:`content_hash`
call (a hex string, used as is). ``settings`` are JSON-serialisable values (numbers, strings,
lists, dicts; numpy / 0-d tensor scalars are converted) such as the subset indices' hash, seeds,
epochs, learning rates or image size. The key is the first 24 hex digits of a sha256 over the
source hash and the canonical JSON of the settings (sorted keys), so equal inputs give equal
keys across processes and machines, and any change of source or settings gives a new key.

Typical use: put the key in the cache file name (``features_<key>.safetensors``), or store it in
the file's metadata and compare on load (:func:`key_matches`). A different stage-1 model or a
changed setting then never silently reuses an old entry.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Mapping

import torch

__all__ = ["KEY_LENGTH", "content_hash", "cache_key", "key_matches"]

KEY_LENGTH = 24
_HEX = re.compile(r"^[0-9a-f]{16,64}$")


def _tensor_bytes(t: torch.Tensor) -> bytes:
    t = t.detach().to("cpu").contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.numpy().tobytes() if t.numel() else b""


def content_hash(source: Any) -> str:
    """The sha256 hex digest of a source's content.

    Args:
        source: A file path (``str`` / ``PathLike`` naming an existing file; its bytes), ``bytes``,
            a ``torch.Tensor``, a state dict (``Mapping[str, Tensor]``), an ``nn.Module`` (its state
            dict), or a hex digest from an earlier call (returned unchanged).

    Returns:
        64 hex digits.

    Raises:
        TypeError: For any other source.
        FileNotFoundError: For a path that is not a file.
    """
    if isinstance(source, str) and _HEX.match(source):
        return source
    h = hashlib.sha256()
    if isinstance(source, (bytes, bytearray)):
        h.update(bytes(source))
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"cache source {str(path)!r} is not a file (cache keys hash a file's content)")
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    elif isinstance(source, torch.Tensor):
        h.update(f"{source.dtype}{tuple(source.shape)}".encode())
        h.update(_tensor_bytes(source))
    elif isinstance(source, (torch.nn.Module, Mapping)):
        state = source.state_dict() if isinstance(source, torch.nn.Module) else source
        for name in sorted(state):
            value = state[name]
            if not isinstance(value, torch.Tensor):
                raise TypeError(f"cache source state dict entry {name!r} is {type(value).__name__}, not a tensor")
            h.update(f"{name}|{value.dtype}|{tuple(value.shape)}|".encode())
            h.update(_tensor_bytes(value))
    else:
        raise TypeError("cache source must be a file path, bytes, a tensor, a state dict, an nn.Module or a "
                        f"hex digest, got {type(source).__name__}")
    return h.hexdigest()


def _plain(value: Any, name: str) -> Any:
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if hasattr(value, "item") and hasattr(value, "dtype") and getattr(value, "ndim", 1) == 0:
        return value.item()  # numpy scalar
    if hasattr(value, "tolist") and hasattr(value, "dtype"):
        return value.tolist()  # numpy array
    if isinstance(value, Mapping):
        return {str(k): _plain(v, f"{name}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, name) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, os.PathLike):
        return str(value)
    raise TypeError(f"cache setting {name!r} must be JSON-serialisable (numbers, strings, lists, dicts), "
                    f"got {type(value).__name__}")


def cache_key(source: Any, **settings: Any) -> str:
    """The key of a cache entry computed from ``source`` with ``settings``.

    Args:
        source: What the entry derives from (see :func:`content_hash`).
        **settings: Everything else that changes the entry (JSON-serialisable).

    Returns:
        :data:`KEY_LENGTH` hex digits.
    """
    payload = json.dumps({"source": content_hash(source), "settings": _plain(settings, "settings")},
                         sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:KEY_LENGTH]


def key_matches(metadata: Mapping[str, str] | None, key: str, field: str = "ltzoo_cache_key") -> bool:
    """Whether a cache file's metadata (e.g. a safetensors header's ``__metadata__``) records ``key``."""
    return bool(metadata) and metadata.get(field) == key
