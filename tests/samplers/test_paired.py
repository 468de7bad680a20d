"""PairedDataset: (i, j) index pairs -> (x_i, y_i, x_j, y_j), through a DataLoader."""
import math

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import ltzoo
import ltzoo.samplers.bmls  # noqa: F401  (registers "bmls")
from ltzoo.samplers.paired import PairedDataset

LABELS = np.random.default_rng(0).permutation(np.repeat(np.arange(4), [20, 10, 5, 3]))
X = torch.randn(len(LABELS), 3, 4, 4)
DS = TensorDataset(X, torch.as_tensor(LABELS))


def test_getitem_returns_both_items():
    paired = PairedDataset(DS)
    assert len(paired) == len(DS)
    x_i, y_i, x_j, y_j = paired[(2, 5)]
    assert torch.equal(x_i, X[2]) and torch.equal(x_j, X[5])
    assert int(y_i) == LABELS[2] and int(y_j) == LABELS[5]
    assert torch.equal(paired[[np.int64(1), torch.tensor(3)]][2], X[3])


@pytest.mark.parametrize("replicas", [1, 2])
def test_bmls_batches_through_dataloader(replicas):
    batches = []
    for rank in range(replicas):
        sampler = ltzoo.create_sampler("bmls", labels=LABELS, seed=1, num_replicas=replicas, rank=rank)
        sampler.set_epoch(1)
        loader = DataLoader(PairedDataset(DS), sampler=sampler, batch_size=8)
        got = list(loader)
        assert sum(len(b[1]) for b in got) == math.ceil(len(LABELS) / replicas)
        batches += got
    x_i, y_i, x_j, y_j = (torch.cat(t) for t in zip(*batches))
    assert x_i.shape == (len(y_i), 3, 4, 4) and x_j.shape == x_i.shape
    assert torch.all(y_i < y_j)
    plan = ltzoo.create_sampler("bmls", labels=LABELS, seed=1).plan(1)
    if replicas == 1:
        assert torch.equal(x_i, X[plan[:, 0]]) and torch.equal(x_j, X[plan[:, 1]])


@pytest.mark.parametrize("index", [3, (1, 2, 3), (1,), (1.0, 2), "ab", (True, 1), None])
def test_non_pair_index_refused(index):
    with pytest.raises(TypeError, match=r"pair \(i, j\)"):
        PairedDataset(DS)[index]


def test_dataset_argument_checked():
    with pytest.raises(TypeError, match="map-style dataset"):
        PairedDataset(42)
