"""Long-tailed data: count profiles, per-class selection, transforms and data sets.

Example::

    from ltzoo.data import create_dataset, long_tailed_counts
    long_tailed_counts(5000, 10, 100)[:3]                 # [5000, 2997, 1796]
    train = create_dataset("digits_lt", imb_ratio=10)     # no download needed
    train = create_dataset("cifar10_lt", root="data", imb_ratio=100, download=True)
    test = create_dataset("cifar10_lt", root="data", split="test")   # balanced
"""
from ltzoo.data.base import KEEP, LabeledDataset, LongTailedSubset, TensorImageDataset
from ltzoo.data.factory import create_dataset, list_datasets
from ltzoo.data.profiles import long_tailed_counts, ltssl_counts
from ltzoo.data.registry import DATASETS
from ltzoo.data.split_list import read_split_list
from ltzoo.data.subsets import ltssl_split, select_per_class
from ltzoo.data.transforms import (
    CIFAR_MEAN,
    CIFAR_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    TensorRandomCrop,
    build_transform,
    cifar_test_transform,
    cifar_train_transform,
    digits_train_transform,
    imagenet_test_transform,
    imagenet_train_transform,
)

__all__ = [
    "DATASETS",
    "KEEP",
    "LabeledDataset",
    "LongTailedSubset",
    "TensorImageDataset",
    "create_dataset",
    "list_datasets",
    "long_tailed_counts",
    "ltssl_counts",
    "select_per_class",
    "ltssl_split",
    "read_split_list",
    "CIFAR_MEAN",
    "CIFAR_STD",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "TensorRandomCrop",
    "build_transform",
    "cifar_train_transform",
    "cifar_test_transform",
    "digits_train_transform",
    "imagenet_train_transform",
    "imagenet_test_transform",
]
