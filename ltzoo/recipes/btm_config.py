"""``BTMConfig``: the settings of BTM (paper Algorithm 1 and Sec. 4.1, the authors' stage-2 configs)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from ltzoo.recipes.btm_fc_stage import FC_STAGE_MODES
from ltzoo.validation import as_number

__all__ = ["BTMConfig", "POSTTRAIN_MODES", "STAGE1"]

POSTTRAIN_MODES = ("mislas", "cached_crt")
STAGE1 = "stage1"  # "take this setting from the stage-1 run"


def _check_int(cfg: Any, name: str, minimum: int) -> None:
    value = getattr(cfg, name)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _check_positive(cfg: Any, name: str, optional: bool = False) -> None:
    value = getattr(cfg, name)
    if value is None and optional:
        return
    value = as_number(value)  # numpy / 0-d tensor scalars are numbers too
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value) > 0:
        raise ValueError(f"{name} must be a number > 0{' or None' if optional else ''}, got {value!r}")


@dataclass
class BTMConfig:
    """Settings of BTM. Defaults follow the paper (Sec. 4.1) and the authors' stage-2 configs.

    Args (balanced fine-tuning, Algorithm 1 steps 2-3):
        num_subsets: N_D, balanced subsets and fine-tuned models (paper: 10).
        per_class: N_C, images per class in a subset (paper: 10; smaller classes keep all).
        finetune_epochs, finetune_lr: 30 epochs, cosine from 5e-3 (the paper's CIFAR-100-LT lr).
        weight_decay, momentum, batch_size: SGD 5e-4, 0.9, batch 256 (paper). Every image of a
            subset is used each epoch (near-equal batches, no ``drop_last``).
        loss: Fine-tuning loss; None = the head's default ("ce" for "fc", the paper's plain CE;
            "mixed_singleton" for "ms" heads, trained on "bmls" pairs of the subset).
        mixer, mixer_args: Fine-tuning mixer; "stage1" (default) = the stage-1 run's mixer and
            its arguments (the paper follows the pre-train stage's augmentation; MiSLAS pre-trains
            with mixup); a registered name; or None for no mixing.
        recalibrate_bn: Re-estimate the merge's BatchNorm statistics on the training data (the
            authors do not; off by default).
    Args ("FC" stage, Sec. 3.3; see :mod:`ltzoo.recipes.btm_fc_stage`):
        fc_stage: "auto" (run it when the stage-1 classifier handles imbalance), "on" or "off".
        fc_epochs: 10 (paper). fc_lr: None = ``finetune_lr`` ("the same training strategy").
        fc_reinit: Train a fresh "fc" head instead of fine-tuning the stage-1 FC weights.
        fc_cache_features: Train on cached un-augmented features (faster; no mixer).
    Args (post-training, Algorithm 1 step 4; see :mod:`ltzoo.recipes.posttrain`):
        posttrain: "mislas" (default: the authors' MiSLAS-style stage 2) or "cached_crt" (the
            fast option: classifier retraining on cached un-augmented features, class-aware
            sampling, CE-type loss, no BatchNorm shift, no LWS, lr ``posttrain_lr``).
        posttrain_epochs: 10 (0 skips post-training). posttrain_lr: 0.1 (cosine per epoch).
        posttrain_lr_factor: The kept classifier's lr is this times ``posttrain_lr`` (0.05).
        posttrain_batch_size: 256. posttrain_weight_decay: 5e-4.
        posttrain_shift_bn: Re-estimate the frozen backbone's BatchNorm on the batches (True).
        posttrain_lws: Learnable weight scaling with the classifier (True; "mislas" only).
        posttrain_loss, posttrain_loss_args: "label_aware_smoothing" with eps_head 0.3, eps_tail
            0.0, "concave" (the loss's defaults; e.g. ``{"shape": "linear"}``).
        posttrain_reinit: Re-initialise the classifier first (False: keep the merged one).
        posttrain_mixer, posttrain_mixer_args: Optional mixer of the "mislas" stage (None).
        posttrain_samples_per_class: Class-aware sampler's samples per class visit (4).
    Args (run):
        seed: Seeds the subsets, the fine-tuning, the FC stage and the post-training.
        precision: "fp32" (default), "bf16" or "fp16": autocast dtype of the fine-tunes' and the
            post-training's forward passes (outputs cast to fp32 before every loss).
        group_ranges: Explicit many/medium/few class-index ranges for the report (None: the test set's
            ``group_split``, e.g. CIFAR-10-LT's [0,2] / [3,6] / [7,9]).
    """

    num_subsets: int = 10
    per_class: int = 10
    finetune_epochs: int = 30
    finetune_lr: float = 5e-3
    weight_decay: float = 5e-4
    momentum: float = 0.9
    batch_size: int = 256
    loss: str | None = None
    mixer: str | None = STAGE1
    mixer_args: dict[str, Any] | None = None
    recalibrate_bn: bool = False
    fc_stage: str = "auto"
    fc_epochs: int = 10
    fc_lr: float | None = None
    fc_reinit: bool = False
    fc_cache_features: bool = False
    posttrain: str = "mislas"
    posttrain_epochs: int = 10
    posttrain_lr: float = 0.1
    posttrain_lr_factor: float = 0.05
    posttrain_batch_size: int = 256
    posttrain_weight_decay: float = 5e-4
    posttrain_shift_bn: bool = True
    posttrain_lws: bool = True
    posttrain_loss: str = "label_aware_smoothing"
    posttrain_loss_args: dict[str, Any] = field(default_factory=dict)
    posttrain_reinit: bool = False
    posttrain_mixer: str | None = None
    posttrain_mixer_args: dict[str, Any] | None = None
    posttrain_samples_per_class: int = 4
    seed: int = 0
    group_ranges: dict[str, Sequence[int]] | None = field(default=None)
    precision: str = "fp32"

    def __post_init__(self) -> None:
        if self.precision not in ("fp32", "bf16", "fp16"):
            raise ValueError(f"precision must be one of ('fp32', 'bf16', 'fp16'), got {self.precision!r}")
        for name in ("num_subsets", "per_class", "finetune_epochs", "batch_size", "fc_epochs", "posttrain_batch_size",
                     "posttrain_samples_per_class"):
            _check_int(self, name, 1)
        for name in ("posttrain_epochs", "seed"):
            _check_int(self, name, 0)
        for name in ("finetune_lr", "posttrain_lr", "posttrain_lr_factor"):
            _check_positive(self, name)
        _check_positive(self, "fc_lr", optional=True)
        for name in ("weight_decay", "momentum", "posttrain_weight_decay"):
            value = getattr(self, name)
            value = as_number(value)  # numpy / 0-d tensor scalars are numbers too
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")
        if self.fc_stage not in FC_STAGE_MODES:
            raise ValueError(f"fc_stage must be one of {FC_STAGE_MODES}, got {self.fc_stage!r}")
        if self.posttrain not in POSTTRAIN_MODES:
            raise ValueError(f"posttrain must be one of {POSTTRAIN_MODES}, got {self.posttrain!r}")
        for name in ("recalibrate_bn", "fc_reinit", "fc_cache_features", "posttrain_shift_bn", "posttrain_lws",
                     "posttrain_reinit"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool, got {getattr(self, name)!r}")
        for name in ("loss", "mixer", "posttrain_mixer"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise TypeError(f"{name} must be a registered name or None, got {value!r}")
        for name in ("mixer_args", "posttrain_mixer_args"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, dict):
                raise TypeError(f"{name} must be a dict or None, got {type(value).__name__}")
        if not isinstance(self.posttrain_loss_args, dict):
            raise TypeError(f"posttrain_loss_args must be a dict, got {type(self.posttrain_loss_args).__name__}")
