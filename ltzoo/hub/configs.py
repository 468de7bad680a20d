"""Pretrained configs: one frozen :class:`PretrainedConfig` per "arch.tag" weights, in a strict registry.

A config names the Hub repository (``<org>/<arch>.<tag>``; the organisation is "ltzoo" unless
the environment variable ``LTZOO_HUB_ORG`` names a fork), the head and model arguments, the
input size and normalisation, the training class counts, the recipe, the paper, the license and
the measured metrics. :meth:`PretrainedConfig.to_pretrained_cfg` feeds timm's ``PretrainedCfg``
(its own fields) plus ltzoo's fields (``metrics``, ``class_counts``, ...), which travel in
``config.json`` and in ``model.pretrained_cfg``.
"""
from __future__ import annotations

import copy
import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from timm.models import PretrainedCfg

from ltzoo.backbones import default_cfg_for
from ltzoo.hub.records import check_extra_metrics, check_metrics, check_per_class, jsonable
from ltzoo.registry import HEADS, Registry
from ltzoo.validation import check_class_counts, check_num_classes

__all__ = [
    "DEFAULT_ORG", "ORG_ENV", "MODEL_DIR_ENV", "MODEL_ARG_NAMES", "PretrainedConfig", "PRETRAINED",
    "hub_org", "local_model_dirs", "register_pretrained", "unregister_pretrained", "get_pretrained_config",
    "split_pretrained_cfg", "check_repo_id",
]

DEFAULT_ORG = "ltzoo"
ORG_ENV = "LTZOO_HUB_ORG"
MODEL_DIR_ENV = "LTZOO_MODEL_DIR"
MODEL_ARG_NAMES = ("head", "head_args", "global_pool", "drop_rate", "in_chans", "backbone_args")
_TIMM_FIELDS = frozenset(f.name for f in dataclasses.fields(PretrainedCfg))
_TUPLE_FIELDS = ("input_size", "test_input_size", "min_input_size", "mean", "std")
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_TAG = re.compile(r"^[A-Za-z0-9_-][\w.-]*$")
MAX_INPUT_SIDE = 8192  # pixels per side; MAX_INPUT_CHANNELS channels: a larger config is refused, not allocated
MAX_INPUT_CHANNELS = 1024


def check_repo_id(repo_id: str, name: str = "repo_id") -> str:
    """Return ``repo_id`` if it is a Hub id "org/name" (no "..", no leading "." or "-", no other "/").

    Raises:
        ValueError: Naming ``name`` and the expected form.
    """
    if (not isinstance(repo_id, str) or not _REPO_ID.match(repo_id) or ".." in repo_id
            or repo_id.split("/")[1].startswith((".", "-")) or repo_id.endswith(".")):
        raise ValueError(f"{name} must look like 'org/name' (letters, digits, '_', '-', '.'; no '..'), got {repo_id!r}")
    return repo_id


def _check_input_size(size: Any) -> tuple[int, int, int]:
    """``input_size`` as (C, H, W) of positive ints within MAX_INPUT_CHANNELS / MAX_INPUT_SIDE."""
    try:
        values = tuple(size)
    except TypeError:
        raise ValueError(f"input_size must be (channels, height, width), got {size!r}") from None
    if len(values) != 3 or any(isinstance(v, bool) or not float(v).is_integer() for v in values):
        raise ValueError(f"input_size must be three integers (channels, height, width), got {size!r}")
    c, h, w = (int(v) for v in values)
    if not (1 <= c <= MAX_INPUT_CHANNELS and 1 <= h <= MAX_INPUT_SIDE and 1 <= w <= MAX_INPUT_SIDE):
        raise ValueError(f"input_size must be within (1..{MAX_INPUT_CHANNELS}, 1..{MAX_INPUT_SIDE}, "
                         f"1..{MAX_INPUT_SIDE}), got {size!r}")
    return c, h, w


