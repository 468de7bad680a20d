"""``create_model`` and ``list_models``: models by architecture name, "arch.tag", "hf-hub:" or "local-dir:".

Building a model may resolve pretrained names (registered tags, Hub repositories, local folders)
and load their weights, so this sits in the Hub layer, above :mod:`ltzoo.models` (which only
defines :class:`~ltzoo.models.LTModel`).
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
from timm.models import build_model_with_cfg

from ltzoo.hub.config_safety import check_backbone_args
from ltzoo.hub.configs import PRETRAINED, split_pretrained_cfg
from ltzoo.hub.load import load_pretrained_weights
from ltzoo.hub.resolve import resolve_model
from ltzoo.models import LTModel
from ltzoo.registry import BACKBONES
from ltzoo.validation import check_num_classes

__all__ = ["create_model", "list_models", "MAX_IN_CHANS"]

MAX_IN_CHANS = 1024  # input channels; more is a typo, not an image


def create_model(
    model_name: str,
    head: str | None = None,
    num_classes: int | None = None,
    pretrained: bool = False,
    **kwargs: Any,
) -> LTModel:
    """Build a backbone + pooling + head model by name, optionally with pretrained weights.

    Args:
        model_name: A registered backbone name (``ltzoo.list_models()``); "arch.tag" for registered
            weights (``ltzoo.list_models(pretrained=True)``); "hf-hub:org/name[@revision]" or
            "local-dir:/path" for a folder written by :func:`ltzoo.save_pretrained`.
        head: A registered head name (``ltzoo.list_heads()``); defaults to the checkpoint's head, else "fc".
        num_classes: Number of classes; defaults to the checkpoint's (or the architecture's default).
            A different number re-initialises only the head.
        pretrained: Load the weights: a tag's or a repository's ``model.safetensors`` (from the Hub
            cache, the Hub, or, when the Hub cannot be reached, a local copy of the tag, with a
            warning); for a plain architecture, the backbone's own pretrained weights where it has
            them (timm's ImageNet weights).
        **kwargs: Passed to :class:`LTModel` (``global_pool``, ``drop_rate``, ``in_chans``,
            ``backbone_args``, ``head_args``); also ``cache_dir``, ``revision`` and ``token`` (for
            ``hf_hub_download``) and timm's ``pretrained_cfg`` / ``pretrained_cfg_overlay``.

    Returns:
        The model, with ``pretrained_cfg`` set (timm's fields plus ltzoo's: metrics, class counts, ...).
    """
    hub = {k: kwargs.pop(k, None) for k in ("cache_dir", "revision", "token")}
    pcfg = kwargs.get("pretrained_cfg")
    if isinstance(pcfg, Mapping) and pcfg.get("source") in ("hf-hub", "local-dir"):  # timm read a downloaded config:
        check_backbone_args(model_name, kwargs.get("backbone_args"), str(pcfg.get("hf_hub_id") or pcfg.get("file")))
    in_chans = kwargs.get("in_chans", 3)
    if isinstance(in_chans, bool) or not isinstance(in_chans, (int, np.integer)) or not 1 <= in_chans <= MAX_IN_CHANS:
        raise ValueError(f"in_chans must be an integer in [1, {MAX_IN_CHANS}], got {in_chans!r}")
    kwargs.pop("pretrained_model_args", None)  # timm's record of model_args, already merged into kwargs
    resolved = resolve_model(model_name, kwargs.pop("pretrained_cfg", None), kwargs.pop("pretrained_cfg_overlay", None),
                             **hub)
    args = {**resolved.model_args, **kwargs}
    args["head"] = head or args.get("head") or "fc"
    if num_classes is None:
        num_classes = resolved.pretrained_cfg["num_classes"]
    check_num_classes(num_classes)
    timm_cfg, extras = split_pretrained_cfg(resolved.pretrained_cfg)
    model = build_model_with_cfg(
        LTModel, resolved.arch, pretrained=False, pretrained_cfg=timm_cfg, backbone=resolved.arch,
        num_classes=num_classes, pretrained_backbone=bool(pretrained) and resolved.weights is None, **args,
    )
    model.pretrained_cfg.update(extras)
    if pretrained and resolved.weights is not None:
        load_pretrained_weights(model, resolved, hub["cache_dir"], hub["token"])
    return model


def list_models(include: str | list[str] = "*", exclude: str | list[str] | None = None,
                pretrained: bool = False) -> list[str]:
    """Model architectures (or, with ``pretrained=True``, registered "arch.tag" weights) matching the filters."""
    if pretrained:
        return PRETRAINED.list(include, exclude)
    return BACKBONES.list(include, exclude)
