"""FixMatch (+ LA / UDAL / BEM) on LTSSL digits (16x16, small_cnn): logs, plugin state, splits, resume, errors.

Every run: 15 -> 1 labeled and 60 -> 6 unlabeled images per class (gamma 10), batch 8, mu 3,
4 iterations per epoch, 2 epochs: well under a second each.
"""
import json

import numpy as np
import pytest
import torch

import ltzoo
from ltzoo.data import TensorImageDataset
from ltzoo.engine.checkpoint import load_checkpoint
from ltzoo.engine.ssl_data import TensorRandAugment, make_ltssl_digits, make_ltssl_split, ssl_views
from ltzoo.recipes.fixmatch import PLUGINS, SSLConfig, train_fixmatch
from ltzoo.samplers.mix_bank import ClassBalancedMixBank
from tests.recipes.interrupt import CrashAt, Interrupt

BASE = dict(model="small_cnn", data="digits", imb_ratio=10, epochs=2, batch_size=8, unlabeled_ratio=3,
            iters_per_epoch=4, lr=0.03, threshold=0.5, ema_decay=0.9, bem_warmup_epochs=1.0, num_threads=1,
            progress=False, save_model=False)
LABELED = [15, 11, 8, 6, 5, 4, 3, 2, 1, 1]
UNLABELED = [60, 46, 35, 27, 21, 16, 12, 10, 7, 6]
SUMMARY = ("top1", "many", "medium", "few", "hmean", "gmean", "lowest", "per_class")


def ssl_cfg(**changes):
    return SSLConfig.from_dict({**BASE, **changes})


@pytest.fixture(scope="module")
def ltssl():
    return make_ltssl_digits(15, 60, 10, 10, seed=0, image_size=16)


class Spy:
    """Records BEM's state at every epoch end and the mix bank's draws (n, source)."""

    def __init__(self):
        self.epochs, self.draws, self.sup, self.bn_counts = [], [], None, []

    def on_epoch_end(self, info):
        self.sup = info["parts"].loss_fn["sup"]
        self.bn_counts.append([int(m.num_batches_tracked) for m in info["parts"].model.modules()
                               if isinstance(m, torch.nn.BatchNorm2d)])
        ecb = info["parts"].loss_fn["ecb"] if "ecb" in info["parts"].loss_fn else None
        if ecb is not None:
            self.epochs.append({k: v.clone() for k, v in ecb.state.state_dict().items()})


@pytest.fixture(scope="module")
def runs(ltssl, tmp_path_factory):
    """Each plugin trained once: {plugin: (result, run folder, spy)}."""
    lab, unl, test = ltssl
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        spy_draws = []
        original = ClassBalancedMixBank.sample

        def sample(self, n, source="labeled"):
            spy_draws.append((n, source))
            return original(self, n, source)

        mp.setattr(ClassBalancedMixBank, "sample", sample)
        for plugin in PLUGINS:
            folder = tmp_path_factory.mktemp(plugin)
            spy = Spy()
            spy_draws.clear()
            cfg = ssl_cfg(output_dir=str(folder), save_model=plugin == "bem")  # one saved model is enough
            result = train_fixmatch(cfg, lab, unl, test, plugin=plugin, callbacks=[spy])
            spy.draws = list(spy_draws)
            out[plugin] = (result, folder, spy)
    return out


@pytest.mark.parametrize("plugin", PLUGINS)
def test_each_plugin_trains_end_to_end_and_writes_its_log(runs, ltssl, plugin):
    result, folder, _ = runs[plugin]
    saved = ["model"] if plugin == "bem" else []
    assert sorted(p.name for p in folder.iterdir()) == ["last.pt", "log.json", "metrics.json", *saved]
    log = json.loads((folder / "log.json").read_text())
    assert log == result["history"] and [r["epoch"] for r in log] == [1, 2] and [r["step"] for r in log] == [4, 8]
    for r in log:
        assert np.isfinite([r["train_loss"], r["loss_s"], r["loss_u"]]).all() and r["loss_s"] > 0
        assert 0 <= r["mask_rate"] <= 1 and 0 <= r["pseudo_acc"] <= 100
        assert all(k in r["metrics"] and k in r["ema_metrics"] for k in SUMMARY)
        assert r["metrics"]["num_samples"] == len(ltssl[2])
    assert result["metrics"] == log[-1]["ema_metrics"]  # the EMA weights are the ones evaluated
    assert json.loads((folder / "metrics.json").read_text()) == result["metrics"]
    assert result["config"]["plugin"] == plugin and result["class_counts"] == LABELED
    state = load_checkpoint(folder / "last.pt")
    assert state["epoch"] == 2 and state["config"]["plugin"] == plugin and state["ema"] is not None
    if saved:
        model = ltzoo.create_model(f"local-dir:{folder / 'model'}", pretrained=True)
        assert model.pretrained_cfg["tag"] == "digits_lt_r10_fixmatch_bem"
        assert model.pretrained_cfg["metrics"]["top1"] == pytest.approx(result["metrics"]["top1"])


