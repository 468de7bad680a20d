"""The balanced mixed-label sampler "bmls" (BMLS paper, Sec. 4.1, Eq. 2)."""
import collections
import math

import numpy as np
import pytest

import ltzoo
import ltzoo.samplers.bmls  # noqa: F401  (registers "bmls")
from ltzoo.samplers.bmls import FeistelPermutation, decode_label_pairs, encode_label_pairs, num_label_pairs


def lt_labels(counts, seed=0):
    """Shuffled labels with the given per-class counts."""
    labels = np.repeat(np.arange(len(counts)), counts)
    return np.random.default_rng(seed).permutation(labels)


def brute_pairs(k, singletons):
    return [(a, b) for a in range(k) for b in range(a if singletons else a + 1, k)]


def mixed_counts(labels, plan):
    """Counter of (label(i), label(j)) over a plan, by brute force."""
    return collections.Counter(zip(labels[plan[:, 0]].tolist(), labels[plan[:, 1]].tolist()))


@pytest.mark.parametrize("singletons", [False, True])
def test_decode_is_the_row_major_bijection_small_k(singletons):
    for k in range(1 if singletons else 2, 51):
        pairs = brute_pairs(k, singletons)
        assert num_label_pairs(k, singletons) == len(pairs)
        a, b = decode_label_pairs(np.arange(len(pairs)), k, singletons)
        assert list(zip(a.tolist(), b.tolist())) == pairs
        ea, eb = np.asarray(pairs).T
        np.testing.assert_array_equal(encode_label_pairs(ea, eb, k, singletons), np.arange(len(pairs)))


