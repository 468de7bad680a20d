"""The training objective in one place: plain, mixed-label and feature-space losses.

Three kinds of loss meet the mixers here:

* Losses on logits, ``loss(logits, target)`` ("ce", "logit_adjusted", "balanced_softmax",
  "class_balanced", "udal"): with a mixer the loss is ``lam * L(y_a) + (1 - lam) * L(y_b)`` per
  sample (built with ``reduction="none"``), then averaged.
* "mixed_singleton", ``loss(logits, y_a, y_b, lam)``: the mixed label is the target itself (BMLS).
* Feature-space losses (``takes_features``: "dot_regression"), ``loss(pooled_features, target)``:
  the forward stops before the head (``pre_logits``) and the loss applies the head itself.

:class:`TrainForward` gives DistributedDataParallel ONE forward that returns either output, so
gradients of every path are synchronised.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import nn

__all__ = ["AUTOCAST_DTYPES", "TrainForward", "StepOutput", "compute_loss", "mixed_loss", "takes_features",
           "is_mixed_label_loss", "mixer_extras"]


AUTOCAST_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class TrainForward(nn.Module):
    """``forward(x, features=False)``: logits, or the pooled features (the head's input) with ``features=True``.

    With a reduced ``precision`` the model runs under ``torch.autocast`` and its output is cast back
    to fp32, so the loss (the mixed-singleton loss, DR, ...) always computes in fp32.

    Args:
        model: A model with timm's ``forward_features`` / ``forward_head(x, pre_logits)``.
        precision: "fp32", "bf16" or "fp16".
        channels_last: Feed 4-D inputs in the channels-last memory format (convert the model too).
    """

    def __init__(self, model: nn.Module, precision: str = "fp32", channels_last: bool = False) -> None:
        super().__init__()
        if precision not in AUTOCAST_DTYPES:
            raise ValueError(f"precision must be one of {tuple(AUTOCAST_DTYPES)}, got {precision!r}")
        self.model = model
        self.autocast_dtype = AUTOCAST_DTYPES[precision]
        self.channels_last = bool(channels_last)

    def forward(self, x: torch.Tensor, features: bool = False) -> torch.Tensor:
        if self.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.autocast_dtype is None:
            return self.model.forward_head(self.model.forward_features(x), pre_logits=features)
        with torch.autocast(device_type=x.device.type, dtype=self.autocast_dtype):
            out = self.model.forward_head(self.model.forward_features(x), pre_logits=features)
        return out.float()


@dataclass
class StepOutput:
    """What :func:`compute_loss` returns: the scalar loss, the model output and the targets used."""

    loss: torch.Tensor
    output: torch.Tensor
    y_a: torch.Tensor
    y_b: torch.Tensor | None = None
    lam: torch.Tensor | None = None


def takes_features(loss_fn: nn.Module) -> bool:
    """True for losses called on pooled features ("dot_regression", or ``loss_fn.takes_features``)."""
    from ltzoo.losses.dot_regression import DotRegressionLoss

    return bool(getattr(loss_fn, "takes_features", isinstance(loss_fn, DotRegressionLoss)))


def is_mixed_label_loss(loss_fn: nn.Module) -> bool:
    """True for losses called as ``loss(logits, y_a, y_b, lam)`` ("mixed_singleton")."""
    from ltzoo.losses.mixed_singleton import MixedSingletonLoss

    return bool(getattr(loss_fn, "mixed_labels", isinstance(loss_fn, MixedSingletonLoss)))


def _per_sample(value: torch.Tensor, batch: int, loss_fn: nn.Module) -> torch.Tensor:
    if value.shape != (batch,):
        raise ValueError(f"{type(loss_fn).__name__} returned shape {tuple(value.shape)}; the recipe needs one loss "
                         f"per sample ({batch},): build it with reduction='none'")
    return value


def mixed_loss(loss_fn: nn.Module, output: torch.Tensor, y_a: torch.Tensor, y_b: torch.Tensor | None = None,
               lam: torch.Tensor | None = None) -> torch.Tensor:
    """Per-sample loss (B,) of a (possibly mixed) batch.

    Args:
        loss_fn: A loss built with ``reduction="none"``.
        output: Logits (B, K), or pooled features for a feature-space loss.
        y_a: Target labels (B,).
        y_b: Partner labels (B,) of a mixed batch, or None.
        lam: (B,) weight of ``y_a`` in a mixed batch, or None.

    Returns:
        "mixed_singleton": ``loss(output, y_a, y_b, lam)``; other losses:
        ``lam * L(y_a) + (1 - lam) * L(y_b)`` (just ``L(y_a)`` for an unmixed batch).
    """
    b = output.shape[0]
    if is_mixed_label_loss(loss_fn):
        if y_b is None or lam is None:
            raise ValueError("the 'mixed_singleton' loss trains on mixed labels: use a mixer (e.g. 'mixup' with the "
                             "'bmls' sampler)")
        return _per_sample(loss_fn(output, y_a, y_b, lam), b, loss_fn)
    if y_b is not None and callable(getattr(loss_fn, "prepare", None)):
        # Feature-space losses that normalise first (dot-regression: the ETF head's BatchNorm) do it
        # ONCE per mixed batch, then score both targets, so BN statistics move once per step.
        h = loss_fn.prepare(output)
        loss_a = _per_sample(loss_fn.loss_on_prepared(h, y_a), b, loss_fn)
        lam = lam.to(device=loss_a.device, dtype=loss_a.dtype)
        return lam * loss_a + (1.0 - lam) * _per_sample(loss_fn.loss_on_prepared(h, y_b), b, loss_fn)
    loss_a = _per_sample(loss_fn(output, y_a), b, loss_fn)
    if y_b is None:
        return loss_a
    lam = lam.to(device=loss_a.device, dtype=loss_a.dtype)
    return lam * loss_a + (1.0 - lam) * _per_sample(loss_fn(output, y_b), b, loss_fn)


def mixer_extras(mixer: Any, model: nn.Module) -> dict[str, Any]:
    """Keyword arguments a mixer needs from the recipe: ``model=`` (the bare model) for CAM-based mixers."""
    if mixer is None:
        return {}
    try:
        params = inspect.signature(mixer.__call__).parameters
    except (TypeError, ValueError):
        return {}
    return {"model": model} if "model" in params else {}


def compute_loss(forward: nn.Module, loss_fn: nn.Module, batch: Sequence[torch.Tensor], mixer: Any = None,
                 generator: torch.Generator | None = None, mixer_kwargs: dict[str, Any] | None = None) -> StepOutput:
    """Forward a batch and return the mean training loss.

    Args:
        forward: A :class:`TrainForward` (possibly DDP-wrapped), called as ``forward(x, features=...)``.
        loss_fn: The loss, built with ``reduction="none"``.
        batch: ``(x, y)``, or ``(x, y, partner_x, partner_y)`` from a pair sampler ("bmls" +
            ``PairedDataset``); tensors already on the device.
        mixer: A mixer or None. Paired batches need one: the partner is passed explicitly.
        generator: The mixer's random generator (its state is saved with the checkpoint).
        mixer_kwargs: Extra mixer arguments (see :func:`mixer_extras`).

    Returns:
        A :class:`StepOutput` with the scalar loss.
    """
    x, y = batch[0], batch[1]
    partner_x, partner_y = (batch[2], batch[3]) if len(batch) >= 4 else (None, None)
    features = takes_features(loss_fn)
    if mixer is None:
        if partner_x is not None:
            raise ValueError("the sampler yields index pairs (e.g. 'bmls'); set a mixer (e.g. 'mixup') to mix them")
        output = forward(x, features=features)
        return StepOutput(mixed_loss(loss_fn, output, y).mean(), output, y)
    mb = mixer(x, y, partner_x=partner_x, partner_y=partner_y, generator=generator, **dict(mixer_kwargs or {}))
    output = forward(mb.x, features=features)
    per_sample = mixed_loss(loss_fn, output, mb.y_a, mb.y_b, mb.lam)
    if callable(getattr(loss_fn, "kept", None)):  # "mixed_singleton" masking same-class pairs: mean over the rest
        kept = loss_fn.kept(mb.y_a, mb.y_b)
        return StepOutput(per_sample.sum() / kept.sum().clamp_min(1), output, mb.y_a, mb.y_b, mb.lam)
    return StepOutput(per_sample.mean(), output, mb.y_a, mb.y_b, mb.lam)