@pytest.mark.parametrize("plugin", PLUGINS)
def test_fidelity_bn_running_stats_move_once_per_step(runs, plugin):
    """num_batches_tracked counts BatchNorm updates: exactly one per iteration (4 per epoch), BEM included."""
    counts = runs[plugin][2].bn_counts
    assert len(counts) == 2 and len(counts[0]) == 4  # small_cnn: 4 BatchNorm2d layers
    assert counts == [[4] * 4, [8] * 4]


@pytest.mark.parametrize("plugin", ["none", "bem"])
def test_fidelity_weight_decay_spares_biases_and_norm_parameters(runs, plugin):
    """The saved optimizer has a decayed group of the >= 2-d weights and an undecayed one of the rest."""
    result, folder, _ = runs[plugin]
    opt = load_checkpoint(folder / "last.pt")["optimizer"]
    shapes = {g["weight_decay"]: sorted(tuple(opt["state"][i]["momentum_buffer"].shape) for i in g["params"])
              for g in opt["param_groups"]}  # a parameter's momentum buffer has its shape
    model = result["model"]
    bn = {id(p) for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d) for p in m.parameters()}
    exempt = [p for n, p in model.named_parameters() if id(p) in bn or n.endswith("bias")]
    assert sorted(shapes) == [0.0, 5e-4] and len(exempt) == 9  # 4 BN x (weight, bias) + the fc bias
    assert shapes[0.0] == sorted(tuple(p.shape) for p in exempt)
    assert shapes[5e-4] == sorted(tuple(p.shape) for p in model.parameters() if all(p is not q for q in exempt))


def test_la_plugin_uses_the_logit_adjusted_supervised_loss(runs):
    la = runs["la"][2].sup
    assert type(la).__name__ == "LogitAdjustedLoss" and la.tau == 1.0 and la.class_counts.tolist() == LABELED
    assert type(runs["none"][2].sup).__name__ == type(runs["bem"][2].sup).__name__ == "CrossEntropyLoss"
    assert type(runs["udal"][2].sup).__name__ == "UDALLoss" and runs["udal"][2].sup.mode == "supervised"


def test_udal_alpha_schedule_advances_every_iteration(runs):
    result, folder, _ = runs["udal"]
    alphas = [r["udal_alpha"] for r in result["history"]]
    # T = 2 epochs x 4 iterations; alpha_t = 1 - (1 - 0.1) (t / T)^2 at t = 4 and 8
    assert alphas == pytest.approx([1 - 0.9 * 0.25, 0.1])
    loss = load_checkpoint(folder / "last.pt")["loss"]
    assert int(loss["sup.step_count"]) == int(loss["unsup.step_count"]) == 8
    p_hat = loss["unsup.p_hat"]
    assert torch.isclose(p_hat.sum(), torch.tensor(1.0)) and not torch.allclose(p_hat, torch.full((10,), 0.1))


def test_bem_updates_state_and_bank_after_warmup(runs, ltssl):
    result, folder, spy = runs["bem"]
    lab, unl, _ = ltssl
    first, last = spy.epochs  # warm-up = 1 epoch = 4 iterations: only the step counter moves in epoch 1
    assert int(first["step_count"]) == 4 and not bool(first["tau_e_seen"])
    assert torch.allclose(first["unlabeled_dist"], torch.full((10,), 0.1))
    assert int(last["step_count"]) == 8 and bool(last["tau_e_seen"]) and float(last["tau_e"]) > 0
    assert not torch.allclose(last["unlabeled_dist"], torch.full((10,), 0.1))
    assert bool(last["entropy_labeled_seen"].any()) and bool(last["entropy_unlabeled_seen"].any())
    r = result["history"][-1]
    assert r["bem_step"] == 8 and 0 < r["bank_labeled"] <= len(lab) and 0 < r["bank_unlabeled"] <= len(unl)
    assert sum(r["s_hat"]) == pytest.approx(1, abs=1e-4) and sum(r["s_hat_u"]) == pytest.approx(1, abs=1e-4)
    assert np.isfinite(r["loss_u"]) and r["loss_u"] > 0 and 0 < r["lam"] <= 1
    for rec in result["history"]:  # ties at tau_e fall in neither mask: fractions sum to at most 1
        assert rec["frac_high"] + rec["frac_low"] <= 1 + 1e-6
    # partners come from both sources: labeled for high-entropy, unlabeled for low-entropy samples
    drawn = {s: sum(n for n, src in spy.draws if src == s) for s in ("labeled", "unlabeled")}
    assert drawn["labeled"] == round(sum(rec["frac_high"] for rec in result["history"]) * 4 * 24)
    assert drawn["unlabeled"] == round(sum(rec["frac_low"] for rec in result["history"]) * 4 * 24)
    assert drawn["unlabeled"] > 0 and drawn["labeled"] > 0
    bank = load_checkpoint(folder / "last.pt")["bank"][0]
    assert int((bank["labeled"] >= 0).sum()) == r["bank_labeled"]


