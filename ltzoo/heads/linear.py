"""The plain fully connected classifier head ("fc")."""
from __future__ import annotations

import torch
from torch import nn

from ltzoo.registry import HEADS
from ltzoo.validation import check_num_classes


@HEADS.register("fc")
class LinearHead(nn.Module):
    """logits = W h + b.

    Args:
        in_features: Pooled feature dimension D.
        num_classes: Number of classes K.
        bias: Whether to learn a per-class bias.
    """

    default_loss = "ce"  # the loss this head is trained with unless the user picks another

    def __init__(self, in_features: int, num_classes: int, bias: bool = True) -> None:
        super().__init__()
        check_num_classes(in_features, "in_features")
        self.num_classes = check_num_classes(num_classes)
        self.fc = nn.Linear(in_features, self.num_classes, bias=bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(features)

    def cam_weights(self) -> torch.Tensor:
        """The (K, D) class weight vectors."""
        return self.fc.weight
