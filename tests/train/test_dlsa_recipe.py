"""DLSA recipe on digits-LT features of a CE-trained small_cnn (a small fixed case), and feature caching.

The few-class comparison allows FEW_TOLERANCE points: on digits-LT DLSA matches the plain classifier
within that noise but does not beat it (benchmarks/results/dlsa_digits.json: default variant, few
delta -1.6 .. +1.6 over 10 runs; this case over CNN seeds 0-4: -1.6 .. +3.7; the authors' variant
loses 5 to 13 points, which this check catches). One intra-op thread: faster on a shared machine,
and the CNN's features (hence the numbers) depend on the thread count.
"""
import numpy as np
import pytest
import torch
from torch import nn

import ltzoo
from ltzoo.data import create_dataset
from ltzoo.train.dlsa import train_dlsa
from ltzoo.train.features import extract_features, stratified_split

SPLIT_SEED = 0
FEW_TOLERANCE = 2.0  # points of few-class mean recall (about 4 of the 190 few-class test images)


def _train_ce(dataset, epochs: int = 6, seed: int = 0, width: int = 64) -> nn.Module:
    """small_cnn trained with plain cross-entropy (SGD, batch 64)."""
    torch.manual_seed(seed)
    model = ltzoo.create_model("small_cnn", num_classes=10, backbone_args={"width": width})
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    x, y = dataset.images, torch.tensor(dataset.targets)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(y), generator=gen)
        for i in range(0, len(y), 64):
            idx = perm[i:i + 64]
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny ops on a shared 2-core machine: one intra-op thread is many times faster than two."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def digits_case(tmp_path_factory, one_thread):
    train_set = create_dataset("digits_lt", split="train", imb_ratio=10, transform="none")
    test_set = create_dataset("digits_lt", split="test")
    fit_part, _ = stratified_split(train_set.targets, 0.2, SPLIT_SEED)  # the backbone never sees validation
    model = _train_ce(train_set.subset(fit_part))
    kwargs = dict(seed=0, split_seed=SPLIT_SEED, epochs=30, flow_epochs=15, progress=False,
                  cache_dir=tmp_path_factory.mktemp("dlsa_features"))  # later calls reuse the features
    head, report = train_dlsa(model, train_set, test_set, **kwargs)
    return model, train_set, test_set, head, report, kwargs


def test_dlsa_few_class_accuracy_not_below_plain_classifier(digits_case):
    """Measured (1 thread): few 82.9 (DLSA) vs 83.9 (plain), top1 93.2 vs 93.5."""
    *_, head, report, kwargs = digits_case
    dlsa, plain = report["dlsa"], report["plain"]
    print({k: (round(dlsa[k], 1), round(plain[k], 1)) for k in ("top1", "many", "medium", "few", "hmean")})
    assert report["train_class_counts"] == [113, 87, 67, 52, 40, 31, 24, 18, 14, 11]
    assert dlsa["few"] >= plain["few"] - FEW_TOLERANCE
    assert dlsa["num_samples"] == plain["num_samples"] == 629
    assert report["train_routing"][0] == pytest.approx(0.3, abs=0.02)
    assert sum(report["test_routing"]) == pytest.approx(1.0)
    assert report["num_train"] + report["num_val"] == 457
    assert isinstance(head, ltzoo.HEADS.get("dlsa")) and not head.training
    assert {p.name for p in kwargs["cache_dir"].iterdir()} == {"train.safetensors", "test.safetensors"}


def test_selection_never_sees_the_test_set(digits_case):
    model, train_set, _, head, report, kwargs = digits_case
    head2, report2 = train_dlsa(model, train_set, None, **kwargs)
    assert "dlsa" not in report2 and report2["selected"] == report["selected"]
    for (name, a), b in zip(head.state_dict().items(), head2.state_dict().values()):
        assert torch.equal(a, b), name


def test_candidates_are_chosen_on_validation(digits_case):
    model, train_set, _, _, _, kwargs = digits_case
    _, report = train_dlsa(model, train_set, None, candidates=[{"plain_on": "rest", "aided_on": "passed"}, {}],
                           **{**kwargs, "epochs": 5, "flow_epochs": 3})
    keys = [c["val_key"] for c in report["candidates"]]
    assert report["selected"]["candidate"] == report["candidates"][int(np.argmax([k[0] for k in keys]))]["candidate"]


class _Counting(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        assert not self.training
        return self.fc(x)


def test_extract_features_caches_atomically(tmp_path):
    data = torch.utils.data.TensorDataset(torch.randn(10, 4), torch.arange(10) % 2)
    model = _Counting().train()
    cache = tmp_path / "sub" / "feats.safetensors"
    f1, y1 = extract_features(model, data, batch_size=4, cache_path=cache, progress=False)
    assert model.training and model.calls == 3 and cache.exists()
    assert f1.shape == (10, 3) and y1.tolist() == [i % 2 for i in range(10)]
    assert [p.name for p in cache.parent.iterdir()] == ["feats.safetensors"]  # no temporary left over
    f2, y2 = extract_features(model, data, batch_size=4, cache_path=cache, progress=False)
    assert model.calls == 3 and torch.equal(f1, f2) and torch.equal(y1, y2)
    with pytest.raises(ValueError, match="cache_path"):
        extract_features(model, torch.utils.data.TensorDataset(torch.randn(5, 4), torch.zeros(5)), cache_path=cache)


def test_extract_features_rejects_bad_arguments():
    data = torch.utils.data.TensorDataset(torch.randn(4, 4), torch.zeros(4))
    with pytest.raises(TypeError, match="model"):
        extract_features(lambda x: x, data)
    with pytest.raises(ValueError, match="batch_size"):
        extract_features(_Counting(), data, batch_size=0)
    with pytest.raises(TypeError, match="data"):
        extract_features(_Counting(), [1, 2, 3])


def test_stratified_split():
    labels = np.array([0] * 50 + [1] * 10 + [2] * 2 + [3])
    tr, va = stratified_split(labels, 0.2, seed=1)
    assert np.intersect1d(tr, va).size == 0 and np.union1d(tr, va).tolist() == list(range(labels.size))
    assert np.bincount(labels[va], minlength=4).tolist() == [10, 2, 1, 0]  # >= 1 train sample kept per class
    assert np.array_equal(stratified_split(labels, 0.2, seed=1)[1], va)
    with pytest.raises(ValueError, match="val_fraction"):
        stratified_split(labels, 1.0)
