"""Standard transforms: shapes, normalisation constants and the tensor random crop."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms as T

from ltzoo.data import (
    TensorRandomCrop,
    build_transform,
    cifar_test_transform,
    cifar_train_transform,
    imagenet_test_transform,
    imagenet_train_transform,
)


def _pil(w, h, seed=0):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8))


def test_cifar_test_transform_normalises_with_cifar_stats():
    img = _pil(32, 32)
    out = cifar_test_transform()(img)
    assert out.shape == (3, 32, 32)
    raw = np.asarray(img, dtype=np.float32)[5, 7] / 255.0
    mean, std = np.array([0.4914, 0.4822, 0.4465]), np.array([0.2023, 0.1994, 0.2010])
    np.testing.assert_allclose(out[:, 5, 7].numpy(), (raw - mean) / std, rtol=1e-5, atol=1e-5)


def test_cifar_train_transform_shape_and_randomness():
    img = _pil(32, 32)
    tf = cifar_train_transform()
    assert any(isinstance(t, T.RandomCrop) and t.padding == 4 for t in tf.transforms)
    assert any(isinstance(t, T.RandomHorizontalFlip) for t in tf.transforms)
    torch.manual_seed(0)
    outs = [tf(img) for _ in range(8)]
    assert all(o.shape == (3, 32, 32) for o in outs)
    assert any(not torch.equal(outs[0], o) for o in outs[1:])


def test_imagenet_transforms_sizes():
    img = _pil(300, 200)
    assert imagenet_train_transform()(img).shape == (3, 224, 224)
    assert imagenet_test_transform()(img).shape == (3, 224, 224)
    assert imagenet_test_transform(112)(img).shape == (3, 112, 112)
    resize = imagenet_test_transform().transforms[0]
    assert isinstance(resize, T.Resize) and resize.size == 256
    # test transform is deterministic
    assert torch.equal(imagenet_test_transform()(img), imagenet_test_transform()(img))


def test_tensor_random_crop_is_a_window_of_the_padded_image():
    img = torch.arange(3 * 8 * 8, dtype=torch.float32).reshape(3, 8, 8)
    padded = torch.nn.functional.pad(img, (2, 2, 2, 2), value=-1.0)
    crop = TensorRandomCrop(8, padding=2, fill=-1.0)
    torch.manual_seed(0)
    seen = set()
    for _ in range(50):
        out = crop(img)
        assert out.shape == (3, 8, 8)
        matches = [(y, x) for y in range(5) for x in range(5) if torch.equal(out, padded[:, y:y + 8, x:x + 8])]
        assert matches, "output is not a window of the padded image"
        seen.add(matches[0])
    assert len(seen) > 5
    assert torch.equal(TensorRandomCrop(8, padding=0)(img), img)


def test_build_transform():
    assert build_transform("none", True) is None
    assert build_transform("digits", False) is None
    assert isinstance(build_transform("digits", True), TensorRandomCrop)
    assert build_transform("cifar", False)(_pil(32, 32)).shape == (3, 32, 32)
    with pytest.raises(ValueError, match="kind"):
        build_transform("mnist", True)
    with pytest.raises(ValueError, match="size"):
        imagenet_train_transform(0)
