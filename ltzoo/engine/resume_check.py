"""Before resuming: does a training checkpoint fit the run being built? A clear error naming the field.

A checkpoint of another model, head, loss or class count would otherwise fail inside
``load_state_dict`` with torch's trace (or, worse, load partly), after data and model were built.
"""
from __future__ import annotations

from typing import Any, Mapping

from torch import nn

__all__ = ["STRUCTURE_FIELDS", "check_checkpoint_fits"]

# config fields that decide the shapes of the saved model / loss / optimizer state
STRUCTURE_FIELDS = ("model", "head", "loss", "model_args")


def check_checkpoint_fits(state: Mapping[str, Any], cfg: Mapping[str, Any], num_classes: int, model: nn.Module,
                          origin: str = "the checkpoint") -> None:
    """Refuse a checkpoint whose model / head / loss / class count or weight shapes differ from the run's.

    Args:
        state: The loaded checkpoint dict (``config``, ``num_classes``, ``model`` entries).
        cfg: The run's config as a dict.
        num_classes: The run's class count.
        model: The freshly built model.
        origin: How to name the checkpoint in messages (its path).

    Raises:
        ValueError: Naming the first field that differs (checkpoint value vs. run value), or the
            weights whose names or shapes differ.
    """
    saved = state.get("config")
    if not isinstance(saved, Mapping) or not isinstance(state.get("model"), Mapping):
        raise ValueError(f"{origin} has no 'config' / 'model' entries: not an ltzoo training checkpoint")
    for field in STRUCTURE_FIELDS:
        if field in saved and field in cfg and saved[field] != cfg[field]:
            raise ValueError(f"cannot resume from {origin}: its {field} is {saved[field]!r} but this run's "
                             f"{field} is {cfg[field]!r}; resume with the same {field} or use another output_dir")
    if "num_classes" in state and int(state["num_classes"]) != int(num_classes):
        raise ValueError(f"cannot resume from {origin}: it was trained for num_classes={state['num_classes']} "
                         f"but this run's data has {num_classes} classes")
    own, theirs = model.state_dict(), state["model"]
    missing, unexpected = sorted(set(own) - set(theirs)), sorted(set(theirs) - set(own))
    shapes = [f"{k} (checkpoint {tuple(theirs[k].shape)}, model {tuple(v.shape)})" for k, v in own.items()
              if k in theirs and hasattr(theirs[k], "shape") and tuple(theirs[k].shape) != tuple(v.shape)]
    if missing or unexpected or shapes:
        parts = [f"{label}: {', '.join(keys[:5])}{' ...' if len(keys) > 5 else ''}" for label, keys in
                 (("missing", missing), ("unexpected", unexpected), ("shape mismatches", shapes)) if keys]
        raise ValueError(f"cannot resume from {origin}: its model weights do not fit this run's model "
                         f"({'; '.join(parts)})")
