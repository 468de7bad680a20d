"""Effective number of samples (Cui et al., CVPR 2019): E = (1 - beta^n) / (1 - beta).

Shared by the class-balanced losses and BEM's running estimates (BEM Eq. 2).
"""
from __future__ import annotations

import math

import torch

from ltzoo.validation import as_number

__all__ = ["check_beta", "effective_number"]


def check_beta(beta: float, name: str = "beta") -> float:
    """Return ``beta`` as a float if it lies in [0, 1); raise ValueError otherwise."""
    beta = as_number(beta)  # numpy / 0-d tensor scalars are numbers too
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not 0.0 <= beta < 1.0:
        raise ValueError(f"{name} must be a number in [0, 1), got {beta!r}")
    return float(beta)


def effective_number(counts: torch.Tensor, beta: float) -> torch.Tensor:
    """Effective number of samples E = (1 - beta^n) / (1 - beta) (Cui et al.; BEM Eq. 2).

    Computed in float64 as -expm1(n log beta) / (1 - beta), accurate for beta close to 1.
    E grows from 1 at n = 1 towards 1 / (1 - beta); beta = 0 gives E = 1 for every n > 0.

    Args:
        counts: Non-negative (K,) counts (fractional counts allowed, e.g. M * d^u).
        beta: Overlap hyper-parameter in [0, 1).

    Returns:
        The (K,) effective numbers, float32, on the device of ``counts``.
    """
    beta = check_beta(beta)
    n = torch.as_tensor(counts).to(torch.float64)
    if beta == 0.0:
        return (n > 0).to(torch.float32)
    return (-torch.expm1(n * math.log(beta)) / (1.0 - beta)).to(torch.float32)
