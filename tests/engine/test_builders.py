"""Optimizer parameter groups: no weight decay on biases and normalisation parameters."""
import pytest
import torch
from torch import nn

from ltzoo.engine.builders import build_optimizer, weight_decay_groups


def test_fidelity_weight_decay_groups_exempt_biases_and_norm_parameters():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.LayerNorm(4 * 6 * 6),
                          nn.Linear(4 * 6 * 6, 5))
    model[0].bias.requires_grad_(False)  # frozen parameters are left out
    groups = weight_decay_groups(model, 5e-4)
    decayed, exempt = ({id(p) for p in g["params"]} for g in groups)
    assert [g["weight_decay"] for g in groups] == [5e-4, 0.0]
    assert decayed == {id(model[0].weight), id(model[4].weight)}
    assert exempt == {id(p) for m in (model[1], model[3]) for p in m.parameters()} | {id(model[4].bias)}
    # one SGD step with zero gradients: only the decayed weights shrink, by lr * wd * w
    opt = build_optimizer(groups, lr=0.1, momentum=0.0, weight_decay=1.0)
    before = [p.detach().clone() for p in model.parameters()]
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    for p, old in zip(model.parameters(), before):
        want = old * (1 - 0.1 * 5e-4) if id(p) in decayed else old
        assert torch.allclose(p.detach(), want, atol=1e-7)


def test_weight_decay_groups_bad_input():
    with pytest.raises(TypeError, match="model"):
        weight_decay_groups([nn.Parameter(torch.zeros(2))], 0.1)
    with pytest.raises(ValueError, match="weight_decay"):
        weight_decay_groups(nn.Linear(2, 2), -1.0)
