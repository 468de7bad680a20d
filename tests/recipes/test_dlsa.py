"""DLSA recipe: the authors' flow optimisation (sampling, weighting, plain SGD, epoch choice on
validation) against hand computations, the filter's head/tail mechanism on a small fixed case, a run
on digits-LT features of a CE-trained small_cnn, and feature caching. Whether DLSA helps at this
scale is measured by benchmarks/bench_dlsa*.py, not asserted here. One intra-op thread: faster on
a shared machine, and the CNN's features depend on the thread count.
"""
import copy

import numpy as np
import pytest
import torch
from torch import nn

import ltzoo
from ltzoo.data import create_dataset
from ltzoo.engine.features import extract_features, fit_classifiers, stratified_split
from ltzoo.heads.flow import DLSAHead, FlowFilter
from ltzoo.losses.logit_adjusted import BalancedSoftmaxLoss
from ltzoo.recipes.dlsa import (
    balanced_softmax_counts,
    cluster_purity,
    draw_pairs,
    fit_dlsa_head,
    fit_flow_filter,
    train_dlsa,
)

SPLIT_SEED = 0


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
    kwargs = dict(seed=0, split_seed=SPLIT_SEED, epochs=30, progress=False,
                  cache_dir=tmp_path_factory.mktemp("dlsa_features"))  # later calls reuse the features
    head, report = train_dlsa(model, train_set, test_set, **kwargs)
    return model, train_set, test_set, head, report, kwargs


def test_dlsa_run_report_and_cache(digits_case):
    *_, head, report, kwargs = digits_case
    dlsa, plain = report["dlsa"], report["plain"]
    assert report["train_class_counts"] == [113, 87, 67, 52, 40, 31, 24, 18, 14, 11]
    assert dlsa["num_samples"] == plain["num_samples"] == 629
    assert report["train_routing"][0] == pytest.approx(0.3, abs=0.02)
    assert sum(report["test_routing"]) == pytest.approx(1.0)
    assert report["num_train"] + report["num_val"] == 457
    assert isinstance(head, ltzoo.HEADS.get("dlsa")) and not head.training
    assert {p.name for p in kwargs["cache_dir"].iterdir()} == {"train.safetensors", "test.safetensors"}


