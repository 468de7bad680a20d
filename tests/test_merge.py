import numpy as np
import pytest
import torch

import ltzoo
from ltzoo.merge import balanced_subsets, merge_state_dicts, recalibrate_batchnorm


def _model(seed):
    torch.manual_seed(seed)
    return ltzoo.create_model("small_cnn", num_classes=3)


def test_uniform_merge_is_the_mean_of_every_entry_including_bn_buffers():
    sds = [_model(s).state_dict() for s in range(3)]
    for i, sd in enumerate(sds):  # make BN statistics differ
        for k in sd:
            if k.endswith("running_mean"):
                sd[k] += i
            if k.endswith("num_batches_tracked"):
                sd[k] += 3 * i
    merged = merge_state_dicts(sds)
    for k, v in merged.items():
        if v.is_floating_point():
            assert torch.allclose(v, torch.stack([sd[k] for sd in sds]).mean(0), atol=1e-6), k
        else:
            assert v.item() == round(np.mean([sd[k].item() for sd in sds]))
    assert merged.keys() == sds[0].keys()


def test_weighted_merge_and_single_model_identity():
    a, b = _model(0).state_dict(), _model(1).state_dict()
    merged = merge_state_dicts([a, b], weights=[3, 1])
    key = "head.fc.weight"
    assert torch.allclose(merged[key], 0.75 * a[key] + 0.25 * b[key], atol=1e-6)
    same = merge_state_dicts([a])
    assert all(torch.equal(same[k], a[k]) for k in a)


def test_merged_model_of_identical_copies_gives_identical_outputs():
    model = _model(0).eval()
    merged = merge_state_dicts([model.state_dict()] * 4)
    other = _model(5).eval()
    other.load_state_dict(merged)
    x = torch.randn(4, 3, 32, 32)
    assert torch.allclose(model(x), other(x), atol=1e-5)


def test_incompatible_state_dicts_name_the_keys_and_shapes():
    a = _model(0).state_dict()
    b = ltzoo.create_model("small_cnn", num_classes=5).state_dict()
    with pytest.raises(ValueError, match=r"head\.fc\.weight: \(3, 128\) vs \(5, 128\)"):
        merge_state_dicts([a, b])
    c = dict(a)
    c.pop("head.fc.bias")
    c["extra.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match=r"missing keys \['head.fc.bias'\], unexpected keys \['extra.weight'\]"):
        merge_state_dicts([a, c])


@pytest.mark.parametrize("weights,match", [([1.0], "one entry"), ([1.0, -1.0], "non-negative"), ([0, 0], "not all zero")])
def test_bad_weights(weights, match):
    sd = _model(0).state_dict()
    with pytest.raises(ValueError, match=match):
        merge_state_dicts([sd, sd], weights=weights)


def test_bad_state_dicts_argument():
    with pytest.raises(TypeError, match="non-empty list"):
        merge_state_dicts([])
    with pytest.raises(TypeError, match="non-empty list"):
        merge_state_dicts(_model(0).state_dict())


def test_balanced_subsets_keep_min_of_count_and_per_class():
    labels = np.array([0] * 50 + [1] * 12 + [2] * 4)
    subsets = balanced_subsets(labels, num_subsets=5, per_class=10, seed=0)
    assert len(subsets) == 5
    for s in subsets:
        assert np.bincount(labels[s], minlength=3).tolist() == [10, 10, 4]
        assert len(set(s.tolist())) == len(s)
    assert not np.array_equal(subsets[0], subsets[1])  # different draws
    again = balanced_subsets(labels, num_subsets=5, per_class=10, seed=0)
    assert all(np.array_equal(x, y) for x, y in zip(subsets, again))


def test_recalibrate_batchnorm_matches_data_statistics():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.BatchNorm1d(2))
    data = torch.randn(64, 2) * torch.tensor([2.0, 0.5]) + torch.tensor([3.0, -1.0])
    loader = [(data[i:i + 16], None) for i in range(0, 64, 16)]
    recalibrate_batchnorm(net.eval(), loader)
    assert not net.training
    assert torch.allclose(net[0].running_mean, data.mean(0), atol=1e-5)
