"""Resolve a model name to its architecture, LTModel arguments, pretrained cfg and weights location.

Names: "arch" (no weights), "arch.tag" (registered weights on the Hub), "hf-hub:org/name[@revision]"
and "local-dir:/path" (architecture from the folder's config.json). timm's own resolution of
"hf-hub:" ids reaches the bridge entrypoints with a ``pretrained_cfg`` dict, handled here too.
Nothing is built and no weights are read here (see :mod:`ltzoo.hub.load`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ltzoo.backbones import default_cfg_for
from ltzoo.download import hub_file
from ltzoo.files import CONFIG_NAME
from ltzoo.folder_manifest import check_not_interrupted
from ltzoo.hub.config_safety import check_backbone_args, check_pretrained_cfg_fields, validate_loaded_config
from ltzoo.hub.configs import MODEL_ARG_NAMES, get_pretrained_config

__all__ = ["WeightsSource", "ResolvedModel", "resolve_model", "parse_config"]

# weight locations a downloaded config.json may not set (the caller decides where weights come from)
_LOCATION_KEYS = frozenset({"file", "url", "state_dict", "source", "hf_hub_filename", "custom_load"})


# fields timm itself adds to a pretrained cfg it resolved from "hf-hub:" / "local-dir:"
_TIMM_RESOLVED_FIELDS = frozenset({"source", "file", "hf_hub_id", "hf_hub_filename", "url", "custom_load",
                                   "state_dict", "license", "tag", "architecture"})


@dataclass
class WeightsSource:
    """Where weights live: a Hub repository (``repo_id``, ``revision``) or a local folder/file (``path``).

    ``local_name`` ("arch.tag") enables the fallback to a local model folder when the Hub is unreachable;
    ``num_classes`` is the class count of the saved head when known (a model with another count gets
    a fresh head), None to load strictly.
    """

    repo_id: str | None = None
    revision: str | None = None
    path: Path | None = None
    local_name: str | None = None
    num_classes: int | None = None


@dataclass
class ResolvedModel:
    """An architecture, its LTModel arguments, its pretrained cfg (timm + ltzoo fields), its weights."""

    arch: str
    model_args: dict[str, Any]
    pretrained_cfg: dict[str, Any]
    weights: WeightsSource | None


def _split_revision(repo_id: str, revision: str | None) -> tuple[str, str | None]:
    repo, _, rev = repo_id.partition("@")
    if rev and revision and rev != revision:
        raise ValueError(f"two revisions given for {repo!r}: {rev!r} in the id and revision={revision!r}")
    return repo, (rev or revision)


def parse_config(config: Mapping[str, Any], origin: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """Check an ltzoo ``config.json`` and return (arch, LTModel arguments, pretrained cfg).

    Raises:
        ValueError: If it is not an ltzoo config, names an unknown architecture (close matches are
            listed) or holds unknown model arguments.
    """
    from ltzoo.hub.timm_names import ltzoo_arch

    if not isinstance(config, Mapping) or "architecture" not in config:
        raise ValueError(f"{origin}: config.json has no 'architecture'; it is not a model config")
    if config.get("library_name") != "ltzoo":
        raise ValueError(f"{origin} is not an ltzoo checkpoint (config.json library_name is "
                         f"{config.get('library_name')!r}, expected 'ltzoo'); load timm checkpoints with timm.create_model")
    arch = ltzoo_arch(str(config["architecture"]))
    try:
        default_cfg_for(arch)
    except ValueError as e:
        raise ValueError(f"{origin}: config.json names architecture {config['architecture']!r}, "
                         f"which ltzoo does not know: {e}") from None
    model_args = dict(config.get("model_args") or {})
    unknown = sorted(set(model_args) - set(MODEL_ARG_NAMES))
    if unknown:
        raise ValueError(f"{origin}: config.json model_args holds unknown arguments {unknown}; allowed: {list(MODEL_ARG_NAMES)}")
    raw_cfg = config.get("pretrained_cfg") or {}
    if not isinstance(raw_cfg, Mapping):
        raise ValueError(f"{origin}: config.json pretrained_cfg must be an object, got {type(raw_cfg).__name__}")
    # weight locations are dropped (the caller decides where weights come from); other unknown fields refused
    cfg = {k: v for k, v in raw_cfg.items() if k not in _LOCATION_KEYS}
    check_pretrained_cfg_fields(cfg, origin)
    check_backbone_args(arch, model_args.get("backbone_args"), origin)  # no checkpoint_path, pretrained, ...
    cfg["architecture"] = arch
    if "num_classes" in config:
        cfg["num_classes"] = config["num_classes"]
    validate_loaded_config(arch, model_args, cfg, origin)  # as strict as on save
    return arch, model_args, cfg


def _read_json(path: Path, origin: str) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{origin}: config.json is not valid JSON ({e})") from None


def _from_source(source: str, ident: str, revision: str | None, cache_dir: Any, token: Any) -> ResolvedModel:
    if source == "hf-hub":
        repo_id, revision = _split_revision(ident, revision)
        origin = f"hf-hub:{repo_id}"
        config = _read_json(hub_file(repo_id, CONFIG_NAME, revision, cache_dir, token), origin)
        weights = WeightsSource(repo_id=repo_id, revision=revision)
        extra = {"source": "hf-hub", "hf_hub_id": ident}
    else:
        folder = Path(ident).expanduser()
        if not (folder / CONFIG_NAME).is_file():
            raise FileNotFoundError(f"local-dir:{ident}: no {CONFIG_NAME} in {folder}")
        origin = f"local-dir:{folder}"
        check_not_interrupted(folder)  # an interrupted save is refused (hashes are checked after loading)
        config = _read_json(folder / CONFIG_NAME, origin)
        weights = WeightsSource(path=folder)
        extra = {"source": "local-dir", "file": str(folder)}
    arch, model_args, cfg = parse_config(config, origin)
    weights.num_classes = cfg.get("num_classes")
    return ResolvedModel(arch, model_args, {**cfg, **extra}, weights)


def _weights_in(cfg: Mapping[str, Any], revision: str | None) -> WeightsSource | None:
    """The weights a timm-style cfg names: ``file`` (unless its source is the Hub), else ``hf_hub_id``."""
    num_classes = cfg.get("num_classes")
    if cfg.get("file") and cfg.get("source") != "hf-hub":
        return WeightsSource(path=Path(cfg["file"]), num_classes=num_classes)
    if cfg.get("hf_hub_id"):
        return WeightsSource(*_split_revision(cfg["hf_hub_id"], revision), num_classes=num_classes)
    return None


def resolve_model(model_name: str, pretrained_cfg: Any = None, overlay: Mapping[str, Any] | None = None,
                  cache_dir: Any = None, revision: str | None = None, token: Any = None) -> ResolvedModel:
    """Resolve a model name (and timm's ``pretrained_cfg`` / ``pretrained_cfg_overlay``) without building it.

    Args:
        model_name: "arch", "arch.tag", "hf-hub:org/name[@rev]" or "local-dir:/path".
        pretrained_cfg: A tag string, or the dict timm passes after resolving an "hf-hub:" id.
        overlay: Entries replacing those of the resolved cfg (``file=...`` loads that safetensors file).
        cache_dir, revision, token: Passed to ``hf_hub_download`` when config.json is fetched.

    Returns:
        The :class:`ResolvedModel`.
    """
    from timm.models import parse_model_name

    source, ident = parse_model_name(model_name) if ":" in model_name else (None, model_name)
    if source is not None:
        resolved = _from_source(source, ident, revision, cache_dir, token)
    else:
        arch, _, tag = model_name.partition(".")
        if isinstance(pretrained_cfg, str) and pretrained_cfg and not tag:
            tag = pretrained_cfg
        if tag:
            cfg = get_pretrained_config(f"{arch}.{tag}")
            weights = WeightsSource(*_split_revision(cfg.repo_id, revision or cfg.revision), local_name=cfg.name,
                                    num_classes=cfg.num_classes)
            resolved = ResolvedModel(arch, cfg.ltzoo_model_args(), cfg.to_pretrained_cfg(), weights)
        elif isinstance(pretrained_cfg, Mapping) and pretrained_cfg:  # e.g. timm after resolving "hf-hub:"
            cfg = dict(pretrained_cfg)
            if cfg.get("source") in ("hf-hub", "local-dir") and cfg.get("library") != "ltzoo":
                raise ValueError(f"{cfg.get('hf_hub_id') or cfg.get('file')} is not an ltzoo checkpoint")
            if cfg.get("source") in ("hf-hub", "local-dir"):  # timm read a downloaded config.json
                check_pretrained_cfg_fields({k: v for k, v in cfg.items() if v is not None}, str(cfg.get("hf_hub_id")),
                                            extra=_TIMM_RESOLVED_FIELDS)
            resolved = ResolvedModel(arch, {}, {**default_cfg_for(arch), **cfg, "architecture": arch},
                                     _weights_in(cfg, revision))
        else:
            resolved = ResolvedModel(arch, {}, {**default_cfg_for(arch), "architecture": arch}, None)
    if overlay:
        resolved.pretrained_cfg.update(overlay)
        resolved.weights = _weights_in({k: overlay.get(k) for k in ("file", "hf_hub_id", "num_classes")},
                                       revision) or resolved.weights
    return resolved