def _blobs(n_per_class=(300, 120, 30), dim=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(len(n_per_class), dim, generator=g) * 2
    x = torch.cat([c + torch.randn(n, dim, generator=g) for c, n in zip(centres, n_per_class)])
    y = torch.cat([torch.full((n,), i) for i, n in enumerate(n_per_class)])
    return x, y


def test_fidelity_dlsa_mechanism_weighted_mle_sends_the_tail_through_the_filter():
    """The head/tail separation DLSA builds on: with the class-weighted MLE ((n_max / n_c)^2) the flow
    fits the tail class's density best, so the 30% most likely samples the filter passes hold almost
    the whole tail class; unweighted (q = 0) far fewer. Small fixed case: 300 / 120 / 30 samples of
    three 8-d Gaussian blobs (measured: 29 of 30 tail samples pass with q = 2, 8 with q = 0)."""
    x, y = _blobs()
    tail = {}
    for q in (2.0, 0.0):
        head = DLSAHead(8, 3, num_components=12, seed=0)
        info = fit_dlsa_head(head, x, y, epochs=2, q=q)
        assert info["train_routing"][0] == pytest.approx(0.3, abs=0.01)
        passed = head.levels[0].passes(*head.levels[0].clusters(x))
        tail[q] = int((y[passed] == 2).sum())
    assert tail[2.0] >= 27  # at least 90% of the tail class
    assert tail[2.0] >= tail[0.0] + 10


def test_fidelity_flow_step_is_plain_sgd_on_the_authors_loss():
    """One epoch of N pairs in one batch (N < 1024) is one plain SGD step (lr 0.2, no momentum) on
    2 * mean(-w_ya log p(x_a)) + KL(mean posterior || uniform) + 0.02 * mean(sum_k q_k log p_k),
    w = (n_max / n_c)^2 normalised over classes, q the detached anchor posterior, anchors and
    negatives passed through the flow as two batches."""
    x, y = _blobs((40, 15, 5), dim=4)
    filt = FlowFilter(4, 5, seed=0)
    with torch.no_grad():
        for prm in filt.parameters():
            prm.add_(0.1 * torch.randn(prm.shape, generator=torch.Generator().manual_seed(1)))
    ref = copy.deepcopy(filt)
    info = fit_flow_filter(filt, x, y, 3, epochs=1, gen=torch.Generator().manual_seed(3))
    assert info["selected_epoch"] == 1 and len(info["loss"]) == 1
    a, b = draw_pairs(y, 60, torch.Generator().manual_seed(3))
    ref.train()
    oa, ob = ref(x[a]), ref(x[b])
    w = torch.tensor([(40 / 40) ** 2, (40 / 15) ** 2, (40 / 5) ** 2])
    w = w / w.sum()
    post = oa.cluster_logits.softmax(1).mean(0)  # t = 1: the bias-corrected estimate is the batch mean
    loss = (2.0 * (-w[y[a]] * oa.log_likelihood).mean() + (post * torch.log(post * 5)).sum()
            + 0.02 * (oa.cluster_logits.softmax(1).detach() * ob.cluster_logits.log_softmax(1)).sum(1).mean())
    assert info["loss"][0] == pytest.approx(float(loss.detach()), rel=1e-5)
    names = [n for n, _ in ref.named_parameters()]
    grads = torch.autograd.grad(loss, list(ref.parameters()))
    got = dict(filt.named_parameters())
    for name, prm, g in zip(names, ref.parameters(), grads):
        assert torch.allclose(got[name], prm - 0.2 * g, atol=1e-6), name
    buffers = dict(filt.named_buffers())
    for name, buf in ref.named_buffers():  # BatchNorm statistics: updated by both passes alike
        assert torch.allclose(buffers[name], buf, atol=1e-6), name


def _count_pure_by_hand(clusters, labels, min_purity, min_size):
    n = 0
    for k in set(clusters.tolist()):
        members = labels[clusters == k].tolist()
        top = max(members.count(c) for c in set(members))
        n += top / len(members) >= min_purity and len(members) >= min_size
    return n


def test_fidelity_flow_epoch_is_chosen_by_pure_validation_clusters():
    """The kept flow epoch has the most clusters with purity >= 0.7 and size >= 10 (scaled to the
    validation split's size) among the VALIDATION samples; recounted by hand on the restored filter."""
    x, y = _blobs((200, 80, 40), dim=6, seed=1)
    xv, yv = _blobs((50, 20, 10), dim=6, seed=1)
    xv = xv + 0.1 * torch.randn(xv.shape, generator=torch.Generator().manual_seed(2))
    filt = FlowFilter(6, 12, seed=0)
    info = fit_flow_filter(filt, x, y, 3, epochs=12, batch_size=64, val=(xv, yv), gen=torch.Generator().manual_seed(0))
    counts = info["pure_clusters"]
    assert len(counts) == 12 and len(set(counts)) > 1  # the count moves between epochs
    assert counts[info["selected_epoch"] - 1] == max(counts)
    with torch.no_grad():
        clusters = filt(xv).cluster_logits.argmax(1)
    assert _count_pure_by_hand(clusters, yv, 0.7, 10 * yv.numel() / y.numel()) == max(counts)


def test_fidelity_cluster_filter_keeps_only_pure_large_training_clusters():
    x, y = _blobs((200, 80, 40), dim=6, seed=1)
    head = DLSAHead(6, 3, num_components=12, seed=0)
    fit_dlsa_head(head, x, y, epochs=1, flow_epochs=10, cluster_filter=True, flow_batch_size=128)
    lv = head.levels[0]
    ll, c = lv.clusters(x)
    purity, size = cluster_purity(c, y, 12, 3)
    for k in range(12):
        members = y[c == k].tolist()
        by_hand = bool(members) and max(members.count(j) for j in set(members)) / len(members) >= 0.7 \
            and len(members) >= 10
        assert bool(lv.cluster_ok[k]) == by_hand
        assert float(purity[k]) == pytest.approx(max(members.count(j) for j in set(members)) / len(members)
                                                 if members else 0.0)
    assert 0 < int(lv.cluster_ok.sum()) < 12
    assert torch.equal(lv.passes(ll, c), (ll >= lv.threshold) & lv.cluster_ok[c])


def test_selection_never_sees_the_test_set(digits_case):
    model, train_set, _, head, report, kwargs = digits_case
    head2, report2 = train_dlsa(model, train_set, None, **kwargs)
    assert "dlsa" not in report2 and report2["selected"] == report["selected"]
    for (name, a), b in zip(head.state_dict().items(), head2.state_dict().values()):
        assert torch.equal(a, b), name


def test_dlsa_report_groups_follow_the_given_thresholds(digits_case):
    model, train_set, test_set, _, report, kwargs = digits_case
    _, rep = train_dlsa(model, train_set, test_set, groups={"many_threshold": 60, "few_threshold": 30}, **kwargs)
    counts = np.array(report["train_class_counts"])
    for who in ("dlsa", "plain"):
        per_class = np.array(rep[who]["per_class"])
        assert rep[who]["few"] == pytest.approx(per_class[counts < 30].mean())  # 5 classes instead of 3
        assert rep[who]["many"] == pytest.approx(per_class[counts > 60].mean())
        assert rep[who]["top1"] == pytest.approx(report[who]["top1"])  # same fit, other grouping


def test_candidates_are_chosen_on_validation(digits_case):
    model, train_set, _, _, _, kwargs = digits_case
    _, report = train_dlsa(model, train_set, None, candidates=[{"plain_on": "rest", "aided_on": "passed"}, {}],
                           **{**kwargs, "epochs": 5, "flow_epochs": 3})
    assert all(len(c) == 3 for c in report["flow_pure_clusters"]) and len(report["selected"]["flow_epoch"]) == 1
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


def test_dlsa_balanced_softmax_counts_by_prior():
    level = torch.tensor([0, 0, 0, 1, 1, 2])
    branch = torch.tensor([0, 1, 1])
    assert balanced_softmax_counts(branch, level, 4, "branch").tolist() == [1, 2, 1, 1]  # absent classes as 1
    assert balanced_softmax_counts(branch, level, 4, "level").tolist() == [3, 2, 1, 1]
    with pytest.raises(ValueError, match="prior"):
        balanced_softmax_counts(branch, level, 4, "global")


@pytest.mark.parametrize("prior, expected", [("branch", 0.5), ("level", 0.9)])
def test_dlsa_level_prior_keeps_the_branch_class_prior(prior, expected):
    """Features carry no class information and 90% of class 0 but 10% of class 1 reach the branch:
    on balanced data, Bayes gives P(y=0 | branch) = 0.9 / (0.9 + 0.1). The "level" prior learns it;
    the "branch" prior predicts as if the branch were balanced."""
    gen = torch.Generator().manual_seed(0)
    level_y = torch.arange(2).repeat_interleave(1000)
    branch_y = torch.cat([torch.zeros(900, dtype=torch.long), torch.ones(100, dtype=torch.long)])
    x = torch.randn(branch_y.numel(), 4, generator=gen)
    torch.manual_seed(0)
    clf = nn.Linear(4, 2)
    crit = BalancedSoftmaxLoss(balanced_softmax_counts(branch_y, level_y, 2, prior))
    fit_classifiers([(lambda i: clf(x[i]), branch_y, crit)], [clf], epochs=40, lr=0.05, batch_size=100,
                    gen=gen, score=lambda: None, weight_decay=0.0)
    with torch.no_grad():
        p0 = clf(torch.randn(5000, 4, generator=gen)).softmax(1)[:, 0].mean()
    assert float(p0) == pytest.approx(expected, abs=0.04)


def test_dlsa_command_from_a_run_folder_saves_a_reloadable_head(tmp_path):
    """``ltzoo dlsa RUN --out OUT``: the saved head reloads (safetensors) and reproduces the reported DLSA
    summary on the run's test set; the feature cache is reused by a second call."""
    import json

    from ltzoo.cli import main
    from ltzoo.engine.data import build_datasets
    from ltzoo.engine.eval_checkpoint import load_for_eval
    from ltzoo.metrics import summarize
    from ltzoo.recipes.dlsa_run import load_dlsa_head

    run = tmp_path / "run"
    assert main(["train", "--data", "digits", "--imb-ratio", "20", "--model", "small_cnn", "--epochs", "1",
                 "--output-dir", str(run), "--no-progress", "--set", 'data_args={"image_size": 16}']) == 0
    out = tmp_path / "dlsa"
    args = ["dlsa", str(run), "--out", str(out), "--epochs", "3", "--flow-epochs", "2", "--no-progress"]
    assert main(args + ["--filter-ratio", "0.4"]) == 0
    report = json.loads((out / "report.json").read_text())
    head = load_dlsa_head(out)
    assert head.filter_ratio == 0.4 and not head.training
    model, cfg, counts = load_for_eval(run)
    _, test_set, _ = build_datasets(cfg)
    xt, yt = extract_features(model, test_set, progress=False)
    with torch.no_grad():
        again = summarize(yt, head(xt).argmax(1), counts)
    assert again["top1"] == pytest.approx(report["dlsa"]["top1"]) and again["few"] == pytest.approx(report["dlsa"]["few"])
    cached = {p.name: p.stat().st_mtime_ns for p in (out / "features").iterdir()}
    assert set(cached) == {"train.safetensors", "test.safetensors"}
    assert main(args) == 0
    assert {p.name: p.stat().st_mtime_ns for p in (out / "features").iterdir()} == cached
    with pytest.raises(ValueError, match="dlsa_head"):
        load_dlsa_head(tmp_path)


def test_reliability_feature_cache_of_another_model_is_refused(tmp_path):
    data = torch.utils.data.TensorDataset(torch.randn(10, 4), torch.arange(10) % 2)
    cache = tmp_path / "feats.safetensors"
    first = _Counting()
    extract_features(first, data, batch_size=4, cache_path=cache, progress=False)
    before = cache.read_bytes()
    other = _Counting()
    with torch.no_grad():
        for p in other.parameters():
            p.add_(1.0)  # same sample count and shapes, different weights
    with pytest.raises(ValueError, match=r"cache_path '.*feats\.safetensors' holds features of another model"):
        extract_features(other, data, batch_size=4, cache_path=cache, progress=False)
    assert cache.read_bytes() == before and other.calls == 0


def test_reliability_recompute_mode_replaces_a_stale_feature_cache(tmp_path):
    data = torch.utils.data.TensorDataset(torch.randn(10, 4), torch.arange(10) % 2)
    cache = tmp_path / "train.safetensors"
    extract_features(_Counting(), data, batch_size=4, cache_path=cache, progress=False)
    other = _Counting()
    feats, _ = extract_features(other, data, batch_size=4, cache_path=cache, progress=False, stale_cache="recompute")
    assert other.calls == 3 and torch.allclose(feats, other.fc(data.tensors[0]).detach())  # its own features
    again = _Counting()
    with pytest.raises(ValueError, match="stale_cache must be 'raise' or 'recompute'"):
        extract_features(again, data, cache_path=cache, stale_cache="reuse")
