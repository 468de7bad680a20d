"""``TrainConfig``: every setting of a supervised long-tailed run, validated, JSON/YAML round-trip.

A config names the components (backbone, head, loss, sampler, mixer) as registry names with
keyword-argument dicts, the optimisation (SGD, warm-up, cosine / step schedule, EMA), the
evaluation and the data. ``from_dict`` refuses unknown keys, listing the valid ones, so a typo
in a config file fails loudly instead of being ignored.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ltzoo.validation import as_number

__all__ = ["TrainConfig", "load_config", "SCHEDULES", "DATA_NAMES"]

SCHEDULES = ("cosine", "step", "constant", "fixmatch")
DATA_NAMES = ("digits", "cifar10", "cifar100", "imagefolder")  # short names; every registered data set works too
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("fp32", "bf16", "fp16")


@dataclass
class TrainConfig:
    """Settings of one supervised run (stage 1, optionally a decoupled classifier stage 2).

    Attributes (components):
        model: Registered backbone name (``ltzoo.list_models()``).
        head: Registered head name ("fc", "ms", "etf", "wetf", "ms_wetf").
        num_classes: K; None takes the training set's number of classes.
        model_args: Extra :class:`~ltzoo.models.LTModel` keyword arguments (``backbone_args``,
            ``head_args``, ``drop_rate``, ``global_pool``).
        loss: Registered loss name; None uses the head's ``default_loss``.
        loss_args: Loss keyword arguments (``class_counts``, ``head`` and UDAL's ``total_steps``
            are filled in by the recipe unless given).
        sampler: Registered sampler name ("random", "class_balanced", "class_aware", "bmls").
        sampler_args: Sampler keyword arguments (``labels``, ``seed`` are filled in).
        mixer: Registered mixer name or None (no mixing).
        mixer_args: Mixer keyword arguments.
    Attributes (optimisation):
        epochs: Training epochs (>= 1).
        batch_size: GLOBAL batch size; each of N processes takes ``batch_size // N``.
        lr, momentum, weight_decay, nesterov: SGD settings (lr is the peak after warm-up).
        warmup_epochs: Linear warm-up length in epochs (may be fractional; 0 = none).
        warmup_mode: "epoch" (default, LDAM-DRW's code: lr x (epoch + 1) / warmup_epochs, constant
            within an epoch) or "iteration" (ramped every iteration).
        schedule: "cosine" (to ``min_lr``), "step" (x ``lr_gamma`` at each of ``milestones``,
            in epochs), "constant", or "fixmatch" (lr * cos(7 pi t / 16 T)).
        milestones, lr_gamma, min_lr: Schedule parameters.
        ema_decay: EMA of the weights (e.g. 0.999) or None for none; with EMA the final
            metrics and the saved model are the EMA weights'.
        grad_clip: Clip the gradient norm to this value (None: no clipping).
        drop_last: Drop the last incomplete batch of every epoch.
        max_steps_per_epoch: Cut every epoch to at most this many iterations (quick runs).
    Attributes (evaluation and output):
        eval_every: Evaluate every n epochs (and always after the last one).
        eval_batch_size: Test loader batch size.
        max_eval_samples: Evaluate on a class-stratified part of the test set of about this many
            images (the first ceil(n / K) of each class; None: the whole test set). For quick runs.
        logit_adjust_tau: Also report post-hoc logit-adjusted metrics with this tau (None: off).
        group_ranges: Explicit many/medium/few index ranges, e.g. {"few": [7, 9]}.
        many_threshold, few_threshold: Group by training images per class (> many, < few).
            With neither these nor ``group_ranges`` set, the run takes the dataset's conventional
            split (``train_set.group_split``: CIFAR-10/100-LT by class index, else > 100 / < 20) and
            records it in these fields (see :func:`ltzoo.engine.evaluation.resolve_group_split`).
        output_dir: Run folder (``last.pt``, ``log.json``, ``metrics.json``, ``model/``); None
            writes nothing.
        tag: "arch.tag" tag given to the saved model (default ``<data>_lt_r<ratio>_<loss>``).
        save_model: Write ``output_dir/model`` with :func:`ltzoo.save_pretrained`.
    Attributes (stage 2, decoupled classifier retraining as cRT):
        crt_epochs: 0 = no stage 2; else epochs of classifier retraining on the frozen backbone.
        crt_sampler, crt_lr, crt_batch_size, crt_weight_decay: Its sampler ("class_aware" or
            "class_balanced") and SGD settings (cosine schedule, features cached once).
    Attributes (run): seed, num_workers (per-sample loader workers; None: up to 4, one core left for
        the step, 0 for tensor datasets), device ("auto" = CUDA when available), num_threads (torch
        CPU threads; None: torch's default), progress (tqdm bars; None: when stderr is a TTY).
    Attributes (speed):
        data_path: "auto" (default: the training set held in memory as one tensor and augmented a
            batch at a time with tensor ops on the training device, when it can be; else per sample),
            "tensor" (require that) or "per_sample" (a torchvision DataLoader).
        precision: "fp32" (default), "bf16" (autocast, CPUs with bf16 support and GPUs) or "fp16"
            (autocast with a gradient scaler, GPUs only). Model outputs are cast to fp32 before the
            loss, so every loss computes in fp32.
        channels_last: Run conv nets in the channels-last memory format (None: on).
        compile: Run the training forward (and its backward) through ``torch.compile`` (off by default;
            measured on 2 CPU cores: 0.92x the eager ResNet-32 step time in fp32, 1.00x in bf16). The
            saved weights and the evaluation are those of the eager model.
    Attributes (data, for ``ltzoo train`` / ``ltzoo eval``; see ``ltzoo.engine.data``):
        data ("digits", "cifar10", "cifar100", "imagefolder"), data_root, imb_ratio, data_args.
    """

    model: str = "resnet32"
    head: str = "fc"
    num_classes: int | None = None
    model_args: dict[str, Any] = field(default_factory=dict)
    loss: str | None = None
    loss_args: dict[str, Any] = field(default_factory=dict)
    sampler: str = "random"
    sampler_args: dict[str, Any] = field(default_factory=dict)
    mixer: str | None = None
    mixer_args: dict[str, Any] = field(default_factory=dict)
    epochs: int = 200
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 2e-4
    nesterov: bool = False
    warmup_epochs: float = 5.0
    warmup_mode: str = "epoch"
    schedule: str = "step"
    milestones: list[int] = field(default_factory=lambda: [160, 180])
    lr_gamma: float = 0.1
    min_lr: float = 0.0
    ema_decay: float | None = None
    grad_clip: float | None = None
    drop_last: bool = True
    max_steps_per_epoch: int | None = None
    eval_every: int = 1
    eval_batch_size: int = 256
    max_eval_samples: int | None = None
    logit_adjust_tau: float | None = None
    group_ranges: dict[str, list[int]] | None = None
    many_threshold: float | None = None
    few_threshold: float | None = None
    output_dir: str | None = None
    tag: str | None = None
    save_model: bool = True
    crt_epochs: int = 0
    crt_sampler: str = "class_aware"
    crt_lr: float = 0.05
    crt_batch_size: int = 128
    crt_weight_decay: float = 5e-4
    seed: int = 0
    num_workers: int | None = None
    device: str = "auto"
    num_threads: int | None = None
    progress: bool | None = None
    data: str = "digits"
    data_root: str | None = None
    imb_ratio: float = 100
    data_args: dict[str, Any] = field(default_factory=dict)
    data_path: str = "auto"
    precision: str = "fp32"
    channels_last: bool | None = None
    compile: bool = False

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> "TrainConfig":
        """Check every field; raise ValueError / TypeError naming the first bad one. Returns self."""
        for name in ("model", "head", "sampler", "crt_sampler", "data", "schedule", "device", "warmup_mode",
                     "data_path", "precision"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise TypeError(f"{name} must be a non-empty string, got {getattr(self, name)!r}")
        for name in ("loss", "mixer", "output_dir", "tag", "data_root"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, (str, os.PathLike)):
                raise TypeError(f"{name} must be a string or None, got {type(value).__name__}")
        for name in ("model_args", "loss_args", "sampler_args", "mixer_args", "data_args"):
            if not isinstance(getattr(self, name), dict):
                raise TypeError(f"{name} must be a dict, got {type(getattr(self, name)).__name__}")
        for name, low in (("epochs", 1), ("batch_size", 1), ("eval_every", 1), ("eval_batch_size", 1), ("seed", 0),
                          ("crt_epochs", 0), ("crt_batch_size", 1)):
            check_int_field(self, name, low)
        for name in ("num_classes", "max_steps_per_epoch", "num_threads", "max_eval_samples"):
            check_int_field(self, name, 1, optional=True)
        check_int_field(self, "num_workers", 0, optional=True)
        for name in ("momentum", "weight_decay", "warmup_epochs", "min_lr", "crt_weight_decay"):
            check_number_field(self, name, 0.0)
        for name in ("many_threshold", "few_threshold"):
            check_number_field(self, name, 0.0, optional=True)
        for name in ("lr", "crt_lr", "lr_gamma"):
            check_number_field(self, name, 0.0, strict=True)
        check_number_field(self, "imb_ratio", 1.0)
        check_number_field(self, "logit_adjust_tau", 0.0, optional=True)
        check_number_field(self, "grad_clip", 0.0, strict=True, optional=True)
        if self.ema_decay is not None:
            check_number_field(self, "ema_decay", 0.0)
            if not self.ema_decay < 1.0:
                raise ValueError(f"ema_decay must lie in [0, 1) or be None, got {self.ema_decay}")
        from ltzoo.data import list_datasets

        data_names = DATA_NAMES + tuple(list_datasets())  # "imagenet_lt", "places_lt", "inaturalist2018", ...
        for name, allowed in (("schedule", SCHEDULES), ("data", data_names), ("warmup_mode", ("epoch", "iteration")),
                              ("data_path", ("auto", "tensor", "per_sample")), ("precision", PRECISIONS),
                              ("crt_sampler", ("class_aware", "class_balanced", "random"))):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.device not in DEVICES and not self.device.startswith("cuda:"):
            raise ValueError(f"device must be one of {DEVICES} or 'cuda:N', got {self.device!r}")
        if not isinstance(self.milestones, (list, tuple)) or not all(
                isinstance(m, int) and not isinstance(m, bool) and m >= 0 for m in self.milestones):
            raise ValueError(f"milestones must be a list of non-negative integer epochs, got {self.milestones!r}")
        self.milestones = sorted(int(m) for m in self.milestones)
        if self.precision == "fp16" and self.device == "cpu":
            raise ValueError("precision='fp16' needs a CUDA device (a gradient scaler on fp16 GPUs); use 'bf16' on CPUs")
        for name in ("nesterov", "drop_last", "save_model", "progress", "channels_last", "compile"):
            if not isinstance(getattr(self, name), bool) and not (name in ("progress", "channels_last")
                                                                  and getattr(self, name) is None):
                raise TypeError(f"{name} must be a bool, got {getattr(self, name)!r}")
        if self.nesterov and self.momentum <= 0:
            raise ValueError("nesterov=True needs momentum > 0")
        if self.group_ranges is not None:
            if not isinstance(self.group_ranges, Mapping):
                raise TypeError(f"group_ranges must be a dict like {{'few': [7, 9]}}, got {self.group_ranges!r}")
            from ltzoo.metrics.groups import check_group_split

            self.group_ranges = check_group_split({"ranges": self.group_ranges}, self.num_classes,
                                                  "group_ranges")["ranges"]
        self.output_dir = None if self.output_dir is None else str(self.output_dir)
        return self

    @classmethod
    def field_names(cls) -> list[str]:
        """The valid keys, in declaration order."""
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "TrainConfig":
        """Build from a mapping; unknown keys raise ValueError listing the valid ones.

        Args:
            values: Field values; missing fields take their defaults.

        Returns:
            The validated config.
        """
        if not isinstance(values, Mapping):
            raise TypeError(f"a config must be a mapping, got {type(values).__name__}")
        unknown = sorted(set(values) - set(cls.field_names()))
        if unknown:
            raise ValueError(f"unknown config keys {unknown}; valid keys: {cls.field_names()}")
        return cls(**dict(values))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (lists, not tuples) that :meth:`from_dict` turns back into this config."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def replace(self, **changes: Any) -> "TrainConfig":
        """A validated copy with ``changes`` applied (unknown keys raise ValueError)."""
        return type(self).from_dict({**self.to_dict(), **changes})


def load_config(path: str | os.PathLike, cls: type | None = None) -> TrainConfig:
    """Read a :class:`TrainConfig` from a JSON file, or YAML (``.yaml``/``.yml``, needs pyyaml).

    Args:
        path: The file.
        cls: The config class (default :class:`TrainConfig`; e.g. ``SSLConfig``).

    Returns:
        The validated config.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml  # pyyaml is a dependency of timm

        values = yaml.safe_load(text) or {}
    else:
        values = json.loads(text)
    return (cls or TrainConfig).from_dict(values)


def check_int_field(cfg: TrainConfig, name: str, minimum: int, optional: bool = False) -> None:
    value = getattr(cfg, name)
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}{' or None' if optional else ''}, got {value!r}")


def check_number_field(cfg: TrainConfig, name: str, minimum: float, strict: bool = False, optional: bool = False) -> None:
    value = getattr(cfg, name)
    if value is None and optional:
        return
    value = as_number(value)  # numpy / 0-d tensor scalars are numbers too
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < minimum or (strict and value == minimum):
        rel = ">" if strict else ">="
        extra = " or None" if optional else ""
        raise ValueError(f"{name} must be a finite number {rel} {minimum}{extra}, got {value!r}")
    setattr(cfg, name, float(value))
