import pytest
import torch

import ltzoo
import ltzoo.losses.ce  # noqa: F401  (registers "ce")
from ltzoo.losses.ce import CrossEntropyLoss


def _manual_ce(logits, y, eps=0.0):
    logp = logits.log_softmax(dim=1)
    k = logits.shape[1]
    q = torch.full_like(logp, eps / k)
    q[torch.arange(len(y)), y] += 1 - eps
    return -(q * logp).sum(dim=1)


@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_ce_matches_manual_per_reduction(eps):
    torch.manual_seed(0)
    logits, y = torch.randn(6, 4, dtype=torch.float64), torch.tensor([0, 1, 2, 3, 3, 0])
    ref = _manual_ce(logits, y, eps)
    for red, exp in (("none", ref), ("sum", ref.sum()), ("mean", ref.mean())):
        loss = ltzoo.create_loss("ce", reduction=red, label_smoothing=eps)
        assert torch.allclose(loss(logits, y), exp)


def test_ce_soft_targets_and_ignored_class_counts():
    logits = torch.randn(3, 4, dtype=torch.float64)
    q = torch.softmax(torch.randn(3, 4, dtype=torch.float64), dim=1)
    loss = CrossEntropyLoss(class_counts=[5, 3, 2, 0])
    assert torch.allclose(loss(logits, q), -(q * logits.log_softmax(1)).sum(1).mean())
    with pytest.raises(ValueError, match="class_counts"):
        CrossEntropyLoss(class_counts=[1, -1])


@pytest.mark.parametrize("kwargs,match", [
    (dict(reduction="avg"), "reduction"), (dict(label_smoothing=1.5), "label_smoothing"),
])
def test_ce_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CrossEntropyLoss(**kwargs)


def test_ce_bad_inputs():
    loss = CrossEntropyLoss()
    with pytest.raises(ValueError, match="logits"):
        loss(torch.randn(4), torch.tensor([0, 1, 0, 1]))
    with pytest.raises(ValueError, match="target"):
        loss(torch.randn(4, 3), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"target must lie in \[0, 3\)"):
        loss(torch.randn(2, 3), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="soft target"):
        loss(torch.randn(2, 3), torch.rand(2, 4))


def test_reliability_ce_empty_batch_with_mean_is_refused_and_matches_torch_otherwise():
    import pytest
    import torch
    import torch.nn.functional as F

    import ltzoo

    loss = ltzoo.create_loss("ce", label_smoothing=0.1)
    with pytest.raises(ValueError, match=r"empty batch \(0 samples\) with reduction='mean'"):
        loss(torch.empty(0, 3), torch.empty(0, dtype=torch.long))
    logits, y = torch.randn(5, 3), torch.tensor([0, 1, 2, 1, 0])
    assert torch.allclose(loss(logits, y), F.cross_entropy(logits, y, label_smoothing=0.1), atol=1e-7)
