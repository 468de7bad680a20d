"""The batched CIFAR augmentation against torchvision's per-sample pipeline."""
import collections

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torchvision import transforms as T

from ltzoo.data.batch_augment import BatchAugment, batch_augment_for
from ltzoo.data.transforms import (CIFAR_MEAN, CIFAR_STD, TensorRandomCrop, cifar_test_transform,
                                   cifar_train_transform, imagenet_train_transform)


def _images(n=6, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (n, 3, 32, 32), dtype=np.uint8))


def test_fidelity_crop_offsets_uniform_over_the_81_positions_and_flips_half_the_time():
    aug = batch_augment_for(cifar_train_transform())
    gen = torch.Generator().manual_seed(0)
    top, left, flips = aug.draw(81 * 400, 32, 32, gen)
    counts = collections.Counter(zip(top.tolist(), left.tolist()))
    assert set(counts) == {(t, s) for t in range(9) for s in range(9)}  # 9 x 9 offsets of the 40 x 40 padded image
    expected, sd = 400, 400 ** 0.5
    assert all(abs(c - expected) < 5 * sd for c in counts.values())  # no position favoured (5 sigma)
    assert abs(flips.float().mean().item() - 0.5) < 5 * (0.25 / flips.numel()) ** 0.5


def test_fidelity_batch_equals_torchvision_per_sample_for_the_same_draws():
    """Pad 4, crop at the drawn offset, flip, ToTensor, Normalize: torchvision per image == one batched op."""
    images = _images()
    aug = batch_augment_for(cifar_train_transform())
    gen = torch.Generator().manual_seed(3)
    top, left, flips = aug.draw(len(images), 32, 32, torch.Generator().manual_seed(3))
    out = aug(images, gen)
    for i in range(len(images)):
        pil = Image.fromarray(images[i].permute(1, 2, 0).numpy())
        x = TF.crop(TF.pad(pil, 4, fill=0), int(top[i]), int(left[i]), 32, 32)
        if flips[i]:
            x = TF.hflip(x)
        ref = TF.normalize(TF.to_tensor(x), CIFAR_MEAN, CIFAR_STD)
        assert torch.allclose(out[i], ref, atol=1e-6), i
    assert flips.any() and (~flips).any()  # both branches exercised


def test_fidelity_normalisation_equals_torchvision_on_the_same_image():
    images = _images(3)
    out = batch_augment_for(cifar_test_transform())(images)
    for i in range(3):
        ref = cifar_test_transform()(Image.fromarray(images[i].permute(1, 2, 0).numpy()))
        assert torch.allclose(out[i], ref, atol=1e-6)


def test_recognised_transforms_and_the_rest():
    assert batch_augment_for(None).random is False
    crop = batch_augment_for(TensorRandomCrop(16, padding=1, fill=-1.0))
    assert (crop.size, crop.padding, crop.fill, crop.flip, crop.mean) == (16, 1, -1.0, False, None)
    assert batch_augment_for(imagenet_train_transform(32)) is None  # RandomResizedCrop: per-sample path
    assert batch_augment_for(T.Compose([T.RandomCrop(32, padding=4, padding_mode="reflect"), T.ToTensor()])) is None
    assert batch_augment_for(lambda x: x) is None


def test_seeded_draws_are_reproducible_and_work_on_float_images():
    x = torch.randn(4, 3, 16, 16)
    aug = BatchAugment(16, padding=2, flip=True, fill=-1.0)
    a = aug(x, torch.Generator().manual_seed(5))
    b = aug(x, torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and a.dtype == torch.float32
    with pytest.raises(ValueError, match="mean and std"):
        BatchAugment(mean=(0.5,))
    with pytest.raises(ValueError, match="smaller than the crop"):
        BatchAugment(40)(x)
