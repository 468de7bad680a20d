"""Learnable weight scaling: folding the per-class scale into a head gives exactly scale * logits."""
import pytest
import torch
from torch import nn

import ltzoo
from ltzoo.heads.lws import LearnableWeightScaling, fold_logit_scale


@pytest.mark.parametrize("head", ["fc", "ms", "wetf", "ms_wetf", "etf"])
def test_fidelity_lws_fold_equals_scaled_logits(head):
    torch.manual_seed(0)
    model = ltzoo.create_model("small_cnn", head=head, num_classes=10).eval()
    x = torch.randn(4, 3, 16, 16)
    scale = torch.rand(10) + 0.5
    with torch.no_grad():
        expected = model(x) * scale
        fold_logit_scale(model.get_classifier(), scale)
        assert torch.allclose(model(x), expected, atol=1e-5)


def test_lws_starts_at_identity_and_checks_shape():
    lws = LearnableWeightScaling(3)
    z = torch.randn(2, 3)
    assert torch.equal(lws(z), z)
    with pytest.raises(ValueError, match=r"\(B, 3\)"):
        lws(torch.randn(2, 4))


def test_fold_refuses_a_head_it_cannot_scale():
    with pytest.raises(TypeError, match="cannot fold"):
        fold_logit_scale(nn.Identity(), torch.ones(3))
