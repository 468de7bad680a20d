"""``create_model`` and ``list_models``: models by architecture name, "arch.tag", "hf-hub:" or "local-dir:".

Building a model may resolve pretrained names (registered tags, Hub repositories, local folders)
and load their weights, so this sits in the Hub layer, above :mod:`ltzoo.models` (which only
defines :class:`~ltzoo.models.LTModel`).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from timm.models import build_model_with_cfg
from timm.models._features import FeatureGetterNet
from torch import nn

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
    pretrained: bool | str | os.PathLike = False,
    **kwargs: Any,
) -> LTModel:
    """Build a backbone + pooling + head model by name, optionally with pretrained weights.

    Args:
        model_name: A registered backbone name (``ltzoo.list_models()``); "arch.tag" for registered
            weights (``ltzoo.list_models(pretrained=True)``); "hf-hub:org/name[@revision]" or
            "local-dir:/path" for a folder written by :func:`ltzoo.save_pretrained`.
        head: A registered head name (``ltzoo.list_heads()``); defaults to the checkpoint's head, else "fc".
        num_classes: Number of classes; defaults to the checkpoint's (or the architecture's default).
            A different number re-initialises only the head; 0 gives an Identity head (pooled features).
        pretrained: Load the weights: a tag's or a repository's ``model.safetensors`` (from the Hub
            cache, the Hub, or, when the Hub cannot be reached, a local copy of the tag, with a
            warning); for a plain architecture, the backbone's own pretrained weights where it has
            them (timm's ImageNet weights). A path to a folder written by ``save_pretrained`` loads
            that folder (as ``"local-dir:<path>"``; its architecture must be ``model_name``'s).
        **kwargs: Passed to :class:`LTModel` (``global_pool``, ``drop_rate``, ``in_chans``,
            ``backbone_args``, ``head_args``); also ``cache_dir``, ``revision`` and ``token`` (for
            ``hf_hub_download``), timm's ``pretrained_cfg`` / ``pretrained_cfg_overlay``, and timm's
            ``features_only=True`` (with optional ``out_indices``) for a feature extractor returning
            the backbone's maps at those levels (``feature_info`` describes them).

    Returns:
        The model, with ``pretrained_cfg`` set (timm's fields plus ltzoo's: metrics, class counts, ...),
        or with ``features_only`` timm's ``FeatureGetterNet`` around it.
    """
    model_name, pretrained = _folder_as_local_dir(model_name, pretrained)
    features_only = bool(kwargs.pop("features_only", False))
    out_indices = kwargs.pop("out_indices", None)
    kwargs.pop("feature_cls", None)  # ltzoo's feature extractors are always timm's "getter" kind
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
    if num_classes != 0 or isinstance(num_classes, bool):  # 0: no classifier (pooled features), as in timm
        check_num_classes(num_classes)
    timm_cfg, extras = split_pretrained_cfg(resolved.pretrained_cfg)
    model = build_model_with_cfg(
        LTModel, resolved.arch, pretrained=False, pretrained_cfg=timm_cfg, backbone=resolved.arch,
        num_classes=num_classes, pretrained_backbone=bool(pretrained) and resolved.weights is None, **args,
    )
    model.pretrained_cfg.update(extras)
    model.pretrained_cfg["classifier"] = model.classifier_name()
    if pretrained and resolved.weights is not None:
        load_pretrained_weights(model, resolved, hub["cache_dir"], hub["token"])
    if features_only:
        return _feature_extractor(model, out_indices)
    return model


def _folder_as_local_dir(model_name: str, pretrained: Any) -> tuple[str, bool]:
    """``pretrained="path/to/folder"``: the same as ``"local-dir:path/to/folder"`` with ``pretrained=True``."""
    if isinstance(pretrained, bool) or pretrained is None:
        return model_name, bool(pretrained)
    if not isinstance(pretrained, (str, os.PathLike)):
        raise TypeError(f"pretrained must be a bool or a path to a saved model folder, got {type(pretrained).__name__}")
    folder = Path(pretrained)
    if not (folder / "config.json").is_file():
        raise ValueError(f"pretrained={str(pretrained)!r} is not a saved model folder (no config.json there); "
                         "pass pretrained=True, or a folder written by ltzoo.save_pretrained, or use "
                         "create_model('local-dir:/path/to/folder', pretrained=True)")
    resolved = resolve_model(f"local-dir:{folder}")
    arch = model_name.partition(".")[0]
    if ":" not in model_name and arch != resolved.arch:
        raise ValueError(f"the folder {str(folder)!r} holds a {resolved.arch!r} model, not {arch!r}; use "
                         f"create_model('local-dir:{folder}', pretrained=True)")
    return f"local-dir:{folder}", True


def _feature_extractor(model: LTModel, out_indices: Any) -> nn.Module:
    """timm's ``FeatureGetterNet`` over ``model.forward_intermediates`` (every level by default)."""
    levels = len(model.feature_info)
    indices = tuple(range(levels)) if out_indices is None else out_indices
    if isinstance(indices, int):
        if not 0 < indices <= levels:
            raise ValueError(f"out_indices as an int takes the last n levels, 1 <= n <= {levels}, got {indices}")
    elif not isinstance(indices, (list, tuple)) or not all(isinstance(i, int) and -levels <= i < levels for i in indices):
        raise ValueError(f"out_indices must be level indices in [{-levels}, {levels - 1}] (this backbone has "
                         f"{levels} levels, see feature_info), got {out_indices!r}")
    cfg = dict(model.pretrained_cfg)
    extractor = FeatureGetterNet(model, out_indices=indices, prune=False)
    extractor.pretrained_cfg = extractor.default_cfg = cfg
    return extractor


def list_models(include: str | list[str] = "*", exclude: str | list[str] | None = None,
                pretrained: bool = False) -> list[str]:
    """Model architectures (or, with ``pretrained=True``, registered "arch.tag" weights) matching the filters."""
    if pretrained:
        return PRETRAINED.list(include, exclude)
    return BACKBONES.list(include, exclude)
