"""What a downloaded ``config.json`` may ask for: allow-listed backbone arguments and cfg fields, full validation.

A Hub repository is untrusted input. Its ``model_args.backbone_args`` reach the backbone factory
(for timm backbones, ``timm.create_model``), so a hostile config could set ``checkpoint_path``
(timm would ``torch.load`` a file before ltzoo's safetensors loader runs) or ``pretrained: true``
(another download). Only the arguments below, with number / bool values, are accepted from a
config; the ``pretrained_cfg`` may only hold the fields ltzoo writes (and harmless timm display
fields). The rest of the config is validated as strictly as on save (:class:`PretrainedConfig`).
Arguments a user passes to ``create_model`` in code are not restricted.
"""
from __future__ import annotations

import inspect
from typing import Any, Mapping

from ltzoo.registry import BACKBONES

__all__ = ["TIMM_BACKBONE_ARGS", "PRETRAINED_CFG_FIELDS", "allowed_backbone_args", "check_backbone_args",
           "check_pretrained_cfg_fields", "validate_loaded_config"]

# keyword arguments of timm models that only change regularisation (never files, downloads or code)
TIMM_BACKBONE_ARGS = frozenset({"drop_path_rate", "drop_rate", "drop_block_rate"})
_NEVER = frozenset({"pretrained", "in_chans", "checkpoint_path", "pretrained_cfg", "pretrained_cfg_overlay",
                    "cache_dir", "file", "url"})
# the fields PretrainedConfig.to_pretrained_cfg writes, default-cfg fields, and timm's descriptive fields
PRETRAINED_CFG_FIELDS = frozenset({
    "architecture", "tag", "hf_hub_id", "num_classes", "input_size", "mean", "std", "crop_pct", "interpolation",
    "license", "description", "paper_name", "origin_url", "library", "head", "revision", "class_counts", "groups",
    "metrics", "per_class_top1", "extra_metrics", "recipe", "paper", "classifier", "first_conv",
    "test_input_size", "min_input_size", "fixed_input_size", "test_crop_pct", "crop_mode", "pool_size", "notes",
    "paper_ids", "label_names", "label_descriptions",
})


def allowed_backbone_args(arch: str) -> frozenset[str]:
    """The backbone arguments a config may set for ``arch``: the factory's own keyword arguments
    (e.g. resnet32's ``width``, WRN's ``drop_rate``) and, for a factory forwarding ``**kwargs`` to
    timm, :data:`TIMM_BACKBONE_ARGS`; never ``pretrained`` / ``in_chans`` / file or cfg arguments."""
    params = inspect.signature(BACKBONES.get(arch)).parameters.values()
    names = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    if any(p.kind == p.VAR_KEYWORD for p in params):
        names |= TIMM_BACKBONE_ARGS
    return frozenset(names - _NEVER)


def check_backbone_args(arch: str, backbone_args: Any, origin: str) -> dict[str, Any]:
    """Refuse backbone arguments of a downloaded config that are not allow-listed for ``arch``.

    Args:
        arch: The ltzoo architecture.
        backbone_args: ``model_args.backbone_args`` of the config.
        origin: The config's source (named in errors).

    Returns:
        The arguments as a dict.

    Raises:
        ValueError: Naming the refused argument(s) and the allowed ones.
    """
    if backbone_args is None:
        return {}
    if not isinstance(backbone_args, Mapping):
        raise ValueError(f"{origin}: config.json model_args.backbone_args must be an object, "
                         f"got {type(backbone_args).__name__}")
    allowed = allowed_backbone_args(arch)
    refused = sorted(str(k) for k in backbone_args if k not in allowed)
    if refused:
        raise ValueError(f"{origin}: config.json model_args.backbone_args sets {refused}, which a downloaded config "
                         f"may not set for {arch!r} (allowed: {sorted(allowed) or 'none'})")
    for key, value in backbone_args.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            if not isinstance(value, bool):
                raise ValueError(f"{origin}: config.json model_args.backbone_args[{key!r}] must be a number, "
                                 f"got {value!r}")
    return dict(backbone_args)


def check_pretrained_cfg_fields(cfg: Mapping[str, Any], origin: str, extra: frozenset[str] = frozenset()) -> None:
    """Refuse ``pretrained_cfg`` fields outside :data:`PRETRAINED_CFG_FIELDS` (``file``, ``url``, ``state_dict``, ...).

    Raises:
        ValueError: Naming the refused fields.
    """
    refused = sorted(str(k) for k in cfg if k not in PRETRAINED_CFG_FIELDS and k not in extra)
    if refused:
        raise ValueError(f"{origin}: config.json pretrained_cfg sets {refused}, which a downloaded config may not set "
                         "(weight locations and loaders are decided by the caller, never by the file)")


def validate_loaded_config(arch: str, model_args: Mapping[str, Any], cfg: Mapping[str, Any], origin: str) -> None:
    """Validate a loaded config as :class:`~ltzoo.hub.configs.PretrainedConfig` validates one before saving
    (metrics in [0, 100], class_counts / per_class of length num_classes, mean / std lengths, sizes).

    Raises:
        ValueError: Prefixed with ``origin``.
    """
    from ltzoo.hub.configs import PretrainedConfig

    args = dict(model_args)
    fields = dict(
        arch=arch, tag=cfg.get("tag"), num_classes=cfg.get("num_classes"), head=args.pop("head", cfg.get("head", "fc")),
        head_args=args.pop("head_args", None) or {}, model_args=args, input_size=cfg.get("input_size"),
        mean=cfg.get("mean"), std=cfg.get("std"), crop_pct=cfg.get("crop_pct"), interpolation=cfg.get("interpolation"),
        class_counts=cfg.get("class_counts"), groups=cfg.get("groups"), metrics=cfg.get("metrics"),
        per_class=cfg.get("per_class_top1"), extra_metrics=cfg.get("extra_metrics"), recipe=cfg.get("recipe"),
        paper=cfg.get("paper"), license=cfg.get("license"), description=cfg.get("description"),
        hf_hub_id=cfg.get("hf_hub_id"), revision=cfg.get("revision"),
    )
    try:
        PretrainedConfig(**fields)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{origin}: config.json is invalid: {e}") from None
