"""MiSLAS-style post-training (BTM step 4): kept classifier, shifted BatchNorm, LWS, per-epoch
cosine with the classifier at lr_factor x lr, class-balanced batches; checked against counts
and the authors' formulas written out here."""
import copy
import math

import numpy as np
import pytest
import torch

import ltzoo.recipes.posttrain as P
from ltzoo.recipes.posttrain import posttrain_classifier
from ltzoo.recipes.supervised import train_supervised


@pytest.fixture(scope="module")
def ce_model(digits, make_cfg):
    train, test, _ = digits
    return train_supervised(make_cfg(epochs=2), train, test)["model"]


def _record(monkeypatch):
    """Wrap train_one_epoch: record, per epoch, the head weight at its start, the group lrs and the batch labels."""
    seen = []
    real = P.train_one_epoch

    def spy(forward, loss_fn, loader, optimizer, *args, **kwargs):
        inner = getattr(forward, "module", forward)
        labels = torch.cat([batch[1] for batch in loader])
        seen.append({"head": inner.head.fc.weight.detach().clone(), "lrs": [g["lr"] for g in optimizer.param_groups],
                     "labels": labels, "batches": len(loader)})
        return real(forward, loss_fn, loader, optimizer, *args, **kwargs)

    monkeypatch.setattr(P, "train_one_epoch", spy)
    return seen


def test_fidelity_btm_posttrain_keeps_classifier(digits, ce_model, monkeypatch):
    train, _, _ = digits
    model = copy.deepcopy(ce_model)
    start = model.head.fc.weight.detach().clone()
    seen = _record(monkeypatch)
    posttrain_classifier(model, train, epochs=2, batch_size=64, seed=0)
    assert torch.equal(seen[0]["head"], start)  # training starts from the model's own classifier
    fresh = copy.deepcopy(ce_model)
    seen.clear()
    posttrain_classifier(fresh, train, epochs=1, batch_size=64, reinit=True, seed=0)
    assert not torch.allclose(seen[0]["head"], start)  # the option re-initialises it


def test_fidelity_posttrain_lr_groups_follow_the_authors_per_epoch_cosine(digits, ce_model, monkeypatch):
    train, _, _ = digits
    seen = _record(monkeypatch)
    posttrain_classifier(copy.deepcopy(ce_model), train, epochs=4, lr=0.1, lr_factor=0.05, batch_size=64, seed=0)
    for e, rec in enumerate(seen):
        lr_e = 0 + 0.5 * (0.1 - 0) * (1 + math.cos(e / 4 * 3.1415926535))  # train_stage2.adjust_learning_rate
        assert rec["lrs"] == pytest.approx([0.05 * lr_e, lr_e], rel=1e-6)  # [classifier, LWS]


def test_fidelity_posttrain_batches_are_class_balanced(digits, ce_model, monkeypatch):
    train, _, _ = digits
    counts = np.bincount(train.targets)
    seen = _record(monkeypatch)
    posttrain_classifier(copy.deepcopy(ce_model), train, epochs=1, batch_size=64, seed=0)
    labels = seen[0]["labels"]
    k, n_max = len(counts), int(counts.max())
    assert labels.numel() == k * n_max  # the authors' class-aware epoch: K * n_max samples
    per_class = torch.bincount(labels, minlength=k)
    assert int(per_class.max() - per_class.min()) <= 4  # 4 samples per class visit, round-robin
    assert seen[0]["batches"] == math.ceil(k * n_max / 64)


def _bn_layers(model):
    return [m for m in model.backbone.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]


@pytest.mark.parametrize("shift_bn", [True, False])
def test_fidelity_shift_bn_reestimates_backbone_statistics(digits, ce_model, monkeypatch, shift_bn):
    train, _, _ = digits
    model = copy.deepcopy(ce_model)
    bns = _bn_layers(model)
    assert bns, "small_cnn must have BatchNorm for this test"
    before = [int(bn.num_batches_tracked) for bn in bns]
    mean_before = bns[0].running_mean.clone()
    weights = {k: v.clone() for k, v in model.backbone.named_parameters()}
    info = posttrain_classifier(model, train, epochs=2, batch_size=64, shift_bn=shift_bn, seed=0)
    grown = [int(bn.num_batches_tracked) - b for bn, b in zip(bns, before)]
    assert grown == [info["steps"] if shift_bn else 0] * len(bns)  # one update per post-training batch
    assert torch.equal(bns[0].running_mean, mean_before) is (not shift_bn)
    assert all(torch.equal(v, weights[k]) for k, v in model.backbone.named_parameters())  # backbone weights frozen
    assert all(p.requires_grad for p in model.parameters()) and not model.training


def test_fidelity_posttrain_lws_scale_is_folded_into_the_head(digits, ce_model):
    train, test, _ = digits
    model = copy.deepcopy(ce_model)
    info = posttrain_classifier(model, train, epochs=2, batch_size=64, seed=0)
    scale = torch.tensor(info["lws_scale"])
    assert scale.shape == (10,) and not torch.allclose(scale, torch.ones(10))  # the scale was trained
    off = posttrain_classifier(copy.deepcopy(ce_model), train, epochs=1, batch_size=64, lws=False, seed=0)
    assert off["lws_scale"] is None


def test_posttrain_bad_arguments(digits, ce_model):
    train, _, _ = digits
    with pytest.raises(ValueError, match="epochs"):
        posttrain_classifier(copy.deepcopy(ce_model), train, epochs=0)
    with pytest.raises(ValueError, match="lr_factor"):
        posttrain_classifier(copy.deepcopy(ce_model), train, lr_factor=0)
