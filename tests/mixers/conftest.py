"""Stub models for the CAM tests: the feature map is the image itself (optionally average-pooled),
so an image with a rectangle in channel q has a known class activation map for class q."""
import pytest
import torch
from torch import nn

from ltzoo.heads.linear import LinearHead


class TanhHead(nn.Module):
    """A non-linear head, logits = tanh(h) @ W^T; it has no CAM weights."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight.clone())

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.tanh(h) @ self.weight.T

    def cam_weights(self):
        return None


class StubModel(nn.Module):
    """forward_features = a 1x1 identity conv (a parameter) then average pooling by ``stride``."""

    def __init__(self, head: nn.Module, channels: int = 3, stride: int = 1) -> None:
        super().__init__()
        conv = nn.Conv2d(channels, channels, 1, bias=False)
        with torch.no_grad():
            conv.weight.copy_(torch.eye(channels).view(channels, channels, 1, 1))
        self.backbone = nn.Sequential(conv, nn.AvgPool2d(stride) if stride > 1 else nn.Identity())
        self.head = head

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        h = x.mean(dim=(2, 3))
        return h if pre_logits else self.head(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.head


@pytest.fixture
def make_model():
    """make_model(kind="linear"|"tanh", stride=1): a StubModel whose class k reads channel k."""
    def make(kind: str = "linear", stride: int = 1) -> StubModel:
        weight = 5.0 * torch.eye(3)
        if kind == "linear":
            head = LinearHead(3, 3)
            with torch.no_grad():
                head.fc.weight.copy_(weight)
                head.fc.bias.zero_()
        else:
            head = TanhHead(weight)
        return StubModel(head, stride=stride)
    return make