def test_bem_loss_is_eq12_term_by_term(ltssl):
    """Recompute Appendix A Eq. 12 sample by sample from the step's masks, partners and logits."""
    from torch.nn.functional import cross_entropy

    from ltzoo.engine.ssl_data import IndexedDataset, raw_view
    from ltzoo.recipes.bem import BEMStep

    lab, unl, _ = ltssl
    torch.manual_seed(0)
    model = ltzoo.create_model("small_cnn", num_classes=10)
    weak, strong = ssl_views(unl)
    lab_view, unl_view = IndexedDataset(raw_view(lab), [weak]), IndexedDataset(raw_view(unl), [weak, strong])
    bem = BEMStep(lab.class_counts, len(lab), len(unl), warmup_steps=0, state_args={"ema": 0.5})
    batch = lambda view, idx: [torch.stack(t) if isinstance(t[0], torch.Tensor) else torch.tensor(t)  # noqa: E731
                               for t in zip(*(view[i] for i in idx))]
    logits = {}

    def forward(x):
        logits["out"] = model(x)
        return logits["out"]

    for it in range(3):  # the first iterations fill the bank and the state, the last one is checked
        labeled, unlabeled = batch(lab_view, range(8 * it, 8 * it + 8)), batch(unl_view, range(24 * it, 24 * it + 24))
        loss, stats = bem.loss(forward, model, labeled, unlabeled, torch.nn.CrossEntropyLoss(reduction="none"),
                               lab_view, unl_view, threshold=0.12, lambda_u=0.7)
    t, q = stats["terms"], stats["q"]
    assert t["high"].any() and t["low"].any() and t["m_u"].any() and (t["lam"] < 1).any()
    w = bem.state.s_hat_unlabeled() * 10  # "ecb": s_hat^u rescaled to sum K
    lx, lu = logits["out"].detach()[:8], logits["out"].detach()[8:]
    total = 0.0
    for m in range(24):
        ce_q, ce_p = (float(cross_entropy(lu[m:m + 1], c.view(1))) for c in (q[m], t["partner_y"][m]))
        l_u = float(t["m_u"][m]) * (float(t["high"][m]) + float(t["low"][m])) * float(w[q[m]]) * ce_q  # lines 17-18
        l_us_h = float(t["high"][m]) * ce_p  # line 19 (ground truth of the labeled partner, no s_hat^u)
        l_us_l = float(t["m_us"][m]) * float(t["low"][m]) * float(w[t["partner_y"][m]]) * ce_p  # line 20
        lam = float(t["lam"][m])
        total += lam * l_u + (1 - lam) * (l_us_h + l_us_l)  # line 21
    expected = float(cross_entropy(lx, labeled[1])) + 0.7 * total / 24
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-5)
    assert bool((t["lam"][~(t["high"] | t["low"])] == 1).all())  # a sample in neither mask stays unmixed


