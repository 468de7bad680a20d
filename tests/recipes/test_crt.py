"""Decoupled classifier retraining (cRT / BTM post-train) on a frozen backbone."""
import copy

import pytest
import torch

from ltzoo.engine.builders import build_eval_loader
from ltzoo.metrics import evaluate
from ltzoo.recipes.crt import retrain_classifier, without_augmentation
from ltzoo.recipes.supervised import train_supervised


@pytest.fixture(scope="module")
def ce_model(digits, make_cfg):
    train, test, _ = digits
    return train_supervised(make_cfg(epochs=4), train, test)["model"]


def _backbone_state(model):
    return {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("head.")}


def test_cached_retraining_freezes_backbone_and_helps_the_tail(digits, ce_model):
    train, test, _ = digits
    model = copy.deepcopy(ce_model)
    before, head_before = _backbone_state(model), model.head.fc.weight.clone()
    retrain_classifier(model, without_augmentation(train, test), sampler="class_aware", epochs=10, lr=0.1, seed=0)
    after = _backbone_state(model)
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights AND BatchNorm running statistics
    assert not torch.equal(head_before, model.head.fc.weight)
    assert all(p.requires_grad for p in model.parameters()) and not model.training
    loader = build_eval_loader(test)
    counts = train.class_counts
    stage1, stage2 = evaluate(ce_model, loader, counts, progress=False), evaluate(model, loader, counts, progress=False)
    assert stage2["few"] > stage1["few"]  # class-aware retraining moves recall to the few-shot classes


def test_retraining_is_deterministic_and_uncached_path_runs(digits, ce_model):
    train, test, _ = digits
    plain = without_augmentation(train, test)
    a = retrain_classifier(copy.deepcopy(ce_model), plain, epochs=2, seed=3)
    b = retrain_classifier(copy.deepcopy(ce_model), plain, epochs=2, seed=3)
    assert torch.equal(a.head.fc.weight, b.head.fc.weight)
    c = copy.deepcopy(ce_model)
    before = _backbone_state(c)
    retrain_classifier(c, train, sampler="class_balanced", epochs=1, cache_features=False, seed=0)
    assert all(torch.equal(before[k], v) for k, v in _backbone_state(c).items())


def test_without_augmentation_uses_the_test_transform(digits):
    train, test, _ = digits
    plain = without_augmentation(train, test)
    assert train.transform is not None and plain.transform is None and plain.targets == train.targets
    x0, _ = plain[0]
    assert torch.equal(x0, plain[0][0])  # no random crop any more
