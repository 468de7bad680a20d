"""Contract shared by every sampler: registry, sharding, epochs, seeds and argument checks."""
import math

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import ltzoo
import ltzoo.samplers.base as base
import ltzoo.samplers.bmls  # noqa: F401  (registers "bmls")
import ltzoo.samplers.class_aware  # noqa: F401  (registers "class_balanced", "class_aware")
import ltzoo.samplers.uniform  # noqa: F401  (registers "random")

NAMES = ["random", "class_balanced", "class_aware", "bmls"]
LABELS = np.repeat(np.arange(5), [20, 9, 5, 3, 2])  # 39 samples, 5 classes, 10:1


def make(name, **kw):
    kw.setdefault("labels", LABELS)
    return ltzoo.create_sampler(name, **kw)


def test_registered():
    assert set(NAMES) <= set(ltzoo.list_samplers())


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("n,replicas", [(39, 1), (39, 4), (40, 4), (12, 5), (3, 8)])
def test_shards_are_disjoint_positions_covering_the_plan(name, n, replicas):
    plan = make(name, num_samples=n, seed=3).plan(2)
    shards = []
    for r in range(replicas):
        s = make(name, num_samples=n, seed=3, num_replicas=replicas, rank=r)
        s.set_epoch(2)
        np.testing.assert_array_equal(s.plan(), plan)  # the same plan on every rank
        items = list(s)
        assert len(items) == len(s) == math.ceil(n / replicas)
        shards.append(np.asarray(items))
    # Interleave the shards back: position k * R + r of the padded plan belongs to rank r only.
    total = math.ceil(n / replicas) * replicas
    padded = np.empty((total,) + plan.shape[1:], dtype=np.int64)
    for r, shard in enumerate(shards):
        padded[r::replicas] = shard
    np.testing.assert_array_equal(padded[:n], plan)  # together the ranks cover the plan once
    pad = [plan[k % n] for k in range(n, total)]  # padding repeats the start of the plan
    np.testing.assert_array_equal(padded[n:], np.asarray(pad).reshape(padded[n:].shape))


@pytest.mark.parametrize("name", NAMES)
def test_plan_depends_on_seed_and_epoch_only(name):
    a, b = make(name, seed=7), make(name, seed=7)
    np.testing.assert_array_equal(a.plan(4), b.plan(4))
    assert not np.array_equal(a.plan(4), a.plan(5))
    assert not np.array_equal(a.plan(4), make(name, seed=8).plan(4))
    b.set_epoch(4)
    assert [tuple(np.atleast_1d(x)) for x in b] == [tuple(np.atleast_1d(x)) for x in a.plan(4)]
    assert len(a) == len(LABELS) and a.plan(0).shape[0] == len(LABELS)  # default N = dataset size
    assert make(name, num_samples=100).plan(1).shape[0] == 100


@pytest.mark.parametrize("name", NAMES)
def test_replicas_default_to_torch_distributed(name, monkeypatch):
    monkeypatch.setattr(base, "rank_and_world_size", lambda: (2, 3))
    s = make(name)
    assert (s.rank, s.num_replicas) == (2, 3) and len(s) == 13
    s = make(name, num_replicas=2, rank=1)
    assert (s.rank, s.num_replicas) == (1, 2)


def test_without_process_group_single_replica():
    s = make("random")
    assert (s.rank, s.num_replicas) == (0, 1)


def test_replicas_from_an_initialised_gloo_group(tmp_path):
    dist = torch.distributed
    if not dist.is_available() or dist.is_initialized():
        pytest.skip("needs torch.distributed and no existing process group")
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        s = make("bmls")
        assert (s.rank, s.num_replicas) == (0, 1) and len(list(s)) == len(LABELS)
    finally:
        dist.destroy_process_group()


def test_integer_sampler_through_dataloader():
    ds = TensorDataset(torch.arange(len(LABELS)), torch.as_tensor(LABELS))
    s = make("class_aware", num_samples=20)
    batches = list(DataLoader(ds, sampler=s, batch_size=8))
    got = torch.cat([b[0] for b in batches]).numpy()
    np.testing.assert_array_equal(got, s.plan(0))


@pytest.mark.parametrize("name", ["class_balanced", "class_aware", "bmls"])
def test_empty_class_refused_naming_it(name):
    labels = [0, 0, 1, 3, 3]
    with pytest.raises(ValueError, match="class 2 is empty"):
        make(name, labels=labels)
    with pytest.raises(ValueError, match="class 4 is empty"):
        make(name, labels=[0, 1, 2, 3], num_classes=5)


def test_random_accepts_empty_class():
    s = make("random", labels=[0, 0, 3], num_classes=6)
    assert sorted(s.plan(0).tolist()) == [0, 1, 2]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    "kw,exc,match",
    [
        (dict(labels=[0, 1, 5], num_classes=3), ValueError, r"labels must lie in \[0, 3\)"),
        (dict(labels=[0, -1, 1]), ValueError, "labels must lie in"),
        (dict(labels=[[0, 1], [1, 0]]), ValueError, "1-D"),
        (dict(labels=[0.0, 1.5]), TypeError, "integer class indices"),
        (dict(labels=[]), ValueError, "at least one sample"),
        (dict(num_samples=0), ValueError, "num_samples must be an integer >= 1"),
        (dict(num_samples=2.5), TypeError, "num_samples must be an integer"),
        (dict(num_replicas=2, rank=2), ValueError, r"rank must lie in \[0, num_replicas=2\)"),
        (dict(num_replicas=2, rank=-1), ValueError, "rank must be an integer >= 0"),
        (dict(num_replicas=0, rank=0), ValueError, "num_replicas must be an integer >= 1"),
        (dict(seed=-1), ValueError, "seed must be an integer >= 0"),
        (dict(seed="0"), TypeError, "seed must be an integer"),
        (dict(num_classes=0), ValueError, "num_classes must be an integer >= 1"),
    ],
)
def test_bad_arguments(name, kw, exc, match):
    with pytest.raises(exc, match=match):
        make(name, **kw)


@pytest.mark.parametrize("name", NAMES)
def test_bad_epoch(name):
    s = make(name)
    with pytest.raises(ValueError, match="epoch must be an integer >= 0"):
        s.set_epoch(-1)
    with pytest.raises(TypeError, match="epoch must be an integer"):
        s.plan(1.0)


def test_shard_positions_pad_with_plan_start():
    np.testing.assert_array_equal(base.shard_positions(5, 1, 3), [1, 4])
    np.testing.assert_array_equal(base.shard_positions(5, 2, 3), [2, 0])
    np.testing.assert_array_equal(base.shard_positions(2, 4, 5), [0])


def test_repr_names_class_and_arguments():
    r = repr(make("class_aware", samples_per_class=2))
    assert "ClassAwareSampler" in r and "samples_per_class=2" in r and "num_samples=39" in r