def _check_stats(value: Any, name: str) -> tuple[float, ...]:
    """``mean`` / ``std`` as a non-empty tuple of finite floats (std > 0)."""
    import math

    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a list of numbers (one per channel), got {value!r}") from None
    if not out or not all(math.isfinite(v) for v in out) or (name == "std" and min(out) <= 0):
        raise ValueError(f"{name} must be a non-empty list of finite numbers{' > 0' if name == 'std' else ''}, "
                         f"got {value!r}")
    return out


def hub_org() -> str:
    """The Hub organisation of ltzoo's weights: ``$LTZOO_HUB_ORG`` or "ltzoo"."""
    return os.environ.get(ORG_ENV, "").strip() or DEFAULT_ORG


def local_model_dirs() -> list[Path]:
    """Folders holding local copies ``<folder>/<arch.tag>/``: ``$LTZOO_MODEL_DIR``, then the repository's model_cards/."""
    dirs = [Path(os.environ[MODEL_DIR_ENV]).expanduser()] if os.environ.get(MODEL_DIR_ENV) else []
    import ltzoo

    return dirs + [Path(ltzoo.__file__).resolve().parents[1] / "model_cards"]


def split_pretrained_cfg(cfg: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a pretrained-cfg dict into (timm ``PretrainedCfg`` fields, ltzoo's extra fields)."""
    timm_part = {k: (tuple(v) if k in _TUPLE_FIELDS and isinstance(v, list) else v)
                 for k, v in cfg.items() if k in _TIMM_FIELDS}
    return timm_part, {k: v for k, v in cfg.items() if k not in _TIMM_FIELDS}


@dataclass(frozen=True)
class PretrainedConfig:
    """What ltzoo records about one set of weights (validated on construction).

    Args:
        arch: Registered backbone name.
        tag: Data-and-recipe tag ("cifar10_lt_r100_bmls_ms"); None for untagged weights.
        num_classes: Classes of the head; defaults to the architecture's default.
        head: Registered head name.
        head_args: Head keyword arguments (JSON-serialisable).
        model_args: Other :class:`~ltzoo.models.LTModel` arguments (global_pool, drop_rate, in_chans,
            backbone_args).
        input_size, mean, std, crop_pct, interpolation: Data config; default to the architecture's.
        class_counts: Training images per class.
        groups: The many / medium / few split the metrics use (a record of :mod:`ltzoo.metrics.groups`,
            e.g. ``{"ranges": {"many": [0, 2], "medium": [3, 6], "few": [7, 9]}}``).
        metrics: The test-set metrics block (see :mod:`ltzoo.hub.records`).
        per_class: Per-class top-1 accuracy on that test set (percentages); needs ``class_counts``.
        extra_metrics: Other named measurement blocks (e.g. BTM stage-1 numbers).
        recipe: Training recipe (a name or a JSON-serialisable dict).
        paper: The paper (a title, or a dict with "title", "url", "bibtex").
        license: License identifier of the weights.
        description: One paragraph for the model card.
        hf_hub_id: Hub repository; defaults to ``<hub_org()>/<arch>.<tag>`` for tagged weights.
        revision: Hub revision (branch, tag or commit) to download.
    """

    arch: str
    tag: str | None = None
    num_classes: int | None = None
    head: str = "fc"
    head_args: Mapping[str, Any] = field(default_factory=dict)
    model_args: Mapping[str, Any] = field(default_factory=dict)
    input_size: tuple[int, int, int] | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    crop_pct: float | None = None
    interpolation: str | None = None
    class_counts: tuple[float, ...] | None = None
    groups: Mapping[str, Any] | None = None
    metrics: Mapping[str, Any] | None = None
    per_class: tuple[float | None, ...] | None = None
    extra_metrics: Mapping[str, Any] | None = None
    recipe: Any = None
    paper: Any = None
    license: str | None = "apache-2.0"
    description: str | None = None
    hf_hub_id: str | None = None
    revision: str | None = None

    def __post_init__(self) -> None:
        base = default_cfg_for(self.arch)  # ValueError with close matches for an unknown arch
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731  (frozen dataclass)
        if self.tag is not None and (not isinstance(self.tag, str) or not self.tag or self.tag != self.tag.strip()):
            raise ValueError(f"tag must be a non-empty string without surrounding spaces, got {self.tag!r}")
        if self.tag is not None and (not _TAG.match(self.tag) or ".." in self.tag or self.tag.endswith(".")):  # it becomes part of a Hub repo id and a folder name
            raise ValueError(f"tag may hold only letters, digits, '_', '-' and '.' (not starting with '.'), "
                             f"got {self.tag!r}")
        set_("num_classes", check_num_classes(base["num_classes"] if self.num_classes is None else self.num_classes))
        HEADS.get(self.head)
        set_("head_args", jsonable(dict(self.head_args), "head_args"))
        unknown = sorted(set(self.model_args) - set(MODEL_ARG_NAMES[2:]))
        if unknown:
            raise ValueError(f"model_args may only hold {list(MODEL_ARG_NAMES[2:])}, got {unknown}")
        set_("model_args", jsonable(dict(self.model_args), "model_args"))
        size = tuple(self.input_size or base["input_size"])
        if "in_chans" in self.model_args:
            size = (int(self.model_args["in_chans"]),) + size[1:]
        set_("input_size", _check_input_size(size))
        for key in ("mean", "std", "crop_pct", "interpolation"):
            value = getattr(self, key)
            value = base.get(key) if value is None else value
            set_(key, _check_stats(value, key) if key in ("mean", "std") else value)
        chans = self.input_size[0]
        if len(self.mean) != len(self.std) or len(self.mean) not in {1, 3, chans}:
            raise ValueError(f"mean and std must have one entry per input channel ({chans}, or 1 / 3), got "
                             f"{len(self.mean)} and {len(self.std)}")
        if self.class_counts is not None:
            counts = check_class_counts(self.class_counts, num_classes=self.num_classes)
            set_("class_counts", tuple(int(c) if float(c).is_integer() else float(c) for c in counts))
        if self.groups is not None:
            from ltzoo.metrics.groups import check_group_split

            set_("groups", check_group_split(self.groups, self.num_classes))
        if self.metrics is not None:
            set_("metrics", check_metrics(self.metrics))
        if self.per_class is not None:
            if self.class_counts is None:
                raise ValueError("per_class needs class_counts (the per-class plot sorts classes by training count)")
            set_("per_class", check_per_class(self.per_class, self.num_classes))
        if self.extra_metrics is not None:
            set_("extra_metrics", check_extra_metrics(self.extra_metrics))
        if isinstance(self.paper, str):
            set_("paper", {"title": self.paper})
        for key in ("recipe", "paper"):
            if getattr(self, key) is not None:
                set_(key, jsonable(getattr(self, key), key))
        if self.hf_hub_id is not None:
            check_repo_id(self.hf_hub_id, "hf_hub_id")

    @property
    def name(self) -> str:
        """"arch.tag" (or "arch" for untagged weights)."""
        return f"{self.arch}.{self.tag}" if self.tag else self.arch

    @property
    def repo_id(self) -> str | None:
        """The Hub repository: ``hf_hub_id`` or ``<hub_org()>/<arch>.<tag>`` (read at call time)."""
        if self.hf_hub_id:
            return self.hf_hub_id
        return check_repo_id(f"{hub_org()}/{self.name}", f"the repository id derived from ${ORG_ENV} and the tag") \
            if self.tag else None

    def ltzoo_model_args(self) -> dict[str, Any]:
        """The :class:`~ltzoo.models.LTModel` keyword arguments (``config.json``'s ``model_args``)."""
        return copy.deepcopy({"head": self.head, "head_args": dict(self.head_args), **self.model_args})

    def to_pretrained_cfg(self) -> dict[str, Any]:
        """timm ``PretrainedCfg`` fields plus ltzoo's fields, JSON-serialisable, ``None`` values left out."""
        paper = dict(self.paper or {})
        cfg = {
            "architecture": self.arch, "tag": self.tag, "hf_hub_id": self.repo_id, "num_classes": self.num_classes,
            "input_size": list(self.input_size), "mean": list(self.mean), "std": list(self.std),
            "crop_pct": self.crop_pct, "interpolation": self.interpolation, "license": self.license,
            "description": self.description, "paper_name": paper.get("title"), "origin_url": paper.get("url"),
            # ltzoo's fields (not timm's PretrainedCfg fields)
            "library": "ltzoo", "head": self.head, "revision": self.revision,
            "class_counts": list(self.class_counts) if self.class_counts is not None else None,
            "groups": dict(self.groups) if self.groups is not None else None,
            "metrics": dict(self.metrics) if self.metrics is not None else None,
            "per_class_top1": list(self.per_class) if self.per_class is not None else None,
            "extra_metrics": self.extra_metrics, "recipe": self.recipe, "paper": self.paper or None,
        }
        for key, value in default_cfg_for(self.arch).items():  # classifier, first_conv, ...
            cfg.setdefault(key, value)
        return copy.deepcopy(jsonable({k: v for k, v in cfg.items() if v is not None}, "pretrained_cfg"))


class _WeightsRegistry(Registry):
    """The registry of "arch.tag" names (a Registry whose names contain one '.')."""

    def register(self, name: str | None = None, obj: Any = None):
        if obj is None or not isinstance(name, str):
            raise TypeError("register pretrained weights with register_pretrained(name, cfg)")
        if name in self._entries:
            raise ValueError(f"pretrained weights {name!r} are already registered; unregister them first")
        self._entries[name] = obj
        return obj

    def unregister(self, name: str) -> Any:
        if name not in self._entries:
            raise ValueError(self._unknown_message(name))
        return self._entries.pop(name)

    def _unknown_message(self, name: str) -> str:
        import difflib

        close = difflib.get_close_matches(name, list(self._entries), n=5, cutoff=0.4)
        hint = f"; closest: {', '.join(close)}" if close else ""
        return f"no pretrained weights named {name!r}{hint}; available: {', '.join(sorted(self._entries)) or '(none yet)'}"


PRETRAINED = _WeightsRegistry("pretrained weights")


def register_pretrained(name: str, cfg: PretrainedConfig | Mapping[str, Any] | None = None,
                        **fields: Any) -> PretrainedConfig:
    """Register the pretrained config of weights ``name`` = "arch.tag".

    Args:
        name: "arch.tag"; ``arch`` must be a registered backbone, and the name must not be one timm has.
        cfg: A :class:`PretrainedConfig` (its arch and tag must match ``name``) or a dict of its fields.
        **fields: More :class:`PretrainedConfig` fields (with a dict ``cfg`` or none).

    Returns:
        The registered config.

    Raises:
        ValueError: For a name without a tag, an unknown architecture, a name already registered
            (here or in timm), or an invalid field.
    """
    import timm

    arch, _, tag = str(name).partition(".")
    if not arch or not tag:
        raise ValueError(f"pretrained weights are named 'arch.tag', got {name!r}")
    if timm.list_pretrained(name):
        raise ValueError(f"{name!r} is a timm pretrained name; ltzoo never overwrites timm names")
    if isinstance(cfg, PretrainedConfig):
        if fields or (cfg.arch, cfg.tag) != (arch, tag):
            raise ValueError(f"cfg describes {cfg.name!r} (pass no extra fields), not {name!r}")
    else:
        cfg = PretrainedConfig(arch=arch, tag=tag, **{**dict(cfg or {}), **fields})
    return PRETRAINED.register(name, cfg)


def unregister_pretrained(name: str) -> PretrainedConfig:
    """Remove weights ``name`` from the registry (tests, forks); return their config."""
    return PRETRAINED.unregister(name)


def get_pretrained_config(name: str) -> PretrainedConfig:
    """The registered config of "arch.tag" (ValueError naming close matches when unknown)."""
    return PRETRAINED.get(name)
