"""Download weights (Hub cache, Hub, or a local copy of a tag) and load them strictly from safetensors.

Weights always come from ``model.safetensors`` through :func:`ltzoo.files.read_safetensors`;
timm's loaders (which may fall back to pickle files) are never used. Files are fetched with
huggingface_hub's ``hf_hub_download`` (cache, revision, offline mode, ``HF_ENDPOINT``).
"""
from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

from ltzoo.download import hub_errors, hub_file
from ltzoo.files import PICKLE_SUFFIXES, WEIGHTS_NAME, read_safetensors
from ltzoo.folder_manifest import check_folder
from ltzoo.hub.configs import local_model_dirs

if TYPE_CHECKING:
    from ltzoo.hub.resolve import ResolvedModel, WeightsSource

__all__ = ["hub_file", "load_pretrained_weights", "apply_state_dict", "check_finite", "LocalCopyWarning"]

_logger = logging.getLogger(__name__)


class LocalCopyWarning(UserWarning):
    """The Hub could not be reached and a local copy of the weights was loaded instead."""


def _unreachable_errors() -> tuple[type[BaseException], ...]:
    """Errors meaning "the Hub could not be reached" (offline mode, no connection, Hub down, not cached)."""
    errors: list[type[BaseException]] = [hub_errors()[0], ConnectionError, TimeoutError]
    try:
        import httpx2  # huggingface_hub's HTTP client: transport errors while downloading

        errors.append(httpx2.TransportError)
    except (ImportError, AttributeError):
        pass
    return tuple(errors)


def _local_copy(name: str) -> Path | None:
    for folder in local_model_dirs():
        if (folder / name / WEIGHTS_NAME).is_file():
            return folder / name
    return None


def _weights_file(weights: "WeightsSource", cache_dir: Any, token: Any) -> Path:
    if weights.path is not None:
        path = weights.path
        if path.is_dir():
            if not (path / WEIGHTS_NAME).is_file():
                pickles = sorted(p.name for p in path.iterdir() if p.suffix in PICKLE_SUFFIXES)
                why = f"; refusing to unpickle {pickles}" if pickles else ""
                raise FileNotFoundError(f"no {WEIGHTS_NAME} in {path}{why} (ltzoo loads only safetensors weights)")
            path = path / WEIGHTS_NAME
        return path
    not_cached = hub_errors()[0]
    try:
        return hub_file(weights.repo_id, WEIGHTS_NAME, weights.revision, cache_dir, token)
    except _unreachable_errors() as e:
        local = _local_copy(weights.local_name) if weights.local_name else None
        if local is None:
            if weights.local_name:
                looked = ", ".join(str(d / weights.local_name) for d in local_model_dirs())
                raise not_cached(f"{e}\nltzoo: no local copy of {weights.local_name} either (looked in {looked}).") from e
            raise
        warnings.warn(f"could not reach the Hugging Face Hub for {weights.repo_id} ({type(e).__name__}); "
                      f"loading the local copy of {weights.local_name} in {local}", LocalCopyWarning, stacklevel=4)
        return local / WEIGHTS_NAME


def apply_state_dict(model: nn.Module, state_dict: dict[str, Any], pretrained_num_classes: int | None,
                     origin: str, classifier: str = "head") -> None:
    """Load ``state_dict`` into ``model`` strictly; re-initialise only the head when num_classes differs.

    Raises:
        ValueError: Naming every missing key, unexpected key and shape mismatch.
    """
    own = model.state_dict()
    reinit = pretrained_num_classes is not None and int(pretrained_num_classes) != model.num_classes
    in_head = lambda k: k.startswith(classifier + ".")  # noqa: E731
    if reinit:
        state_dict = {k: v for k, v in state_dict.items() if not in_head(k)}
    expected = {k for k in own if not (reinit and in_head(k))}
    missing, unexpected = sorted(expected - set(state_dict)), sorted(set(state_dict) - set(own))
    shapes = [f"{k} (checkpoint {tuple(v.shape)}, model {tuple(own[k].shape)})"
              for k, v in state_dict.items() if k in own and tuple(v.shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        parts = [f"{label}: {', '.join(keys)}" for label, keys in
                 (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", shapes)) if keys]
        raise ValueError(f"weights in {origin} do not fit the model ({'; '.join(parts)})")
    model.load_state_dict(state_dict, strict=not reinit)
    if reinit:
        _logger.info("%s: %d-class weights loaded; the head was re-initialised for %d classes",
                     origin, pretrained_num_classes, model.num_classes)


def load_pretrained_weights(model: nn.Module, resolved: "ResolvedModel", cache_dir: Any = None,
                            token: Any = None) -> Path:
    """Fetch ``resolved.weights`` (Hub, cache, or local copy) and load them strictly; return the file used."""
    path = _weights_file(resolved.weights, cache_dir, token)
    state = read_safetensors(path)
    check_finite(state, str(path))
    apply_state_dict(model, state, resolved.weights.num_classes, str(path))
    if resolved.weights.path is not None and resolved.weights.path.is_dir():  # a local folder: its files must be the ones its last save wrote
        check_folder(path.parent)
    return path


def check_finite(state_dict: dict[str, Any], origin: str) -> None:
    """Refuse weights holding NaN or infinite values (a diverged run), naming the first such tensor.

    Raises:
        ValueError: Naming ``origin`` and the tensor.
    """
    for key, value in state_dict.items():
        if value.is_floating_point() and not bool(value.isfinite().all()):
            bad = int((~value.isfinite()).sum())
            raise ValueError(f"weights in {origin} hold {bad} NaN / infinite value(s) in {key!r} (a diverged run?); "
                             "refusing to load them")
