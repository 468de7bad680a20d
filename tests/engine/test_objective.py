import pytest
import torch
import torch.nn.functional as F

import ltzoo
from ltzoo.engine.builders import build_loss, build_mixer
from ltzoo.engine.objective import TrainForward, compute_loss, mixed_loss
from ltzoo.mixers.base import MixedBatch


@pytest.fixture()
def model():
    torch.manual_seed(0)
    return ltzoo.create_model("small_cnn", num_classes=10)


class FixedMixer:
    """Mixes the batch with its reverse at lam = 0.3 (so the expected loss is known)."""

    def __call__(self, x, y, partner_x=None, partner_y=None, generator=None):
        px, py = (x.flip(0), y.flip(0)) if partner_x is None else (partner_x, partner_y)
        lam = torch.full((x.shape[0],), 0.3)
        return MixedBatch(0.3 * x + 0.7 * px, y, py, lam)


def test_plain_loss_is_mean_ce(model):
    x, y = torch.randn(6, 3, 16, 16), torch.arange(6)
    loss_fn = build_loss("ce", model, [10] * 10)
    out = compute_loss(TrainForward(model), loss_fn, (x, y))
    assert out.loss.ndim == 0
    assert torch.allclose(out.loss, F.cross_entropy(model(x), y))


def test_mixed_batch_weights_both_labels(model):
    x, y = torch.randn(6, 3, 16, 16), torch.arange(6)
    loss_fn = build_loss("logit_adjusted", model, list(range(10, 0, -1)))
    out = compute_loss(TrainForward(model), loss_fn, (x, y), mixer=FixedMixer())
    logits = model(0.3 * x + 0.7 * x.flip(0))
    full = ltzoo.create_loss("logit_adjusted", class_counts=list(range(10, 0, -1)), reduction="none")
    expected = (0.3 * full(logits, y) + 0.7 * full(logits, y.flip(0))).mean()
    assert torch.allclose(out.loss, expected, atol=1e-6)


def test_mixed_singleton_uses_pairs_and_needs_a_mixer(model):
    x, y = torch.randn(4, 3, 16, 16), torch.tensor([0, 1, 2, 3])
    px, py = torch.randn(4, 3, 16, 16), torch.tensor([5, 6, 7, 8])
    loss_fn = build_loss(None, ltzoo.create_model("small_cnn", head="ms", num_classes=10), [10] * 10)
    assert type(loss_fn).__name__ == "MixedSingletonLoss"  # the "ms" head's default loss
    out = compute_loss(TrainForward(model), loss_fn, (x, y, px, py), mixer=FixedMixer())
    ref = ltzoo.create_loss("mixed_singleton")(model(0.3 * x + 0.7 * px), y, py, torch.full((4,), 0.3))
    assert torch.allclose(out.loss, ref, atol=1e-6)
    with pytest.raises(ValueError, match="mixer"):
        compute_loss(TrainForward(model), loss_fn, (x, y))
    with pytest.raises(ValueError, match="pairs"):
        compute_loss(TrainForward(model), build_loss("ce", model, [1] * 10), (x, y, px, py))


def test_dot_regression_takes_pooled_features():
    torch.manual_seed(0)
    model = ltzoo.create_model("small_cnn", head="etf", num_classes=10)
    loss_fn = build_loss(None, model, [10] * 10)  # "etf" -> "dot_regression", built with head=model.head
    x, y = torch.randn(8, 3, 16, 16), torch.arange(8)
    out = compute_loss(TrainForward(model), loss_fn, (x, y))
    assert out.output.shape == (8, model.num_features)
    feats = model.forward_head(model.forward_features(x), pre_logits=True)
    ref = ltzoo.create_loss("dot_regression", head=model.head)(feats, y)
    assert torch.allclose(out.loss, ref, atol=1e-6)


def test_loss_with_mean_reduction_is_refused(model):
    loss_fn = ltzoo.create_loss("ce")  # reduction="mean": one number, not one per sample
    with pytest.raises(ValueError, match="reduction='none'"):
        mixed_loss(loss_fn, torch.randn(4, 10), torch.arange(4), torch.arange(4), torch.rand(4))


def test_build_mixer_and_unknown_names():
    assert build_mixer(None) is None
    assert type(build_mixer("mixup", {"alpha": 0.5})).__name__ == "Mixup"
    with pytest.raises(ValueError):
        build_mixer("no_such_mixer")


def test_fidelity_etf_dr_mixup_step_moves_head_batchnorm_once():
    """One ETF + DR mixup step: num_batches_tracked +1 and running_mean = 0.9 * old + 0.1 * batch mean."""
    torch.manual_seed(0)
    model = ltzoo.create_model("small_cnn", head="etf", num_classes=10)
    model.train()
    bn = model.head.bn
    loss_fn = build_loss(None, model, [10] * 10)
    x, y = torch.randn(8, 3, 16, 16), torch.arange(8)
    mixed = 0.3 * x + 0.7 * x.flip(0)
    with torch.no_grad():
        feats = model.forward_head(model.forward_features(mixed), pre_logits=True)  # the head's input
    mean0, var0, n0 = bn.running_mean.clone(), bn.running_var.clone(), int(bn.num_batches_tracked)
    out = compute_loss(TrainForward(model), loss_fn, (x, y), mixer=FixedMixer())
    assert int(bn.num_batches_tracked) == n0 + 1
    assert torch.allclose(bn.running_mean, 0.9 * mean0 + 0.1 * feats.mean(0), atol=1e-5)
    assert torch.allclose(bn.running_var, 0.9 * var0 + 0.1 * feats.var(0, unbiased=True), atol=1e-4)
    # and the loss is lam * DR(h, y_a) + (1 - lam) * DR(h, y_b) on that one normalised batch h, written out
    h = F.normalize((feats - feats.mean(0)) / torch.sqrt(feats.var(0, unbiased=False) + bn.eps) * bn.weight + bn.bias,
                    dim=1)
    m = model.head.etf.T

    def dr(target):
        mt = m[target]
        return 0.5 * ((h * mt).sum(1) - mt.norm(dim=1) * h.norm(dim=1)) ** 2 / h.norm(dim=1)

    assert torch.allclose(out.loss, (0.3 * dr(y) + 0.7 * dr(y.flip(0))).mean(), atol=1e-5)


def test_fidelity_compute_loss_averages_ms_over_mixed_pairs_only(model):
    x, y = torch.randn(4, 3, 16, 16), torch.tensor([0, 1, 1, 2])  # reversed partner: same class at 1 and 2
    loss_fn = build_loss("mixed_singleton", model, [10] * 10)
    out = compute_loss(TrainForward(model), loss_fn, (x, y), mixer=FixedMixer())
    logits = model(0.3 * x + 0.7 * x.flip(0))
    per = ltzoo.create_loss("mixed_singleton", reduction="none")(logits, y, y.flip(0), torch.full((4,), 0.3))
    assert torch.allclose(out.loss, per[[0, 3]].mean(), atol=1e-6)
