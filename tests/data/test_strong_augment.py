"""FixMatch's strong augmentation: random-magnitude RandAugment and a fixed-size Cutout."""
from collections import Counter

import numpy as np
import pytest
import torch
from PIL import Image, ImageEnhance, ImageOps

from ltzoo.data.strong_augment import OPS, Cutout, RandomMagnitudeRandAugment, apply_op


def image(seed=0, size=32):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))


def test_fidelity_randaugment_magnitude_varies_across_calls():
    ra = RandomMagnitudeRandAugment()
    torch.manual_seed(0)
    plans = [ra.draw_plan() for _ in range(2000)]
    ops = [op for plan in plans for op in plan]
    assert all(len(plan) == 2 for plan in plans)
    levels = Counter(op.level for op in ops)
    assert sorted(levels) == list(range(1, 11))  # every level 1..10 occurs, not one fixed magnitude
    assert all(300 <= c <= 500 for c in levels.values())  # uniform: 400 expected each (4000 draws)
    assert sorted({op.name for op in ops}) == sorted(OPS) and len(OPS) == 14
    assert 0.45 < np.mean([op.applied for op in ops]) < 0.55  # each operation applied with probability 0.5
    # the same op on the same image: seeded calls give different strengths, hence different images
    bright = RandomMagnitudeRandAugment(num_ops=1, prob=1.0, ops=["brightness"])
    img, outs = image(), set()
    for seed in range(12):
        torch.manual_seed(seed)
        outs.add(np.asarray(bright(img)).tobytes())
    assert len(outs) >= 4
    torch.manual_seed(3)
    plan = bright.draw_plan()
    torch.manual_seed(3)
    again = bright(img)
    factor = 0.05 + 0.09 * plan[0].level  # written out from FixMatch's range [0.05, 0.95]
    assert np.array_equal(np.asarray(again), np.asarray(ImageEnhance.Brightness(img).enhance(factor)))


@pytest.mark.parametrize("level", [1, 5, 10])
def test_fidelity_op_strengths_follow_the_fixmatch_pool(level):
    img = image(1)
    f = level / 10
    expected = {
        "color": ImageEnhance.Color(img).enhance(0.05 + 0.9 * f),
        "contrast": ImageEnhance.Contrast(img).enhance(0.05 + 0.9 * f),
        "posterize": ImageOps.posterize(img, 4 + int(4 * f)),
        "solarize": ImageOps.solarize(img, 256 - int(256 * f)),
        "rotate": img.rotate(-30 * f),  # sign -1: clockwise (both count angles counter-clockwise)
        "autocontrast": ImageOps.autocontrast(img),
        "equalize": ImageOps.equalize(img),
    }
    sign = {"rotate": -1}
    for name, want in expected.items():
        got = apply_op(img, name, level, sign.get(name, 1))
        assert np.array_equal(np.asarray(got), np.asarray(want)), name
    # translate_x moves the content by floor(0.3 f * 32) pixels; the uncovered border is black
    shift = int(0.3 * f * 32)
    out = np.asarray(apply_op(img, "translate_x", level, 1))
    assert np.array_equal(out[:, shift:], np.asarray(img)[:, :32 - shift]) and not out[:, :shift].any()
    # a uint8 tensor gets the same operation
    t = torch.as_tensor(np.array(img)).permute(2, 0, 1).contiguous()
    assert torch.equal(apply_op(t, "posterize", level), torch.as_tensor(np.array(expected["posterize"])).permute(2, 0, 1))


def test_fidelity_cutout_square_is_exactly_16x16_clipped_only_at_the_border():
    cut = Cutout(16, fill=1.0)
    torch.manual_seed(0)
    interior = border = 0
    for _ in range(400):
        mask = cut(torch.zeros(3, 32, 32))[0] == 1
        rows, cols = mask.any(1).nonzero().flatten(), mask.any(0).nonzero().flatten()
        top, bottom, left, right = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        assert mask.sum() == (bottom - top) * (right - left)  # a filled rectangle
        for lo, hi in ((top, bottom), (left, right)):
            assert 8 <= hi - lo <= 16  # the centre lies in the image: at least half the side survives
            if lo > 0 and hi < 32:
                assert hi - lo == 16  # away from the border: exactly 16 (shorter only where clipped)
        full = (bottom - top, right - left) == (16, 16)
        interior += full
        border += not full
    assert interior > 50 and border > 50
    per_channel = Cutout(4, fill=[1.0, 2.0, 3.0])(torch.zeros(3, 8, 8))
    assert sorted(per_channel.flatten().unique().tolist())[1:] == [1.0, 2.0, 3.0]


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="max_level"):
        RandomMagnitudeRandAugment(max_level=11)
    with pytest.raises(ValueError, match="ops"):
        RandomMagnitudeRandAugment(ops=["blur"])
    with pytest.raises(ValueError, match="level"):
        apply_op(image(), "rotate", 0)
    with pytest.raises(ValueError, match="size"):
        Cutout(0)
    with pytest.raises(TypeError, match="Cutout"):
        Cutout(16)(image())
