import math

import pytest
import torch

import ltzoo
from ltzoo.heads.flow import DLSAHead, FlowFilter, default_sigma
from ltzoo.heads.made import MADE, MAF
from ltzoo.train.dlsa import fit_dlsa_head


def _trained_filter(dim: int = 6, components: int = 5, seed: int = 0) -> FlowFilter:
    """A filter with non-trivial weights and BatchNorm statistics, in eval mode."""
    torch.manual_seed(seed)
    filt = FlowFilter(dim, components, seed=seed)
    with torch.no_grad():
        for p in filt.parameters():
            p.add_(0.3 * torch.randn_like(p))
    filt.train()
    for _ in range(5):
        filt(torch.randn(64, dim) * 2 + 1)  # updates the running statistics
    return filt.eval()


def test_flow_is_invertible():
    filt = _trained_filter(dim=8)
    x = torch.randn(32, 8) * 2 + 1
    with torch.no_grad():
        z = filt(x).z
        assert not torch.allclose(z, x, atol=1e-2)  # a non-trivial map
        assert torch.allclose(filt.inverse(z), x, atol=1e-4)


def test_log_det_matches_brute_force_jacobian():
    filt = _trained_filter(dim=5).double()
    x = torch.randn(4, 5, dtype=torch.float64)
    log_det = filt(x).log_det
    for i in range(x.shape[0]):
        jac = torch.autograd.functional.jacobian(lambda v: filt.flow(v[None])[0][0], x[i])
        assert torch.isclose(torch.linalg.slogdet(jac).logabsdet, log_det[i], atol=1e-8)


def test_made_is_autoregressive():
    made = MADE(6, 12, reverse=True)
    with torch.no_grad():
        for p in made.parameters():
            p.normal_()
    jac = torch.autograd.functional.jacobian(lambda v: made(v[None])[0][0], torch.randn(6))
    order = torch.arange(6).flip(0)  # reverse: variable 5 first
    depends = jac.abs() > 0
    allowed = (order[None, :] < order[:, None]) | torch.eye(6, dtype=torch.bool)  # z_i sees x_j earlier in the order
    assert not bool((depends & ~allowed).any())


def test_mixture_likelihood_and_posterior():
    filt = _trained_filter(dim=4, components=3)
    x = torch.randn(10, 4)
    with torch.no_grad():
        out = filt(x)
        log_n = torch.distributions.MultivariateNormal(filt.means, torch.eye(4)).log_prob(out.z[:, None, :])
        expected = log_n + out.log_det[:, None] - math.log(3)
        assert torch.allclose(out.cluster_logits, expected, atol=1e-4)
        assert torch.allclose(out.log_likelihood, torch.logsumexp(expected, 1), atol=1e-4)
        assert torch.allclose(out.cluster_logits.softmax(1).sum(1), torch.ones(10))


def test_default_sigma_follows_supplement_section_3():
    assert default_sigma(1024) == pytest.approx(math.sqrt(3 / 2048))
    assert default_sigma(1024) == pytest.approx(0.038, abs=1e-3)  # "about 0.04 at D = 1024"
    filt = FlowFilter(64, 200)
    assert filt.sigma == pytest.approx(default_sigma(64))
    assert float(filt.means.std()) == pytest.approx(default_sigma(64), rel=0.05)
    assert FlowFilter(64, 10, sigma=0.05).sigma == 0.05


