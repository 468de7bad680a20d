"""Masked autoregressive flow (MAF) pieces of the DLSA flow filter: MADE blocks and a flow BatchNorm.

MADE (Germain et al., 2015) with Gaussian conditionals as in MAF (Papamakarios et al., 2017):
z_i = (x_i - mu_i(x_<i)) * exp(-alpha_i(x_<i)), so log|det dz/dx| = -sum_i alpha_i. Blocks
alternate the variable order and a BatchNorm flow layer follows each MADE (REFERENCE "DLSA":
"2 blocks of MADE + BatchNorm"). Every layer maps (B, D) -> ((B, D), log_det (B,)) with log_det
the log |det Jacobian| of the map, and has an exact ``inverse`` (eval-mode map for BatchNorm).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ltzoo.validation import check_num_classes

__all__ = ["MaskedLinear", "MADE", "BatchNormFlow", "MAF"]


class MaskedLinear(nn.Linear):
    """A linear layer whose weight is multiplied by a fixed 0/1 mask (a buffer, saved with the state).

    Args:
        in_features: Input size.
        out_features: Output size.
        mask: (out_features, in_features) connectivity, 1 = connected.
    """

    def __init__(self, in_features: int, out_features: int, mask: torch.Tensor) -> None:
        super().__init__(in_features, out_features)
        if tuple(mask.shape) != (out_features, in_features):
            raise ValueError(f"mask must have shape ({out_features}, {in_features}), got {tuple(mask.shape)}")
        self.register_buffer("mask", mask.to(self.weight.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


class MADE(nn.Module):
    """One autoregressive Gaussian block: x -> z = (x - mu(x)) * exp(-alpha(x)), triangular Jacobian.

    Args:
        dim: Feature dimension D.
        hidden: Hidden units of the conditioner (one masked hidden layer).
        reverse: Use the order D, ..., 1 instead of 1, ..., D.
        max_log_scale: alpha = s * tanh(raw / s) with s this bound (keeps exp(alpha) finite).
    """

    def __init__(self, dim: int, hidden: int, reverse: bool = False, max_log_scale: float = 5.0) -> None:
        super().__init__()
        self.dim = check_num_classes(dim, "dim")
        hidden = check_num_classes(hidden, "hidden")
        self.max_log_scale = float(max_log_scale)
        order = torch.arange(1, dim + 1)
        if reverse:
            order = order.flip(0)
        deg_h = torch.arange(hidden) % max(dim - 1, 1) + 1  # hidden degrees in [1, D - 1]
        mask_in = (deg_h[:, None] >= order[None, :]).float()  # (H, D): unit k sees x_j with order_j <= deg_k
        mask_out = (order[:, None] > deg_h[None, :]).float()  # (D, H): output i sees units with deg < order_i
        self.hidden = MaskedLinear(dim, hidden, mask_in)
        self.out = MaskedLinear(hidden, 2 * dim, torch.cat([mask_out, mask_out]))
        nn.init.zeros_(self.out.weight)  # starts as the identity map
        nn.init.zeros_(self.out.bias)

    def _conditioner(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, raw = self.out(F.relu(self.hidden(x))).chunk(2, dim=1)
        s = self.max_log_scale
        return mu, s * torch.tanh(raw / s)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Args: x (B, D). Returns: z (B, D) and log|det dz/dx| (B,)."""
        mu, alpha = self._conditioner(x)
        return (x - mu) * torch.exp(-alpha), -alpha.sum(dim=1)

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        """x from z by D sequential passes (pass i fixes the i-th variable in the order)."""
        x = torch.zeros_like(z)
        for _ in range(self.dim):
            mu, alpha = self._conditioner(x)
            x = z * torch.exp(alpha) + mu
        return x


class BatchNormFlow(nn.Module):
    """BatchNorm as an invertible layer: z = (x - m) / sqrt(v + eps) * exp(log_gamma) + beta.

    Training mode uses the batch statistics (and updates the running ones), eval mode the
    running ones; ``inverse`` always uses the running statistics (the eval-mode map).

    Args:
        dim: Feature dimension D.
        momentum: Running-statistics update rate.
        eps: Added to the variance.
    """

    def __init__(self, dim: int, momentum: float = 0.1, eps: float = 1e-5) -> None:
        super().__init__()
        dim = check_num_classes(dim, "dim")
        self.momentum, self.eps = float(momentum), float(eps)
        self.log_gamma = nn.Parameter(torch.zeros(dim))
        self.beta = nn.Parameter(torch.zeros(dim))
        self.register_buffer("running_mean", torch.zeros(dim))
        self.register_buffer("running_var", torch.ones(dim))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Args: x (B, D). Returns: z (B, D) and log|det dz/dx| (B,)."""
        if self.training:
            mean, var = x.mean(dim=0), x.var(dim=0, unbiased=False)
            with torch.no_grad():
                self.running_mean.lerp_(mean.detach(), self.momentum)
                self.running_var.lerp_(var.detach(), self.momentum)
        else:
            mean, var = self.running_mean, self.running_var
        z = (x - mean) / torch.sqrt(var + self.eps) * torch.exp(self.log_gamma) + self.beta
        log_det = (self.log_gamma - 0.5 * torch.log(var + self.eps)).sum()
        return z, log_det.expand(x.shape[0])

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        """x from z with the running statistics."""
        std = torch.sqrt(self.running_var + self.eps)
        return (z - self.beta) * torch.exp(-self.log_gamma) * std + self.running_mean


class MAF(nn.Module):
    """``blocks`` x (MADE, BatchNormFlow), alternating the variable order between blocks.

    Args:
        dim: Feature dimension D.
        hidden: Hidden units of each MADE conditioner.
        blocks: Number of MADE blocks (>= 1).
    """

    def __init__(self, dim: int, hidden: int, blocks: int = 2) -> None:
        super().__init__()
        blocks = check_num_classes(blocks, "flow_blocks")
        layers: list[nn.Module] = []
        for b in range(blocks):
            layers += [MADE(dim, hidden, reverse=b % 2 == 1), BatchNormFlow(dim)]
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Args: x (B, D). Returns: z (B, D) and the total log|det dz/dx| (B,)."""
        log_det = x.new_zeros(x.shape[0])
        for layer in self.layers:
            x, ld = layer(x)
            log_det = log_det + ld
        return x, log_det

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        """x from z (the inverse of the eval-mode map)."""
        for layer in reversed(self.layers):
            z = layer.inverse(z)
        return z
