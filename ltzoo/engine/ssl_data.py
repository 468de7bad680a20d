"""Data of long-tailed semi-supervised runs: LTSSL splits, weak / strong views, indexed items, loaders.

* :func:`make_ltssl_split` / :func:`make_ltssl_digits`: labeled and unlabeled subsets with the
  LTSSL profiles (``ltssl_counts`` + ``ltssl_split``): "consistent" gamma_u = gamma_l,
  "uniform" gamma_u = 1, "reversed" gamma_u = 1 / gamma_l (the flipped profile).
* :func:`ssl_views`: FixMatch's weak and strong augmentations of a dataset's raw images.
  weak = horizontal flip + random crop after REFLECTION padding of 1/8 of the side (4 px at 32);
  strong = the weak geometry, then RandAugment with a random magnitude per operation
  (:class:`~ltzoo.data.strong_augment.RandomMagnitudeRandAugment`: 2 operations, each with
  probability 0.5 at a level drawn from 1..10), then normalisation, then Cutout of a fixed
  square of half the side (16 x 16 at 32 px) filled with gray (FixMatch's reference order).
  Tensor datasets (``TensorImageDataset``, e.g. digits_lt, already normalised): RandAugment
  runs on the image de-normalised to uint8 (:class:`TensorRandAugment`). PIL datasets (CIFAR,
  image folders): built from the dataset's training transform, a ``Compose`` whose steps
  before ``ToTensor`` are the geometry (each ``RandomCrop`` switched to reflection padding)
  and the rest (``ToTensor``, ``Normalize``) the tensor tail; any other transform serves
  as the weak view as it is, the strong view adding RandAugment before and Cutout after it.
* :class:`IndexedDataset`: items ``(*views, label, index)``, so BEM's mix bank can store
  dataset indices and fetch partners again (:meth:`IndexedDataset.weak`).
* :func:`ssl_loader`: a loader of exactly ``steps * batch`` items per epoch and rank from the
  seeded, rank-sharded "random" sampler (re-planned by ``set_epoch``).
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

from ltzoo.data import TensorImageDataset, create_dataset, ltssl_counts, ltssl_split
from ltzoo.data.strong_augment import Cutout, RandomMagnitudeRandAugment

__all__ = ["IndexedDataset", "TensorWeakAugment", "TensorRandAugment", "ssl_views", "make_ltssl_split",
           "make_ltssl_digits", "ssl_loader", "raw_view"]


class TensorWeakAugment:
    """FixMatch's weak augmentation of a (C, H, W) tensor: reflect-padded random crop, random flip.

    Args:
        padding: Pixels of reflect padding before the crop back to (H, W) (FixMatch: 4 at 32 px).
        flip: Flip horizontally with probability 0.5.
    """

    def __init__(self, padding: int = 4, flip: bool = True) -> None:
        self.padding, self.flip = int(padding), bool(flip)

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        if self.flip and bool(torch.rand(()) < 0.5):
            img = img.flip(-1)
        p = self.padding
        if p <= 0:
            return img
        h, w = img.shape[-2:]
        padded = F.pad(img[None], (p, p, p, p), mode="reflect")[0]
        top, left = (int(v) for v in torch.randint(0, 2 * p + 1, (2,)))
        return padded[:, top:top + h, left:left + w].contiguous()


class TensorRandAugment:
    """FixMatch's random-magnitude RandAugment on a normalised float tensor (de-normalise to uint8, augment, re-normalise).

    Args:
        mean, std: The dataset's normalisation (scalars or per-channel; digits_lt: 0.5, 0.5).
        num_ops, max_level: :class:`~ltzoo.data.strong_augment.RandomMagnitudeRandAugment`'s
            arguments (2 operations, levels 1..10).
    """

    def __init__(self, mean: float | Sequence[float] = 0.5, std: float | Sequence[float] = 0.5, num_ops: int = 2,
                 max_level: int = 10) -> None:
        self.mean = torch.as_tensor(mean, dtype=torch.float32).reshape(-1, 1, 1)
        self.std = torch.as_tensor(std, dtype=torch.float32).reshape(-1, 1, 1)
        self.op = RandomMagnitudeRandAugment(num_ops=num_ops, max_level=max_level)

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        u8 = ((img * self.std + self.mean) * 255.0).round().clamp(0, 255).to(torch.uint8)
        return ((self.op(u8).float() / 255.0) - self.mean) / self.std


def _gray(mean: Any, std: Any) -> list[float]:
    """FixMatch's gray Cutout fill (127 of 255) in normalised units, per channel."""
    m = torch.as_tensor(mean, dtype=torch.float32).reshape(-1)
    sd = torch.as_tensor(std, dtype=torch.float32).reshape(-1)
    return ((127.0 / 255.0 - m) / sd).tolist()


