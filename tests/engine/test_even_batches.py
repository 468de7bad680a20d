"""EvenBatchSampler: every item of an epoch exactly once, in ceil(n / B) near-equal batches."""
import math

import pytest

from ltzoo.engine.builders import build_sampler
from ltzoo.engine.even_batches import EvenBatchSampler
from ltzoo.samplers.uniform import RandomSampler  # noqa: F401  (registers "random")


@pytest.mark.parametrize("n,b", [(100, 32), (7, 3), (64, 64), (5, 256), (257, 256)])
def test_fidelity_even_batches_keep_every_item(n, b):
    labels = [i % 4 for i in range(n)]
    sampler = build_sampler("random", labels, 4, seed=0, sampler_args={"num_replicas": 1, "rank": 0})
    batches = list(EvenBatchSampler(sampler, b))
    assert len(batches) == math.ceil(n / b) == len(EvenBatchSampler(sampler, b))
    assert sorted(i for batch in batches for i in batch) == list(range(n))  # nothing dropped, nothing repeated
    sizes = [len(batch) for batch in batches]
    assert max(sizes) - min(sizes) <= 1 and max(sizes) <= b


def test_even_batches_refuse_bad_batch_size():
    with pytest.raises(ValueError, match="batch_size"):
        EvenBatchSampler(range(3), 0)
