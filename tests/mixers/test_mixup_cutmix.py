"""Mixup and CutMix: label bookkeeping, pixel formulas, explicit partners, validation."""
import numpy as np
import pytest
import torch

import ltzoo
from ltzoo.mixers.base import MixedBatch
from ltzoo.mixers.cutmix import CutMix
from ltzoo.mixers.mixup import Mixup


def _batch(n=6, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, size, size, generator=g), torch.arange(n) * 10


def test_registered_names_build_the_classes():
    assert isinstance(ltzoo.create_mixer("mixup", alpha=0.4), Mixup)
    assert isinstance(ltzoo.create_mixer("cutmix"), CutMix)
    assert {"mixup", "cutmix"} <= set(ltzoo.list_mixers())


def test_mixup_in_batch_pixels_labels_and_lam():
    x, y = _batch()
    mb = Mixup(generator=torch.Generator().manual_seed(1))(x, y)
    assert isinstance(mb, MixedBatch)
    idx = mb.partner_index
    assert sorted(idx.tolist()) == list(range(6))
    assert torch.equal(mb.y_a, y) and torch.equal(mb.y_b, y[idx])
    assert mb.lam.shape == (6,) and mb.lam.dtype == torch.float32
    assert torch.all(mb.lam == mb.lam[0]) and 0 < mb.lam[0] < 1  # one lam per batch by default
    lam = mb.lam[0].item()
    assert torch.allclose(mb.x, lam * x + (1 - lam) * x[idx], atol=1e-6)


def test_mixup_explicit_partner_and_per_sample_lam():
    x, y = _batch()
    px, py = _batch(seed=5)
    mb = Mixup(per_sample=True)(x, y, partner_x=px, partner_y=py + 1, generator=torch.Generator().manual_seed(2))
    assert mb.partner_index is None
    assert torch.equal(mb.y_b, py + 1)
    assert len(set(mb.lam.tolist())) == 6
    for i in range(6):
        lam = mb.lam[i].item()
        assert torch.allclose(mb.x[i], lam * x[i] + (1 - lam) * px[i], atol=1e-6)


@pytest.mark.parametrize("alpha", [0.5, 2.0])
def test_mixup_lam_follows_beta_alpha(alpha):
    x = torch.zeros(4000, 1, 1, 1)
    lam = Mixup(alpha=alpha, per_sample=True)(x, torch.zeros(4000), generator=torch.Generator().manual_seed(0)).lam
    # Beta(a, a): mean 1/2, variance 1 / (4 (2a + 1))
    assert abs(lam.mean().item() - 0.5) < 0.02
    assert abs(lam.var().item() - 1 / (4 * (2 * alpha + 1))) < 0.01


def test_generator_makes_mixers_reproducible():
    x, y = _batch()
    for cls in (Mixup, CutMix):
        a = cls(per_sample=True)(x, y, generator=torch.Generator().manual_seed(3))
        b = cls(per_sample=True, generator=torch.Generator().manual_seed(3))(x, y)
        c = cls(per_sample=True)(x, y, generator=torch.Generator().manual_seed(4))
        assert torch.equal(a.x, b.x) and torch.equal(a.lam, b.lam)
        assert not torch.equal(a.lam, c.lam)


def _check_cutmix(mb, x, px):
    n, _, h, w = x.shape
    for i in range(n):
        y0, x0, y1, x1 = mb.boxes[i].tolist()
        assert 0 <= y0 <= y1 <= h and 0 <= x0 <= x1 <= w
        inside = np.zeros((h, w), dtype=bool)
        inside[y0:y1, x0:x1] = True
        inside = torch.from_numpy(inside)
        assert torch.equal(mb.x[i][:, inside], px[i][:, inside])
        assert torch.equal(mb.x[i][:, ~inside], x[i][:, ~inside])
        assert mb.lam[i].item() == pytest.approx(1 - (y1 - y0) * (x1 - x0) / (h * w), abs=1e-7)


def test_cutmix_in_batch_pixels_and_exact_lam():
    x, y = _batch(n=8, size=20)
    mb = CutMix(generator=torch.Generator().manual_seed(0))(x, y)
    idx = mb.partner_index
    assert torch.equal(mb.y_a, y) and torch.equal(mb.y_b, y[idx])
    assert torch.all(mb.boxes == mb.boxes[0])  # one box per batch by default, as the reference code
    _check_cutmix(mb, x, x[idx])


def test_cutmix_explicit_partner_per_sample_boxes():
    x, y = _batch(n=8, size=20)
    px, py = _batch(n=8, size=20, seed=9)
    mixer = CutMix(alpha=1.0, per_sample=True)
    mb = mixer(x, y, partner_x=px, partner_y=py, generator=torch.Generator().manual_seed(1))
    assert mb.partner_index is None and torch.equal(mb.y_b, py)
    assert len({tuple(b) for b in mb.boxes.tolist()}) > 1
    _check_cutmix(mb, x, px)


def test_cutmix_box_sizes_follow_lam_and_centres_cover_the_image():
    n, h = 3000, 32
    x = torch.zeros(n, 1, h, h)
    mb = CutMix(per_sample=True)(x, torch.zeros(n), partner_x=x, partner_y=torch.zeros(n),
                                 generator=torch.Generator().manual_seed(0))
    b = mb.boxes.float()
    centre_y = (b[:, 0] + b[:, 2]) / 2
    interior = (b[:, 0] > 0) & (b[:, 2] < h) & (b[:, 1] > 0) & (b[:, 3] < h)
    side = b[:, 2] - b[:, 0]
    assert torch.equal(side[interior], (b[:, 3] - b[:, 1])[interior])  # square boxes when not clipped
    # E[1 - lam] for Beta(1, 1) is 1/2 before clipping; clipping only shrinks boxes
    assert 0.2 < (1 - mb.lam).mean().item() < 0.5
    assert centre_y.min() < 4 and centre_y.max() > h - 4


def test_single_image_needs_a_partner():
    x, y = _batch(n=1)
    for mixer in (Mixup(), CutMix()):
        with pytest.raises(ValueError, match="partner_x"):
            mixer(x, y)
        mb = mixer(x, y, partner_x=x.flip(-1), partner_y=y + 1)
        assert mb.lam.shape == (1,) and mb.y_b.item() == 1


def test_bad_arguments_name_themselves():
    x, y = _batch()
    for cls in (Mixup, CutMix):
        with pytest.raises(ValueError, match="alpha"):
            cls(alpha=0)
        with pytest.raises(TypeError, match="alpha"):
            cls(alpha="1")
        with pytest.raises(TypeError, match="generator"):
            cls(generator=0)
        with pytest.raises(TypeError, match="x"):
            cls()(x.numpy(), y)
        with pytest.raises(ValueError, match="x"):
            cls()(x[0], y)
        with pytest.raises(ValueError, match="y"):
            cls()(x, y[:3])
        with pytest.raises(ValueError, match="partner_x"):
            cls()(x, y, partner_x=x[:, :, :8], partner_y=y)
        with pytest.raises(ValueError, match="partner_y"):
            cls()(x, y, partner_x=x)
        with pytest.raises(ValueError, match="partner_y"):
            cls()(x, y, partner_y=y)