@pytest.mark.parametrize("singletons", [False, True])
def test_decode_near_the_ends_and_row_boundaries_k8142(singletons):
    k = 8142
    p_total = num_label_pairs(k, singletons)
    assert p_total == (k * (k + 1) if singletons else k * (k - 1)) // 2
    # Independent decode: row starts by cumulative row lengths, then a binary search.
    lengths = np.arange(k, 0, -1) if singletons else np.arange(k - 1, 0, -1)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    rows = np.r_[0:40, k // 2 - 20:k // 2 + 20, len(lengths) - 40:len(lengths)]
    idx = np.unique(np.concatenate([
        np.arange(3000), np.arange(p_total - 3000, p_total),
        starts[rows] - 1, starts[rows], starts[rows] + 1,
        np.random.default_rng(0).integers(0, p_total, 100_000),
    ]).clip(0, p_total - 1))
    a_ref = np.searchsorted(starts, idx, side="right") - 1
    b_ref = a_ref + idx - starts[a_ref] + (0 if singletons else 1)
    a, b = decode_label_pairs(idx, k, singletons)
    np.testing.assert_array_equal(a, a_ref)
    np.testing.assert_array_equal(b, b_ref)
    assert (a[-1], b[-1]) == (k - 1, k - 1) if singletons else (k - 2, k - 1)


def test_enumeration_matches_the_mixed_singleton_loss():
    ms = pytest.importorskip("ltzoo.losses.mixed_singleton")
    k = 23
    a, b = decode_label_pairs(np.arange(num_label_pairs(k)), k)
    np.testing.assert_array_equal(ms.mixed_label_index(a, b, k), np.arange(len(a)))


def test_decode_refuses_out_of_range():
    with pytest.raises(ValueError, match=r"index must lie in \[0, 45\)"):
        decode_label_pairs([45], 10)
    with pytest.raises(ValueError, match="0 <= a < b"):
        encode_label_pairs(3, 3, 10)


@pytest.mark.parametrize("size", [1, 2, 3, 7, 45, 1000, 4097, 65_536, 250_001])
def test_feistel_is_a_keyed_bijection(size):
    perm = FeistelPermutation(size, seed=11)
    y = perm(np.arange(size))
    np.testing.assert_array_equal(np.sort(y), np.arange(size))
    np.testing.assert_array_equal(y, FeistelPermutation(size, seed=11)(np.arange(size)))
    if size > 10:
        assert not np.array_equal(y, FeistelPermutation(size, seed=12)(np.arange(size)))
        assert not np.array_equal(y, np.arange(size))
    np.testing.assert_array_equal(perm(np.arange(size).reshape(1, -1)), y.reshape(1, -1))
    assert perm(size - 1).shape == () and int(perm(size - 1)) == y[-1]
    with pytest.raises(ValueError, match="positions must lie in"):
        perm([size])


@pytest.mark.parametrize("singletons", [False, True])
@pytest.mark.parametrize("n", [45 * 20 + 13, 55, 1000])
def test_mixed_labels_balanced_within_epoch_when_n_ge_p(singletons, n):
    labels = lt_labels([500, 300, 200, 100, 80, 50, 30, 20, 10, 5])
    k = 10
    p_total = 55 if singletons else 45
    s = ltzoo.create_sampler("bmls", labels=labels, num_samples=n, seed=3, include_singletons=singletons)
    for epoch in range(3):
        plan = s.plan(epoch)
        assert plan.shape == (n, 2)
        counts = mixed_counts(labels, plan)
        assert set(counts) == set(brute_pairs(k, singletons))  # every mixed label occurs
        assert max(counts.values()) - min(counts.values()) <= 1
        assert min(counts.values()) == n // p_total
        la, lb = labels[plan[:, 0]], labels[plan[:, 1]]
        assert np.all(la <= lb) if singletons else np.all(la < lb)


@pytest.mark.parametrize("singletons", [False, True])
def test_cumulative_coverage_balanced_when_p_gt_n(singletons):
    k = 30
    labels = lt_labels(np.linspace(60, 2, k).astype(int), seed=1)
    p_total = num_label_pairs(k, singletons)  # 435 or 465
    n = 100
    s = ltzoo.create_sampler("bmls", labels=labels, num_samples=n, seed=9, include_singletons=singletons)
    total = collections.Counter()
    for epoch in range(math.ceil(p_total / n) + 2):
        counts = mixed_counts(labels, s.plan(epoch))
        assert max(counts.values()) == 1  # N < P: no mixed label twice in an epoch
        total.update(counts)
        full = {pair: total.get(pair, 0) for pair in brute_pairs(k, singletons)}
        assert max(full.values()) - min(full.values()) <= 1  # coverage so far differs by <= 1


def test_every_pair_exactly_once_over_p_over_n_epochs():
    k, n = 30, 87  # P = 435 = 5 * 87
    labels = lt_labels(np.linspace(40, 3, k).astype(int), seed=2)
    s = ltzoo.create_sampler("bmls", labels=labels, num_samples=n, seed=0)
    total = collections.Counter()
    for epoch in range(5):
        total.update(mixed_counts(labels, s.plan(epoch)))
    assert total == collections.Counter(brute_pairs(k, False))


def test_inaturalist_scale_epoch_is_a_window_of_distinct_pairs():
    k, n = 8142, 437_513
    counts = np.maximum(2, (1000 * 0.002 ** (np.arange(k) / (k - 1)))).astype(int)
    labels = np.repeat(np.arange(k), counts)
    s = ltzoo.create_sampler("bmls", labels=labels, num_samples=n, seed=0)
    p0, p1 = s.label_plan(0), s.label_plan(1)
    both = np.sort(np.concatenate([p0, p1]))
    assert np.all(np.diff(both) > 0)  # 2N distinct labels: epochs 0 and 1 are disjoint windows, P > 2N
    plan = s.plan(0)
    assert np.all(labels[plan[:, 0]] < labels[plan[:, 1]])
    np.testing.assert_array_equal(encode_label_pairs(labels[plan[:, 0]], labels[plan[:, 1]], k), p0)


def test_instances_drawn_uniformly_within_each_class():
    labels = lt_labels([3, 2, 2])
    s = ltzoo.create_sampler("bmls", labels=labels, num_samples=30_000, seed=4)
    plan = s.plan(0)
    firsts = collections.Counter(plan[labels[plan[:, 0]] == 0, 0].tolist())  # class 0 is always first
    assert set(firsts) == set(np.flatnonzero(labels == 0).tolist())
    assert all(abs(v - 20_000 / 3) < 5 * math.sqrt(20_000 / 3) for v in firsts.values())


def test_reproducible_and_seeded():
    labels = lt_labels([50, 20, 10, 5, 3])
    a = ltzoo.create_sampler("bmls", labels=labels, seed=5)
    b = ltzoo.create_sampler("bmls", labels=labels, seed=5)
    np.testing.assert_array_equal(a.plan(3), b.plan(3))
    assert not np.array_equal(a.plan(3), a.plan(4))
    assert not np.array_equal(a.plan(3), ltzoo.create_sampler("bmls", labels=labels, seed=6).plan(3))


def test_iteration_yields_index_tuples_sharded():
    labels = lt_labels([50, 20, 10, 5, 3])
    s = ltzoo.create_sampler("bmls", labels=labels, num_replicas=3, rank=1, seed=1)
    s.set_epoch(2)
    items = list(s)
    assert len(items) == len(s) == math.ceil(len(labels) / 3)
    assert all(isinstance(t, tuple) and len(t) == 2 and all(isinstance(v, int) for v in t) for t in items)
    plan = s.plan(2)
    padded = np.concatenate([plan, plan[:2]])  # 88 pairs padded to 90 with the plan's start
    assert items == [tuple(p) for p in padded[1::3].tolist()]


def test_bmls_arguments():
    with pytest.raises(ValueError, match="num_classes >= 2"):
        ltzoo.create_sampler("bmls", labels=[0, 0, 0])
    s = ltzoo.create_sampler("bmls", labels=[0, 0, 0], include_singletons=True)
    assert s.plan(0).tolist() and np.all(s.plan(0) >= 0)
    with pytest.raises(TypeError, match="include_singletons must be a bool"):
        ltzoo.create_sampler("bmls", labels=[0, 1], include_singletons=1)


@pytest.mark.parametrize("world,batch,n", [(1, 32, 250), (2, 32, 250), (4, 64, 1000), (1, 7, 45)])
def test_fidelity_bmls_epoch_under_drop_last_has_every_mixed_label_within_one(world, batch, n):
    """Eq. 2 after drop_last: the plan is whole global batches, so what the loaders yield is balanced."""
    labels = lt_labels([60, 30, 15, 8, 4, 2])  # K = 6, P = 15
    seen = []
    for rank in range(world):
        s = ltzoo.create_sampler("bmls", labels=labels, num_samples=n, seed=3, num_replicas=world, rank=rank,
                                 batch_size=batch)
        s.set_epoch(2)
        shard = list(iter(s))
        per_rank = batch // world
        kept = len(shard) // per_rank * per_rank  # what a DataLoader with drop_last yields
        assert kept == len(shard)  # nothing is dropped
        seen += shard[:kept]
    assert len(seen) == n // batch * batch
    counts = mixed_counts(labels, np.asarray(seen))
    assert set(counts) == set(brute_pairs(6, False))
    assert max(counts.values()) - min(counts.values()) <= 1


def test_fidelity_bmls_images_cycle_through_each_class_list():
    """Every member of a class is drawn floor or ceil(draws / n_c) times; none repeats before all are used."""
    labels = lt_labels([40, 9, 5, 3])
    s = ltzoo.create_sampler("bmls", labels=labels, num_samples=600, seed=1)
    plan = s.plan(0)
    drawn = np.concatenate([plan[:, 0], plan[:, 1]])  # both sides share one stream per class, a-side first
    for c, n_c in enumerate([40, 9, 5, 3]):
        of_c = drawn[labels[drawn] == c]
        per_member = collections.Counter(of_c.tolist())
        lo, hi = len(of_c) // n_c, -(-len(of_c) // n_c)
        assert set(per_member) == set(np.flatnonzero(labels == c).tolist())
        assert set(per_member.values()) <= {lo, hi}
        first_round = of_c[:n_c] if len(of_c) >= n_c else of_c
        assert len(set(first_round.tolist())) == len(first_round)  # a shuffled list, no repeat within a cycle