def test_fidelity_bem_step_moves_bn_statistics_only_in_the_gradient_forward(ltssl):
    """After a BEM step the BN buffers equal those of ONE train-mode forward of the gradient batch."""
    from ltzoo.engine.ssl_data import IndexedDataset, raw_view
    from ltzoo.recipes.bem import BEMStep

    lab, unl, _ = ltssl
    torch.manual_seed(0)
    model = ltzoo.create_model("small_cnn", num_classes=10).train()
    weak, strong = ssl_views(unl)
    lab_view, unl_view = IndexedDataset(raw_view(lab), [weak]), IndexedDataset(raw_view(unl), [weak, strong])
    bem = BEMStep(lab.class_counts, len(lab), len(unl), warmup_steps=0, state_args={"ema": 0.5})
    batch = lambda view, idx: [torch.stack(t) if isinstance(t[0], torch.Tensor) else torch.tensor(t)  # noqa: E731
                               for t in zip(*(view[i] for i in idx))]
    seen = {}

    def forward(x):
        seen["x"] = x.detach().clone()
        return model(x)

    bn_keys = [k for k in model.state_dict() if k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    assert len(bn_keys) == 12
    for it in range(3):
        before = {k: v.clone() for k, v in model.state_dict().items()}
        labeled, unlabeled = batch(lab_view, range(8 * it, 8 * it + 8)), batch(unl_view, range(24 * it, 24 * it + 24))
        bem.loss(forward, model, labeled, unlabeled, torch.nn.CrossEntropyLoss(reduction="none"), lab_view, unl_view,
                 threshold=0.12, lambda_u=1.0)
        reference = ltzoo.create_model("small_cnn", num_classes=10)
        reference.load_state_dict(before)
        with torch.no_grad():
            reference.train()(seen["x"])  # one train-mode forward of [A_w(x), u']
        after, expected = model.state_dict(), reference.state_dict()
        for k in bn_keys:
            assert torch.allclose(after[k].float(), expected[k].float(), atol=1e-6), (it, k)
        assert all(int(after[k]) == it + 1 for k in bn_keys if k.endswith("num_batches_tracked"))
    assert seen["x"].shape[0] == 8 + 24  # the gradient forward holds the labeled and the mixed unlabeled batch


@pytest.mark.parametrize("gamma_u, expected", [(10, UNLABELED), (1, [60] * 10), (0.1, UNLABELED[::-1])],
                         ids=["consistent", "uniform", "reversed"])
def test_ltssl_splits_have_the_right_counts(gamma_u, expected):
    lab, unl, test = make_ltssl_digits(15, 60, 10, gamma_u, seed=1, image_size=16)
    assert lab.class_counts == LABELED and unl.class_counts == expected and test.class_counts[0] > 0
    # disjoint draws: tag every image with its index
    n = 200
    source = TensorImageDataset(torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1), np.arange(n) % 10,
                                [str(c) for c in range(10)])
    lab, unl = make_ltssl_split(source, 5, 12, 5, gamma_u, seed=3)
    ids_l, ids_u = lab.images.flatten().long(), unl.images.flatten().long()
    assert not set(ids_l.tolist()) & set(ids_u.tolist())
    assert ((ids_l % 10) == torch.as_tensor(lab.targets)).all() and ((ids_u % 10) == torch.as_tensor(unl.targets)).all()
    assert max(unl.class_counts) == 12 and sum(unl.class_counts) == len(unl)


def test_views_weak_and_strong(ltssl):
    lab, _, _ = ltssl
    weak, strong = ssl_views(lab)
    raw = lab.subset(np.arange(len(lab)), transform=None)[0][0]
    torch.manual_seed(0)
    w, s = weak(raw), strong(raw)
    assert w.shape == s.shape == raw.shape and w.dtype == s.dtype == torch.float32
    assert not torch.equal(w, s) and float(s.max()) <= 1 + 1e-6 and float(s.min()) >= -1 - 1e-6
    identity = TensorRandAugment(0.5, 0.5, num_ops=0)  # de-normalise -> uint8 -> re-normalise round trip
    assert torch.allclose(identity(raw), raw, atol=1 / 255 + 1e-6)


def _equal(a, b):
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return a == b


def _pil_cifar_like():
    from PIL import Image

    from ltzoo.data import LongTailedSubset, cifar_train_transform

    yy, xx = np.mgrid[0:32, 0:32]
    pattern = np.stack([yy * 7, xx * 7, (yy + xx) * 3], -1).astype(np.uint8)  # every pixel tells its position

    class Source:
        classes = [str(c) for c in range(10)]
        targets = list(range(10)) * 2

        def __getitem__(self, i):
            return Image.fromarray(pattern), self.targets[i]

    data = LongTailedSubset(Source(), transform=cifar_train_transform())
    return data, pattern


