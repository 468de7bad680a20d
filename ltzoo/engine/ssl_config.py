"""``SSLConfig``: a :class:`~ltzoo.engine.config.TrainConfig` with the papers' FixMatch-based recipe
as defaults and the semi-supervised fields of ``train_fixmatch`` (plugin, mu, tau, lambda_u, UDAL
and BEM settings).

Defaults and where they come from:

* model "wrn_28_2": WRN-28-2, the backbone of FixMatch, UDAL and BEM on CIFAR-LT (BEM Sec. 5.1
  and Appendix B; UDAL's paper setting).
* batch 64, mu 7, tau 0.95, lr 0.03, Nesterov momentum 0.9, wd 5e-4 without decay on biases and
  normalisation parameters, the "fixmatch" cosine lr * cos(7 pi t / 16 T), EMA 0.999: FixMatch
  (Sohn et al. 2020), as UDAL and BEM (Appendix B: batch 64, the same cosine, EMAs 0.999) use it.
* length, by plugin (epochs x iters_per_epoch, evaluated every epoch): "bem": 500 x 500 =
  250k iterations with an evaluation every 500 (BEM Appendix B); "none", "la", "udal":
  64 x 1024 = 2^16 iterations (UDAL's paper setting, "64 epochs" of 1024 iterations).
  Leaving ``epochs`` / ``iters_per_epoch`` unset (None) takes the plugin's values; a
  ``replace(plugin=...)`` re-derives the values it had filled in, never ones given explicitly.
* BEM: warm-up 5 epochs, alpha 0.5, delta Softmax, tau_c 0.8, tau_a 0.1 (Appendix B).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ltzoo.engine.config import TrainConfig, check_int_field, check_number_field

__all__ = ["SSLConfig", "PLUGINS", "SUP_LOSS", "PLUGIN_LENGTH", "BEM_DELTAS"]

PLUGINS = ("none", "la", "udal", "bem")
SUP_LOSS = {"none": None, "la": "logit_adjusted", "udal": "udal", "bem": None}  # the supervised loss a plugin sets
# (epochs, iterations per epoch) of each plugin's paper recipe; see the module docstring.
PLUGIN_LENGTH = {"bem": (500, 500),  # BEM Appendix B: 250k iterations, evaluation every 500
                 "udal": (64, 1024), "la": (64, 1024), "none": (64, 1024)}  # UDAL: 2^16 iterations
BEM_DELTAS = ("softmax", "convex")
_LENGTH_FIELDS = ("epochs", "iters_per_epoch")


@dataclass
class SSLConfig(TrainConfig):
    """A :class:`TrainConfig` with the papers' semi-supervised recipe as defaults (module docstring)
    and the semi-supervised fields:

    plugin ("none", "la", "udal", "bem"); epochs / iters_per_epoch (None: the plugin's paper
    length, ``PLUGIN_LENGTH``); unlabeled_ratio (mu, integer >= 1); threshold (tau, in (0, 1]);
    lambda_u (>= 0); decay_bias_norm (False: biases and normalisation parameters, every
    parameter with ndim <= 1, get no weight decay, as in FixMatch); weak_flip (flip in tensor
    datasets' weak view); udal_args (both UDAL branches: alpha_min, k, ema, total_steps);
    bem_warmup_epochs, bem_alpha (Eq. 7), bem_delta ("softmax" or "convex", Eq. 7's delta),
    bem_temperature (T of "softmax": softmax(x / T); 1 is the paper's), tau_c, tau_a and
    bem_args (beta, ema, lambda_d, lambda_e, lambda_tau of ``BEMState``); ltssl (the
    labeled/unlabeled split ``{"n1", "m1", "gamma_l", "gamma_u"}`` that ``ltzoo train-ssl`` cuts
    from the training split with ``make_ltssl_split``). ``loss`` (default CE)
    is the supervised loss; "la" / "udal" set it.
    """

    model: str = "wrn_28_2"  # FixMatch / UDAL / BEM (Appendix B) on CIFAR-LT
    epochs: int | None = None  # None: PLUGIN_LENGTH[plugin][0]
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
    iters_per_epoch: int | None = None  # None: PLUGIN_LENGTH[plugin][1]
    decay_bias_norm: bool = False  # FixMatch: no weight decay on biases and BN parameters
    weak_flip: bool = True
    udal_args: dict[str, Any] = field(default_factory=dict)
    bem_warmup_epochs: float = 5.0
    bem_alpha: float = 0.5
    bem_delta: str = "softmax"
    bem_temperature: float = 1.0
    tau_c: float = 0.8
    tau_a: float = 0.1
    bem_args: dict[str, Any] = field(default_factory=dict)
    ltssl: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.plugin not in PLUGINS:
            raise ValueError(f"plugin must be one of {PLUGINS}, got {self.plugin!r}")
        self._derived = frozenset(name for name in _LENGTH_FIELDS if getattr(self, name) is None)
        for name, value in zip(_LENGTH_FIELDS, PLUGIN_LENGTH[self.plugin]):
            if name in self._derived:
                setattr(self, name, value)
        super().__post_init__()

    def replace(self, **changes: Any) -> "SSLConfig":
        """A validated copy with ``changes`` applied; lengths that came from the plugin are re-derived."""
        values = {**self.to_dict(), **changes}
        for name in getattr(self, "_derived", frozenset()) - set(changes):
            values[name] = None
        return type(self).from_dict(values)

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
        check_int_field(self, "iters_per_epoch", 1)
        for name in ("tau_c", "tau_a"):
            check_number_field(self, name, 0.0, strict=True)
            if getattr(self, name) >= 1.0:
                raise ValueError(f"{name} must lie in (0, 1), got {getattr(self, name)!r}")
        check_number_field(self, "bem_alpha", 0.0)
        if self.bem_alpha > 1.0:
            raise ValueError(f"bem_alpha must lie in [0, 1], got {self.bem_alpha!r}")
        if self.bem_delta not in BEM_DELTAS:
            raise ValueError(f"bem_delta must be one of {BEM_DELTAS}, got {self.bem_delta!r}")
        check_number_field(self, "bem_temperature", 0.0, strict=True)
        if self.ltssl and sorted(self.ltssl) != ["gamma_l", "gamma_u", "m1", "n1"]:
            raise ValueError(f"ltssl must give exactly n1, m1, gamma_l and gamma_u, got {sorted(self.ltssl)}")
        for name in ("udal_args", "bem_args", "ltssl"):
            if not isinstance(getattr(self, name), dict):
                raise TypeError(f"{name} must be a dict, got {type(getattr(self, name)).__name__}")
        for name in ("weak_flip", "decay_bias_norm"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool, got {getattr(self, name)!r}")
        if self.sampler != "random" or self.mixer is not None:
            raise ValueError(f"sampler={self.sampler!r} / mixer={self.mixer!r}: train_fixmatch draws its own batches "
                             "(sampler 'random') and mixes only through plugin='bem' (mixer None)")
        want = SUP_LOSS[self.plugin]
        if want is not None and self.loss not in (None, want):
            raise ValueError(f"loss={self.loss!r} conflicts with plugin={self.plugin!r} (which uses {want!r})")
        return self
