"""Per-class image counts of long-tailed training sets.

``long_tailed_counts`` reproduces the CIFAR-LT profiles of LDAM-DRW (Cao et al., 2019),
used unchanged by MiSLAS, BTM and the ETF paper; ``ltssl_counts`` gives the labeled and
unlabeled profiles of long-tailed semi-supervised learning (DASO, BEM).
"""
from __future__ import annotations

import math
from numbers import Integral, Real

__all__ = ["PROFILES", "long_tailed_counts", "ltssl_counts"]

PROFILES = ("exp", "step")


def _check_int(value: object, name: str, minimum: int) -> int:
    """Return ``value`` as an int, or raise naming ``name`` unless it is a whole number >= minimum."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {type(value).__name__} {value!r}")
    if not isinstance(value, Integral):
        if not math.isfinite(float(value)) or float(value) != int(value):
            raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
        value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def _check_ratio(value: object, name: str, minimum: float | None = 1.0) -> float:
    """Return ``value`` as a float, or raise naming ``name`` if it is not finite and >= minimum (> 0 if None)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if minimum is None:
        if value <= 0:
            raise ValueError(f"{name} must be > 0, got {value}")
    elif value < minimum:
        raise ValueError(f"{name} must be >= {minimum:g} (1 = balanced), got {value}")
    return value


def long_tailed_counts(
    n_max: int,
    num_classes: int,
    imb_ratio: float,
    profile: str = "exp",
    minority_fraction: float = 0.5,
) -> list[int]:
    """Per-class counts of a long-tailed set whose class 0 is the largest.

    ``"exp"`` is LDAM-DRW's exponential profile, computed exactly as its code does:
    ``n_c = int(n_max * (1 / imb_ratio) ** (c / (C - 1.0)))`` (so CIFAR-10-LT with
    ``imb_ratio=100`` gives 5000, 2997, ..., 50; floating-point rounding can make the last
    class one less than ``n_max / imb_ratio``, exactly as in the reference code).
    ``"step"`` is LDAM-DRW's step profile: the first ``floor((1 - minority_fraction) * C)``
    classes keep ``n_max`` (``C // 2`` by default, as in LDAM-DRW) and the rest, the
    minority at the end, get ``int(n_max * (1 / imb_ratio))``. With one class the
    result is ``[n_max]``; ``imb_ratio=1`` gives a balanced profile.

    Args:
        n_max: Images of the largest (first) class, an integer >= 1.
        num_classes: Number of classes C, an integer >= 1.
        imb_ratio: Imbalance ratio n_max / n_min, finite and >= 1.
        profile: ``"exp"`` or ``"step"``.
        minority_fraction: Fraction of classes that are minority in the step profile, in [0, 1].

    Returns:
        The C counts, non-increasing, as Python ints.
    """
    n_max = _check_int(n_max, "n_max", 1)
    num_classes = _check_int(num_classes, "num_classes", 1)
    imb_ratio = _check_ratio(imb_ratio, "imb_ratio")
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    minority_fraction = _check_ratio(minority_fraction, "minority_fraction", minimum=0.0)
    if minority_fraction > 1.0:
        raise ValueError(f"minority_fraction must lie in [0, 1], got {minority_fraction}")
    imb_factor = 1.0 / imb_ratio
    if num_classes == 1:
        return [n_max]  # a single class is its own head, whatever the profile
    if profile == "exp":
        return [int(n_max * (imb_factor ** (c / (num_classes - 1.0)))) for c in range(num_classes)]
    # floor((1 - f) * C) majority classes: LDAM-DRW's C // 2 for f = 0.5 (eps guards float error).
    n_majority = int(math.floor((1.0 - minority_fraction) * num_classes + 1e-9))
    n_minority = num_classes - n_majority
    return [n_max] * n_majority + [int(n_max * imb_factor)] * n_minority


def ltssl_counts(
    n1: int,
    m1: int,
    num_classes: int,
    gamma_l: float,
    gamma_u: float,
) -> tuple[list[int], list[int]]:
    """Labeled and unlabeled per-class counts for long-tailed semi-supervised learning.

    Labeled: ``N_c = int(N_1 * gamma_l ** (-c / (C - 1)))``. Unlabeled, for ``gamma_u >= 1``:
    ``M_c = int(M_1 * gamma_u ** (-c / (C - 1)))`` (``gamma_u = 1`` is "uniform",
    ``gamma_u = gamma_l`` "consistent"). ``gamma_u < 1`` is the "reversed" setting as
    DASO/BEM write it (``gamma_u = 1 / gamma_l``): NOT the formula with ``gamma_u`` plugged in
    (that would give the last class ``M_1 / gamma_u`` images), but the profile of ratio
    ``1 / gamma_u`` flipped, so the LAST class has ``M_1`` and the first ``M_1 * gamma_u``.
    Both lists use :func:`long_tailed_counts` (``"exp"``), so the same float rounding applies.

    Args:
        n1: Labeled images of class 0, an integer >= 1.
        m1: Unlabeled images of the largest unlabeled class, an integer >= 0 (0: no unlabeled data).
        num_classes: Number of classes C, an integer >= 1.
        gamma_l: Labeled imbalance ratio, finite and >= 1.
        gamma_u: Unlabeled imbalance ratio, finite and > 0; < 1 means reversed.

    Returns:
        ``(labeled_counts, unlabeled_counts)``, two lists of C ints.
    """
    n1 = _check_int(n1, "n1", 1)
    m1 = _check_int(m1, "m1", 0)
    num_classes = _check_int(num_classes, "num_classes", 1)
    gamma_l = _check_ratio(gamma_l, "gamma_l")
    gamma_u = _check_ratio(gamma_u, "gamma_u", minimum=None)
    labeled = long_tailed_counts(n1, num_classes, gamma_l)
    if m1 == 0:
        return labeled, [0] * num_classes
    if gamma_u >= 1.0:
        unlabeled = long_tailed_counts(m1, num_classes, gamma_u)
    else:
        unlabeled = long_tailed_counts(m1, num_classes, 1.0 / gamma_u)[::-1]
    return labeled, unlabeled
