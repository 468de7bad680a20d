"""The frozen-backbone forward of cRT and BTM post-training: no gradient into the backbone, optional autocast."""
import pytest
import torch

import ltzoo
from ltzoo.engine.frozen_backbone import FrozenBackboneForward


def test_bf16_backbone_forward_gives_fp32_logits_close_to_fp32():
    torch.manual_seed(0)
    model = ltzoo.create_model("resnet32", num_classes=10).eval()
    x = torch.randn(8, 3, 32, 32)
    full = FrozenBackboneForward(model)(x)
    half = FrozenBackboneForward(model, precision="bf16")(x)
    assert half.dtype == torch.float32 and half.requires_grad  # the head trains, in fp32
    assert not torch.equal(full, half)  # autocast did run: bf16 rounding changes the features
    assert torch.allclose(full, half, atol=0.05 * full.abs().max().item())
    half.sum().backward()
    assert all(p.grad is None for p in model.backbone.parameters())  # no gradient reaches the backbone
    assert model.get_classifier().fc.weight.grad is not None


def test_precision_is_checked():
    model = ltzoo.create_model("small_cnn", num_classes=4)
    with pytest.raises(ValueError, match="precision"):
        FrozenBackboneForward(model, precision="int8")
    from ltzoo.recipes.btm import BTMConfig

    with pytest.raises(ValueError, match="precision"):
        BTMConfig(precision="half")