def _crops_of_reflect_padding(pattern, pad):
    padded = np.pad(pattern, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")  # numpy's reflect: no edge repeat
    size = pattern.shape[0]
    return [c for dy in range(2 * pad + 1) for dx in range(2 * pad + 1)
            for c in (padded[dy:dy + size, dx:dx + size], padded[dy:dy + size, dx:dx + size][:, ::-1])]


def test_fidelity_weak_view_pads_by_reflection():
    from ltzoo.data import CIFAR_MEAN, CIFAR_STD

    data, pattern = _pil_cifar_like()
    weak, strong = ssl_views(data)
    raw = data.subset(np.arange(len(data)), transform=None)[5][0]
    crops = _crops_of_reflect_padding(pattern, 4)
    mean, std = torch.tensor(CIFAR_MEAN).view(3, 1, 1), torch.tensor(CIFAR_STD).view(3, 1, 1)
    torch.manual_seed(0)
    shifted = 0
    for _ in range(20):
        out = ((weak(raw) * std + mean) * 255).round().clamp(0, 255).byte().permute(1, 2, 0).numpy()
        hits = [i for i, c in enumerate(crops) if np.array_equal(out, c)]
        assert hits, "the weak view is not a crop of the reflection-padded image"
        shifted += hits[0] // 2 != 4 * 9 + 4  # not the centred crop: padding pixels are visible
    assert shifted > 10
    assert strong(raw).shape == (3, 32, 32)
    # a tensor dataset's weak view: the same check on (C, H, W) tensors (padding 16 // 8 = 2)
    source = TensorImageDataset(torch.as_tensor(pattern[:16, :16]).permute(2, 0, 1).float()[None], [0], ["0"])
    tweak, _ = ssl_views(source)
    tcrops = _crops_of_reflect_padding(pattern[:16, :16].astype(np.float32), 2)
    for _ in range(10):
        out = tweak(source.images[0]).permute(1, 2, 0).numpy()
        assert any(np.array_equal(out, c) for c in tcrops)


def test_fidelity_strong_view_ends_with_a_16x16_gray_cutout():
    from ltzoo.data import CIFAR_MEAN, CIFAR_STD

    data, _ = _pil_cifar_like()
    _, strong = ssl_views(data)
    raw = data.subset(np.arange(len(data)), transform=None)[0][0]
    gray = (127 / 255 - torch.tensor(CIFAR_MEAN)) / torch.tensor(CIFAR_STD)  # FixMatch's gray fill, normalised
    torch.manual_seed(1)
    full = 0
    for _ in range(30):
        out = strong(raw)
        mask = torch.isclose(out, gray.view(3, 1, 1), atol=1e-6).all(0)
        rows, cols = int(mask.any(1).sum()), int(mask.any(0).sum())
        assert rows <= 16 and cols <= 16 and int(mask.sum()) >= 8 * 8
        full += rows == cols == 16
    assert full > 5


@pytest.mark.parametrize("plugin", ["none", "bem"])
def test_interrupted_and_resumed_run_matches_uninterrupted(ltssl, tmp_path, plugin):
    lab, unl, test = ltssl
    cfg = ssl_cfg(epochs=3, plugin=plugin)
    straight = train_fixmatch(cfg.replace(output_dir=str(tmp_path / "a")), lab, unl, test)
    with pytest.raises(Interrupt):  # dies in the middle of epoch 2: last.pt holds epoch 1
        train_fixmatch(cfg.replace(output_dir=str(tmp_path / "b")), lab, unl, test, callbacks=[CrashAt(1, 2)])
    assert load_checkpoint(tmp_path / "b" / "last.pt")["epoch"] == 1
    resumed = train_fixmatch(cfg.replace(output_dir=str(tmp_path / "b")), lab, unl, test, resume=True)
    for k, v in straight["model"].state_dict().items():
        assert torch.equal(v, resumed["model"].state_dict()[k]), k
    a, b = load_checkpoint(tmp_path / "a" / "last.pt"), load_checkpoint(tmp_path / "b" / "last.pt")
    for key in ("optimizer", "ema", "loss", "bank", "rng"):
        assert _equal(a[key], b[key]), key
    strip = lambda log: [{k: v for k, v in r.items() if k != "epoch_time_s"} for r in log]  # noqa: E731
    assert strip(straight["history"]) == strip(resumed["history"])


@pytest.mark.parametrize("changes, name", [
    (dict(plugin="mixmatch"), "plugin"), (dict(threshold=0.0), "threshold"), (dict(threshold=1.5), "threshold"),
    (dict(unlabeled_ratio=0), "unlabeled_ratio"), (dict(plugin="udal", loss="ce"), "loss"),
    (dict(tau_c=1.0), "tau_c"), (dict(bem_delta="relu"), "bem_delta"), (dict(mixer="mixup"), "mixer"),
])
def test_bad_arguments_raise_value_error_naming_them(changes, name):
    with pytest.raises(ValueError, match=name):
        ssl_cfg(**changes)


def test_bad_plugin_argument_and_split(ltssl):
    lab, unl, test = ltssl
    assert ssl_cfg(threshold=1.0).threshold == 1.0  # tau = 1 is allowed
    with pytest.raises(ValueError, match="plugin"):
        train_fixmatch(ssl_cfg(), lab, unl, test, plugin="fixmatch")
    with pytest.raises(ValueError, match="class 0"):  # 100 + 60 > 113 digits of class 0
        make_ltssl_digits(100, 60, 10, 10)