def raw_view(dataset: Any) -> Any:
    """The dataset without its transform (``dataset.subset(all, transform=None)``), for re-augmenting."""
    if not hasattr(dataset, "subset"):
        raise TypeError(f"{type(dataset).__name__} has no .subset(indices, transform=None): use an ltzoo dataset "
                        "(create_dataset, make_ltssl_split) so that weak / strong views can be built")
    return dataset.subset(np.arange(len(dataset)), transform=None)


def _reflect(step: Callable) -> Callable:
    """A ``RandomCrop`` with reflection padding instead of its padding mode (other steps unchanged)."""
    if isinstance(step, T.RandomCrop) and step.padding:
        return T.RandomCrop(step.size, padding=step.padding, pad_if_needed=step.pad_if_needed, padding_mode="reflect")
    return step


def _pil_views(transform: Callable) -> tuple[Callable, Callable]:
    """Weak / strong views built from a PIL training transform (see the module docstring)."""
    steps = list(transform.transforms) if isinstance(transform, T.Compose) else None
    cut = None if steps is None else next((i for i, t in enumerate(steps) if isinstance(t, (T.ToTensor,
                                                                                             T.PILToTensor))), None)
    if cut is None:  # not a Compose with ToTensor: use the transform as the weak view, as it is
        return transform, T.Compose([RandomMagnitudeRandAugment(), transform, Cutout(16, fill=0.0)])
    geometry, tail = [_reflect(t) for t in steps[:cut]], steps[cut:]
    norm = next((t for t in tail if isinstance(t, T.Normalize)), None)
    fill = _gray(norm.mean, norm.std) if norm is not None else 127.0 / 255.0
    sizes = [t.size for t in geometry if isinstance(t, (T.RandomCrop, T.RandomResizedCrop, T.CenterCrop))]
    side = min(sizes[-1]) if sizes else 32
    weak = T.Compose([*geometry, *tail])
    strong = T.Compose([*geometry, RandomMagnitudeRandAugment(), *tail, Cutout(max(1, side // 2), fill=fill)])
    return weak, strong


def ssl_views(dataset: Any, flip: bool = True, mean: float | Sequence[float] = 0.5,
              std: float | Sequence[float] = 0.5) -> tuple[Callable, Callable]:
    """``(weak, strong)`` transforms of the raw images of ``dataset`` (see the module docstring).

    Args:
        dataset: An ltzoo dataset (its raw items are tensors or PIL images).
        flip: Tensor datasets only: flip in the weak view (PIL datasets use their own transform's).
        mean, std: Tensor datasets only: their normalisation, undone for RandAugment.

    Returns:
        The weak and the strong view, each a callable on one raw image.
    """
    if isinstance(dataset, TensorImageDataset):
        size = int(dataset.images.shape[-1])
        weak = TensorWeakAugment(max(1, size // 8), flip)
        return weak, T.Compose([weak, TensorRandAugment(mean, std), Cutout(max(1, size // 2), fill=_gray(mean, std))])
    transform = getattr(dataset, "transform", None)
    if transform is None:
        raise ValueError("the labeled/unlabeled set has no training transform to derive the weak view from "
                         "(e.g. cifar_train_transform())")
    return _pil_views(transform)


class IndexedDataset(Dataset):
    """Items ``(*[t(image) for t in transforms], label, index)`` of ``dataset``.

    Args:
        dataset: The set; with ``transforms`` its items' images should be raw (:func:`raw_view`).
        transforms: Views to return (e.g. ``[weak]`` or ``[weak, strong]``); None: the item's image as is.
    """

    def __init__(self, dataset: Any, transforms: Sequence[Callable] | None = None) -> None:
        self.dataset = dataset
        self.transforms = list(transforms) if transforms is not None else None

    @property
    def targets(self) -> list[int]:
        return list(self.dataset.targets)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> tuple[Any, ...]:
        img, label = self.dataset[i]
        views = [img] if self.transforms is None else [t(img) for t in self.transforms]
        return (*views, label, i)

    def weak(self, indices: Sequence[int] | torch.Tensor) -> torch.Tensor:
        """The first view (the weak one) of the items at ``indices``, stacked (mix-bank partners)."""
        items = [self.dataset[int(i)][0] for i in torch.as_tensor(indices).reshape(-1).tolist()]
        first = (lambda v: v) if self.transforms is None else self.transforms[0]
        return torch.stack([first(img) for img in items])


def make_ltssl_split(dataset: Any, n1: int, m1: int, gamma_l: float, gamma_u: float,
                     seed: int = 0) -> tuple[Any, Any]:
    """Labeled and unlabeled subsets of ``dataset`` with LTSSL counts (BEM Sec. 5 / DASO).

    N_c = N_1 gamma_l^(-c/(C-1)); M_c likewise with M_1 and gamma_u; gamma_u < 1 is "reversed"
    (the profile of ratio 1/gamma_u flipped, ``ltssl_counts``). Images are drawn per class with
    ``ltssl_split(targets, ..., seed)``, disjointly. Both subsets keep ``dataset``'s transform.

    Args:
        dataset: A labelled ltzoo dataset with ``targets``, ``num_classes`` and ``subset``.
        n1, m1: Labeled images of class 0; unlabeled images of the largest unlabeled class.
        gamma_l, gamma_u: Labeled / unlabeled imbalance ratios.
        seed: Seed of the per-class draw.

    Returns:
        ``(labeled, unlabeled)``; their ``class_counts`` equal ``ltssl_counts(...)``.
    """
    num_classes = int(getattr(dataset, "num_classes", len(dataset.classes)))
    lab_counts, unl_counts = ltssl_counts(n1, m1, num_classes, gamma_l, gamma_u)
    lab_idx, unl_idx = ltssl_split(dataset.targets, lab_counts, unl_counts, seed)
    return dataset.subset(lab_idx), dataset.subset(unl_idx)


def make_ltssl_digits(n1: int = 15, m1: int = 90, gamma_l: float = 10, gamma_u: float = 10, seed: int = 0,
                      image_size: int = 32) -> tuple[Any, Any, Any]:
    """LTSSL digits: ``(labeled, unlabeled, test)`` from scikit-learn's digits (no download).

    The source is digits_lt's balanced training split (113 images per class), so
    ``n1 + m1`` must not exceed 113 in any class; the test set is the balanced held-out split.

    Args:
        n1, m1, gamma_l, gamma_u, seed: See :func:`make_ltssl_split`.
        image_size: Side of the images (32, or e.g. 16 for fast CPU runs).
    """
    from ltzoo.engine.data import resize_tensor_dataset

    source = create_dataset("digits_lt", split="train", imb_ratio=1)
    test = create_dataset("digits_lt", split="test")
    if image_size != source.images.shape[-1]:
        source, test = resize_tensor_dataset(source, image_size, True), resize_tensor_dataset(test, image_size, False)
    labeled, unlabeled = make_ltssl_split(source, n1, m1, gamma_l, gamma_u, seed)
    return labeled, unlabeled, test


def ssl_loader(dataset: IndexedDataset, batch_size: int, steps: int, seed: int, num_workers: int = 0,
               pin_memory: bool = False) -> DataLoader:
    """A loader of ``steps`` batches of ``batch_size`` (per rank) from a seeded, rank-sharded random plan.

    The plan (``ltzoo.samplers.RandomSampler`` of ``steps * batch_size * world_size`` draws:
    concatenated permutations) depends on ``(seed, epoch)`` only; call ``loader.sampler.set_epoch``.
    """
    from ltzoo.distributed import rank_and_world_size
    from ltzoo.samplers.uniform import RandomSampler

    world = rank_and_world_size()[1]
    sampler = RandomSampler(np.zeros(len(dataset), dtype=np.int64), num_samples=steps * batch_size * world,
                            seed=seed, num_classes=1)  # label-free: unlabeled sets may have no labels
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers, drop_last=True,
                      pin_memory=pin_memory, persistent_workers=False)
