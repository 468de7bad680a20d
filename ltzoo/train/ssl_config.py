"""``SSLConfig``: a :class:`~ltzoo.train.config.TrainConfig` with FixMatch defaults and the
semi-supervised fields of ``train_fixmatch`` (plugin, mu, tau, lambda_u, UDAL and BEM settings).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ltzoo.train.config import TrainConfig, check_int_field, check_number_field

__all__ = ["SSLConfig", "PLUGINS", "SUP_LOSS"]

PLUGINS = ("none", "la", "udal", "bem")
SUP_LOSS = {"none": None, "la": "logit_adjusted", "udal": "udal", "bem": None}  # the supervised loss a plugin sets


@dataclass
class SSLConfig(TrainConfig):
    """A :class:`TrainConfig` with FixMatch defaults (batch 64, lr 0.03, Nesterov, wd 5e-4, the
    "fixmatch" cosine, EMA 0.999, 64 epochs of 1024 iterations) and the semi-supervised fields:

    plugin ("none", "la", "udal", "bem"); unlabeled_ratio (mu, integer >= 1); threshold (tau, in
    (0, 1]); lambda_u (>= 0); iters_per_epoch (None: one pass over the unlabeled set);
    weak_flip (flip in tensor datasets' weak view); udal_args (both UDAL branches: alpha_min,
    k, ema, total_steps); bem_warmup_epochs, bem_alpha (Eq. 7), bem_delta, tau_c, tau_a and
    bem_args (beta, ema, lambda_d, lambda_e, lambda_tau of ``BEMState``); ltssl (the
    labeled/unlabeled split ``{"n1", "m1", "gamma_l", "gamma_u"}`` that ``ltzoo train-ssl`` cuts
    from the training split with ``make_ltssl_split``). ``loss`` (default CE)
    is the supervised loss; "la" / "udal" set it.
    """

    epochs: int = 64
    batch_size: int = 64
    lr: float = 0.03
    weight_decay: float = 5e-4
    nesterov: bool = True
    warmup_epochs: float = 0.0
    schedule: str = "fixmatch"
    ema_decay: float | None = 0.999
    imb_ratio: float = 1  # the LTSSL split (ltssl) is cut from the full training split
    plugin: str = "none"
    unlabeled_ratio: int = 7
    threshold: float = 0.95
    lambda_u: float = 1.0
    iters_per_epoch: int | None = 1024
    weak_flip: bool = True
    udal_args: dict[str, Any] = field(default_factory=dict)
    bem_warmup_epochs: float = 5.0
    bem_alpha: float = 0.5
    bem_delta: str = "softmax"
    tau_c: float = 0.8
    tau_a: float = 0.1
    bem_args: dict[str, Any] = field(default_factory=dict)
    ltssl: dict[str, float] = field(default_factory=dict)

    def validate(self) -> "SSLConfig":
        super().validate()
        if self.plugin not in PLUGINS:
            raise ValueError(f"plugin must be one of {PLUGINS}, got {self.plugin!r}")
        if isinstance(self.unlabeled_ratio, bool) or not isinstance(self.unlabeled_ratio, int) \
                or self.unlabeled_ratio < 1:
            raise ValueError(f"unlabeled_ratio (mu) must be an integer >= 1, got {self.unlabeled_ratio!r}")
        check_number_field(self, "threshold", 0.0, strict=True)
        if self.threshold > 1.0:
            raise ValueError(f"threshold (tau) must lie in (0, 1], got {self.threshold!r}")
        check_number_field(self, "lambda_u", 0.0)
        check_number_field(self, "bem_warmup_epochs", 0.0)
        check_int_field(self, "iters_per_epoch", 1, optional=True)
        for name in ("tau_c", "tau_a"):
            check_number_field(self, name, 0.0, strict=True)
            if getattr(self, name) >= 1.0:
                raise ValueError(f"{name} must lie in (0, 1), got {getattr(self, name)!r}")
        check_number_field(self, "bem_alpha", 0.0)
        if self.bem_alpha > 1.0:
            raise ValueError(f"bem_alpha must lie in [0, 1], got {self.bem_alpha!r}")
        if self.bem_delta not in ("softmax", "convex"):
            raise ValueError(f"bem_delta must be 'softmax' or 'convex', got {self.bem_delta!r}")
        if self.ltssl and sorted(self.ltssl) != ["gamma_l", "gamma_u", "m1", "n1"]:
            raise ValueError(f"ltssl must give exactly n1, m1, gamma_l and gamma_u, got {sorted(self.ltssl)}")
        for name in ("udal_args", "bem_args", "ltssl"):
            if not isinstance(getattr(self, name), dict):
                raise TypeError(f"{name} must be a dict, got {type(getattr(self, name)).__name__}")
        if not isinstance(self.weak_flip, bool):
            raise TypeError(f"weak_flip must be a bool, got {self.weak_flip!r}")
        if self.sampler != "random" or self.mixer is not None:
            raise ValueError(f"sampler={self.sampler!r} / mixer={self.mixer!r}: train_fixmatch draws its own batches "
                             "(sampler 'random') and mixes only through plugin='bem' (mixer None)")
        want = SUP_LOSS[self.plugin]
        if want is not None and self.loss not in (None, want):
            raise ValueError(f"loss={self.loss!r} conflicts with plugin={self.plugin!r} (which uses {want!r})")
        return self
