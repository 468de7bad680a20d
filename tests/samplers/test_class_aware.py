"""The "random", "class_balanced" and "class_aware" samplers."""
import collections

import numpy as np
import pytest

import ltzoo
import ltzoo.samplers.class_aware  # noqa: F401  (registers "class_balanced", "class_aware")
import ltzoo.samplers.uniform  # noqa: F401  (registers "random")

COUNTS = [1000, 600, 350, 200, 120, 70, 40, 25, 15, 10]  # 100:1 long tail
LABELS = np.repeat(np.arange(len(COUNTS)), COUNTS)
rng = np.random.default_rng(0)
SHUFFLED = rng.permutation(LABELS)  # classes interleaved in the dataset


@pytest.mark.parametrize("n", [None, 1000, 2430 * 2 + 17])
def test_random_is_a_permutation_per_dataset_pass(n):
    s = ltzoo.create_sampler("random", labels=SHUFFLED, num_samples=n, seed=1)
    plan = s.plan(0)
    size = len(SHUFFLED)
    assert plan.shape == ((size if n is None else n),)
    for start in range(0, len(plan), size):
        chunk = plan[start:start + size]
        assert len(set(chunk.tolist())) == len(chunk)  # no repeat inside a pass
        if len(chunk) == size:
            assert sorted(chunk.tolist()) == list(range(size))


def test_class_balanced_frequencies_uniform_despite_imbalance():
    n, k = 60_000, len(COUNTS)
    s = ltzoo.create_sampler("class_balanced", labels=SHUFFLED, num_samples=n, seed=2)
    plan = s.plan(0)
    freq = np.bincount(SHUFFLED[plan], minlength=k)
    chi2 = float(((freq - n / k) ** 2 / (n / k)).sum())
    assert chi2 < 33.7  # chi-square, 9 dof: p = 1e-4
    # The instance-uniform sampler keeps the 100:1 imbalance: the same statistic explodes.
    rand = np.bincount(SHUFFLED[ltzoo.create_sampler("random", labels=SHUFFLED, seed=2).plan(0)], minlength=k)
    assert float(((rand - rand.sum() / k) ** 2 / (rand.sum() / k)).sum()) > 1000
    # Within the smallest class every instance is drawn about equally often (n/k/10 = 600 each).
    members = np.flatnonzero(SHUFFLED == k - 1)
    per_instance = collections.Counter(plan[np.isin(plan, members)].tolist())
    assert set(per_instance) == set(members.tolist())
    assert all(abs(v - 600) < 5 * np.sqrt(600) for v in per_instance.values())


def _blocks(labels_seq, s):
    """Split a label sequence into its class-visit blocks of s labels."""
    return [labels_seq[i:i + s] for i in range(0, len(labels_seq), s)]


@pytest.mark.parametrize("s", [1, 3])
def test_class_aware_round_robin_blocks(s):
    k = len(COUNTS)
    n = 7 * k * s + 2 * s + 1  # 7 full rounds, then a partial round ending mid-block
    sampler = ltzoo.create_sampler("class_aware", labels=SHUFFLED, num_samples=n, seed=4, samples_per_class=s)
    seq = SHUFFLED[sampler.plan(0)]
    blocks = _blocks(seq, s)
    for blk in blocks:
        assert len(set(blk.tolist())) == 1  # one class per visit
    visits = [int(b[0]) for b in blocks]
    rounds = [visits[i:i + k] for i in range(0, len(visits), k)]
    for rnd in rounds[:-1]:
        assert sorted(rnd) == list(range(k))  # every class once per round
    assert len(set(rounds[-1])) == len(rounds[-1])
    orders = {tuple(r) for r in rounds[:-1]}
    assert len(orders) > 1  # the class order is reshuffled between rounds
    freq = np.bincount(seq, minlength=k)
    expected = np.full(k, 7 * s)
    for c in rounds[-1]:
        expected[c] += s
    expected[rounds[-1][-1]] -= s - 1  # the last block is cut after one sample
    np.testing.assert_array_equal(freq, expected)


def test_class_aware_cycles_and_reshuffles_each_class_list():
    counts = [9, 4, 1]
    labels = np.repeat(np.arange(3), counts)
    sampler = ltzoo.create_sampler("class_aware", labels=labels, num_samples=3 * 36, seed=5, samples_per_class=2)
    plan = sampler.plan(0)
    for c, n_c in enumerate(counts):
        members = np.flatnonzero(labels == c)
        drawn = plan[labels[plan] == c]
        assert len(drawn) == 36
        chunks = [drawn[i:i + n_c] for i in range(0, 36, n_c)]
        for ch in chunks:
            if len(ch) == n_c:  # each pass through the class list is a permutation of it
                assert sorted(ch.tolist()) == members.tolist()
        if n_c > 3:
            assert len({tuple(ch.tolist()) for ch in chunks if len(ch) == n_c}) > 1  # reshuffled


def test_class_aware_default_one_sample_per_visit_and_epochs_differ():
    s = ltzoo.create_sampler("class_aware", labels=SHUFFLED, seed=0)
    assert s.samples_per_class == 1
    seq = SHUFFLED[s.plan(0)]
    k = len(COUNTS)
    for i in range(0, len(seq) - k + 1, k):
        assert sorted(seq[i:i + k].tolist()) == list(range(k))
    assert not np.array_equal(s.plan(0), s.plan(1))


@pytest.mark.parametrize("bad,exc", [(0, ValueError), (1.5, TypeError), (True, TypeError)])
def test_class_aware_bad_samples_per_class(bad, exc):
    with pytest.raises(exc, match="samples_per_class must be an integer >= 1"):
        ltzoo.create_sampler("class_aware", labels=LABELS, samples_per_class=bad)