def test_head_contract_and_unfitted_routing():
    head = ltzoo.create_head("dlsa", in_features=16, num_classes=4, depth=2)
    x = torch.randn(7, 16)
    with torch.no_grad():
        logits = head.eval()(x)
        assert logits.shape == (7, 4)
        z_last = head.levels[-1].encode(x)[2]
        assert torch.equal(logits, head.classifier(x, z_last))  # thresholds +inf: all to the regular classifier
    level, cluster = head.route(x)
    assert level.tolist() == [2] * 7 and cluster.tolist() == [-1] * 7
    assert head.cam_weights() is None
    assert head.default_loss in ltzoo.list_losses()
    assert head.num_components == 16  # min(500, 4 K)
    model = ltzoo.create_model("small_cnn", head="dlsa", num_classes=10)
    assert model.eval()(torch.randn(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("kwargs, match", [
    ({"filter_ratio": 1.5}, "filter_ratio"), ({"filter_ratio": 0}, "filter_ratio"), ({"depth": 0}, "depth"),
    ({"num_components": 0}, "num_components"), ({"sigma": -1.0}, "sigma"), ({"flow_blocks": 0}, "flow_blocks"),
    ({"aided_inputs": "XZ"}, "aided_inputs"), ({"regular_inputs": "XZP"}, "regular_inputs"),
])
def test_head_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DLSAHead(8, 3, **kwargs)


def test_head_rejects_bad_features():
    head = DLSAHead(8, 3).eval()
    with pytest.raises(ValueError, match="features"):
        head(torch.randn(4, 9))
    with pytest.raises(TypeError, match="features"):
        head([[0.0] * 8])


def _blobs(n_per_class=(40, 20, 8), dim=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(len(n_per_class), dim, generator=g) * 3
    x = torch.cat([c + torch.randn(n, dim, generator=g) for c, n in zip(centres, n_per_class)])
    y = torch.cat([torch.full((n,), i) for i, n in enumerate(n_per_class)])
    return x, y


def test_fitted_head_state_dict_round_trip():
    x, y = _blobs()
    head = DLSAHead(6, 3, num_components=4, depth=2, seed=0)
    info = fit_dlsa_head(head, x, y, flow_epochs=3, epochs=3, batch_size=32, plain_on="rest")
    assert sum(info["train_routing"]) == pytest.approx(1.0)
    assert info["train_routing"][0] == pytest.approx(0.3, abs=0.02)  # the 30% most likely pass level 0
    assert all(math.isfinite(float(lv.threshold)) for lv in head.levels)
    clone = DLSAHead(6, 3, num_components=4, depth=2, seed=123)  # other means and weights until loaded
    clone.load_state_dict(head.state_dict())
    clone.eval()
    xt = torch.randn(50, 6) * 3
    with torch.no_grad():
        assert torch.equal(clone(xt), head(xt))
        assert all(torch.equal(a, b) for a, b in zip(clone.route(xt), head.route(xt)))
    assert set(head.state_dict()) >= {"levels.0.threshold", "levels.0.cluster_hist", "levels.0.filter.means"}
    rows = head.levels[0].cluster_hist.sum(1)
    assert torch.all((rows == 0) | torch.isclose(rows, torch.ones(())))


def test_same_seed_same_head_and_routing_uses_the_fitted_eval_map():
    a, b, c = DLSAHead(6, 3, seed=1), DLSAHead(6, 3, seed=1), DLSAHead(6, 3, seed=2)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(a.levels[0].filter.means, c.levels[0].filter.means)
    x, y = _blobs()
    fit_dlsa_head(a, x, y, flow_epochs=2, epochs=2, batch_size=32)
    xt = torch.randn(20, 6) * 3
    with torch.no_grad():
        eval_route = a.route(xt)
        a.train()
        train_route = a.route(xt)
        stats = a.levels[0].filter.flow.layers[1].running_mean.clone()
        a(xt)
    assert all(torch.equal(p, q) for p, q in zip(eval_route, train_route))
    assert torch.equal(stats, a.levels[0].filter.flow.layers[1].running_mean)  # routing left BatchNorm alone


@pytest.mark.parametrize("kwargs, error, match", [
    ({"plain_on": "everything"}, ValueError, "plain_on"), ({"aided_on": "some"}, ValueError, "aided_on"),
    ({"prior": "global"}, ValueError, "prior"),
    ({"flow_epochs": 0}, ValueError, "flow_epochs"), ({"epochs": 0}, ValueError, "epochs"),
    ({"plain_on": "rest", "plain": torch.nn.Linear(6, 3)}, ValueError, "plain"),
    ({"flow_batch_size": 0}, ValueError, "flow_batch"),
])
def test_fit_dlsa_head_rejects_bad_arguments(kwargs, error, match):
    x, y = _blobs()
    with pytest.raises(error, match=match):
        fit_dlsa_head(DLSAHead(6, 3), x, y, **{"flow_epochs": 1, "epochs": 1, **kwargs})
    with pytest.raises(TypeError, match="head"):
        fit_dlsa_head(torch.nn.Linear(6, 3), x, y)
    with pytest.raises(ValueError, match="regular_inputs"):  # an XZ regular classifier is not the plain one
        fit_dlsa_head(DLSAHead(6, 3, regular_inputs="XZ"), x, y, plain=torch.nn.Linear(6, 3), flow_epochs=1, epochs=1)


def test_maf_blocks_alternate_order_with_batchnorm():
    maf = MAF(4, 8, blocks=2)
    kinds = [type(m).__name__ for m in maf.layers]
    assert kinds == ["MADE", "BatchNormFlow", "MADE", "BatchNormFlow"]


def _fitted_like(head: DLSAHead, seed: int = 0) -> DLSAHead:
    """Give every level a finite threshold, random histograms and non-trivial flows, in eval mode."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in head.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g))
        for lv in head.levels:
            lv.cluster_hist.copy_(torch.rand(lv.cluster_hist.shape, generator=g).softmax(1))
    return head.eval()


def test_fidelity_classifier_inputs_xzp_and_xz_use_the_flow_latent():
    """The authors' "XZP" cluster-aided classifier: fc(x) + fc_aided([z, P]); "XZ" regular: fc(x) + fc_z(z),
    z the flow latent of the sample's level (the last level's for the rest)."""
    head = _fitted_like(DLSAHead(6, 3, num_components=4, depth=1, aided_inputs="XZP", regular_inputs="XZ"))
    lv = head.levels[0]
    x = torch.randn(40, 6) * 2
    with torch.no_grad():
        out = lv.filter(x)
        lv.threshold.fill_(out.log_likelihood.median())
        passed = out.log_likelihood >= lv.threshold
        c = out.cluster_logits.argmax(1)
        aided = lv.classifier
        by_hand = torch.where(
            passed[:, None],
            x @ aided.fc.weight.T + aided.fc.bias
            + torch.cat([out.z, lv.cluster_hist[c]], 1) @ aided.fc_aided.weight.T + aided.fc_aided.bias,
            x @ head.classifier.fc.weight.T + head.classifier.fc.bias
            + out.z @ head.classifier.fc_z.weight.T + head.classifier.fc_z.bias)
        assert 0 < int(passed.sum()) < 40
        assert torch.allclose(head(x), by_hand, atol=1e-5)
    old = _fitted_like(DLSAHead(6, 3, num_components=4, aided_inputs="XP", regular_inputs="X"))
    lv = old.levels[0]
    with torch.no_grad():
        out = lv.filter(x)
        lv.threshold.fill_(out.log_likelihood.median())
        passed = out.log_likelihood >= lv.threshold
        hist = lv.cluster_hist[out.cluster_logits.argmax(1)]
        by_hand = torch.where(passed[:, None], lv.classifier.fc(x) + lv.classifier.fc_aided(torch.cat([x, hist], 1)),
                              old.classifier.fc(x))
        assert torch.allclose(old(x), by_hand, atol=1e-5)
        assert old.classifier.fc_z is None


def test_fidelity_cluster_filter_mask_sends_masked_clusters_on():
    """With the optional cluster filter, a sample passes only if its cluster is kept (cluster_ok) and its
    likelihood reaches the threshold; the others go to the next level (here: the regular classifier)."""
    head = _fitted_like(DLSAHead(6, 3, num_components=4, depth=1, aided_inputs="XZP", regular_inputs="XZ"))
    lv = head.levels[0]
    x = torch.randn(60, 6) * 2
    with torch.no_grad():
        ll, c = lv.clusters(x)
        lv.threshold.fill_(float(ll.min()))  # everyone reaches the threshold
        assert torch.equal(head.route(x)[0], torch.zeros(60, dtype=torch.long))
        masked = int(torch.bincount(c, minlength=4).argmax())
        lv.cluster_ok[masked] = False
        level, cluster = head.route(x)
        assert torch.equal(level, (c == masked).long())  # 1 = depth: the regular classifier
        assert torch.equal(cluster[c != masked], c[c != masked]) and bool((cluster[c == masked] == -1).all())
