import pytest
import timm
import torch

import ltzoo
from ltzoo.models import LTModel


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return ltzoo.create_model("resnet32", num_classes=7).eval()


def test_timm_model_api(model):
    x = torch.randn(3, 3, 32, 32)
    fmap = model.forward_features(x)
    assert fmap.shape == (3, model.num_features, 8, 8)
    pooled = model.forward_head(fmap, pre_logits=True)
    assert torch.allclose(pooled, fmap.mean(dim=(2, 3)), atol=1e-6)
    logits = model.forward_head(fmap)
    assert logits.shape == (3, 7)
    assert torch.allclose(logits, model.get_classifier()(pooled), atol=1e-6)
    assert torch.allclose(model(x), logits, atol=1e-6)


def test_pretrained_cfg_describes_input(model):
    cfg = model.pretrained_cfg
    assert cfg["architecture"] == "resnet32"
    assert tuple(cfg["input_size"]) == (3, 32, 32)
    assert tuple(cfg["mean"]) == (0.4914, 0.4822, 0.4465)
    assert ltzoo.create_model("resnet50").pretrained_cfg["input_size"] == (3, 224, 224)


def test_default_num_classes_follow_architecture():
    assert ltzoo.create_model("resnet32").num_classes == 10
    assert ltzoo.create_model("wrn_28_8").num_classes == 100


def test_reset_classifier_changes_only_the_head():
    torch.manual_seed(0)
    model = ltzoo.create_model("resnet32", num_classes=10).eval()
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    model.reset_classifier(4)
    assert model.num_classes == 4 and model.get_classifier().fc.out_features == 4
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 4)
    for k, v in model.backbone.state_dict().items():
        assert torch.equal(v, before[k])


def test_catavgmax_pool_doubles_head_input():
    model = ltzoo.create_model("resnet32", num_classes=3, global_pool="catavgmax")
    assert model.get_classifier().fc.in_features == 2 * model.num_features
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 3)


def test_timm_create_model_builds_ltzoo_architectures_without_overwriting():
    m = timm.create_model("resnet32", num_classes=5)
    assert isinstance(m, LTModel) and m.num_classes == 5
    assert isinstance(timm.create_model("wrn_28_2"), LTModel)
    r50 = timm.create_model("resnet50")
    assert not isinstance(r50, LTModel)
    assert type(r50).__module__.startswith("timm.")


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(model_name="resnet33"), ValueError, "closest: resnet32"),
    (dict(model_name="resnet32", num_classes=-1), ValueError, "num_classes"),
    (dict(model_name="resnet32", num_classes=2.5), TypeError, "num_classes"),
    (dict(model_name="resnet32", head="nope"), ValueError, "unknown head 'nope'"),
    (dict(model_name="resnet32", global_pool="median"), ValueError, "global_pool"),
    (dict(model_name="resnet32.no_such_tag"), ValueError, "no pretrained weights"),
])
def test_bad_model_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        ltzoo.create_model(**kwargs)


# --- timm's model-test checks over every registered architecture and head ------------------------------------
# Modelled on timm's tests/test_models.py: forward, backward, default_cfg keys, num_classes=0 and
# reset_classifier, features_only / forward_intermediates, export. The ImageNet nets are slow.

from ltzoo.hub.timm_names import timm_name  # noqa: E402

HEAVY = {"resnet50", "resnet152", "resnext50_32x4d"}
ARCHS = [pytest.param(a, marks=pytest.mark.slow) if a in HEAVY else a for a in ltzoo.list_models()]
# one test per head as well: the 23M-parameter WRN-28-8 is slow there too
ARCHS_BY_HEAD = [pytest.param(a, marks=pytest.mark.slow) if a in HEAVY | {"wrn_28_8"} else a
                 for a in ltzoo.list_models()]
K = 5  # <= every backbone's feature dim, so the ETF heads fit everywhere


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny batches: more threads only contend
    yield
    torch.set_num_threads(threads)


def _input(model, batch=2):
    c, h, w = model.pretrained_cfg["input_size"]
    return torch.randn(batch, c, h, w)


def test_fidelity_timm_checks_cover_every_registered_architecture_and_head():
    names = {p.values[0] if hasattr(p, "values") else p for p in ARCHS}
    assert names == set(ltzoo.list_models()) and HEAVY <= names
    assert len(ltzoo.list_heads()) >= 6


@pytest.mark.parametrize("arch", ARCHS_BY_HEAD)
@pytest.mark.parametrize("head", ltzoo.list_heads())
def test_fidelity_timm_forward_backward_and_default_cfg(arch, head):
    torch.manual_seed(0)
    model = timm.create_model(timm_name(arch), head=head, num_classes=K)
    assert isinstance(model, LTModel)
    x = _input(model)
    model.train()
    out = model(x)
    assert out.shape == (2, K) and torch.isfinite(out).all()
    out.sum().backward()
    backbone_grads = [p.grad for p in model.backbone.parameters() if p.requires_grad]
    assert backbone_grads and all(g is not None for g in backbone_grads)
    # timm's test_model_default_cfgs: pool_size is the unpooled map size, names are real state-dict keys
    model.eval()
    cfg, state = model.pretrained_cfg, model.state_dict()
    fmap = model.forward_features(x)
    assert fmap.shape[1] == model.num_features and tuple(fmap.shape[2:]) == tuple(cfg["pool_size"])
    assert cfg["first_conv"] + ".weight" in state
    if isinstance(getattr(model.head, "fc", None), torch.nn.Linear):
        assert cfg["classifier"] == "head.fc" and cfg["classifier"] + ".weight" in state
    else:  # ETF / WETF / DLSA heads: the module holding their parameters or buffer
        assert cfg["classifier"] == "head"
        assert any(k.startswith("head.") for k in state)
        if head in ("etf", "wetf", "ms_wetf"):
            assert "head.etf" in state
    for key in ("input_size", "mean", "std", "crop_pct", "interpolation", "pool_size", "classifier", "first_conv"):
        assert key in cfg, key


@pytest.mark.parametrize("arch", ARCHS)
def test_fidelity_timm_num_classes_zero_and_reset_classifier(arch):
    torch.manual_seed(0)
    model = timm.create_model(timm_name(arch), num_classes=K).eval()
    x = _input(model)
    fmap = model.forward_features(x)
    pooled_by_hand = fmap.mean(dim=(2, 3))
    model.reset_classifier(0)
    assert isinstance(model.get_classifier(), torch.nn.Identity) and model.num_classes == 0
    assert torch.allclose(model(x), pooled_by_hand, atol=1e-5)
    model.reset_classifier(0, "")
    assert torch.allclose(model(x), fmap, atol=1e-5)
    model.reset_classifier(3, "catavgmax")
    assert model.get_classifier().fc.in_features == 2 * model.num_features and model(x).shape == (2, 3)
    bare = timm.create_model(timm_name(arch), num_classes=0, global_pool="").eval()
    assert bare(x).shape == fmap.shape
    pooled = timm.create_model(timm_name(arch), num_classes=0)
    assert isinstance(pooled.get_classifier(), torch.nn.Identity)
    assert pooled.eval()(x).shape == (2, pooled.num_features)
    with pytest.raises(ValueError, match="num_classes=0"):
        model.reset_classifier(3, "")


@pytest.mark.parametrize("arch", ARCHS)
def test_fidelity_timm_features_only_and_forward_intermediates(arch):
    torch.manual_seed(0)
    model = ltzoo.create_model(arch, num_classes=K).eval()
    x = _input(model)
    final, maps = model.forward_intermediates(x)
    assert torch.allclose(final, model.forward_features(x), atol=1e-5)
    info = model.feature_info
    assert len(maps) == len(info)
    names = dict(model.named_modules())
    for m, entry in zip(maps, info):  # declared channels / reduction / module against what the net computes
        assert m.shape[1] == entry["num_chs"]
        assert m.shape[2] * entry["reduction"] == x.shape[2]
        assert entry["module"] in names
    last_two = model.forward_intermediates(x, indices=2, intermediates_only=True)
    assert len(last_two) == 2 and torch.allclose(last_two[-1], maps[-1], atol=1e-5)
    early, firsts = model.forward_intermediates(x, indices=[0, 1], stop_early=True)
    assert len(firsts) == 2 and torch.equal(early, firsts[-1])
    extractor = timm.create_model(timm_name(arch), features_only=True, out_indices=(1, -1))
    assert extractor.feature_info.channels() == [info[1]["num_chs"], info[-1]["num_chs"]]
    feats = extractor.eval()(x)
    assert [f.shape[1] for f in feats] == extractor.feature_info.channels()
    assert [x.shape[2] // f.shape[2] for f in feats] == extractor.feature_info.reduction()


def test_features_only_bad_out_indices():
    with pytest.raises(ValueError, match="out_indices"):
        ltzoo.create_model("resnet32", features_only=True, out_indices=(0, 7))


@pytest.mark.parametrize("arch", ARCHS)
def test_fidelity_timm_group_matcher_and_no_weight_decay(arch):
    from timm.models import group_parameters
    from timm.optim import create_optimizer_v2

    from ltzoo.engine.builders import weight_decay_groups

    model = ltzoo.create_model(arch, head="wetf", num_classes=K)
    groups = group_parameters(model, model.group_matcher())
    names = [n for n, _ in model.named_parameters()]
    flat = [n for g in groups.values() for n in g]
    assert sorted(flat) == sorted(names)  # every parameter in exactly one group
    first = list(groups.values())[0]
    assert first and all(n.startswith("backbone.") for n in first)  # the stem comes first
    assert "head.scale" in list(groups.values())[-1]  # the head falls in the last group
    exempt = {n for n, p in model.named_parameters() if p.ndim <= 1}  # biases, norms, per-class scale
    assert model.no_weight_decay() == exempt and "head.scale" in exempt
    opt = create_optimizer_v2(model, "sgd", lr=0.1, weight_decay=1e-3)
    by_id = {id(p): n for n, p in model.named_parameters()}
    timm_free = {by_id[id(p)] for g in opt.param_groups if g["weight_decay"] == 0.0 for p in g["params"]}
    ltzoo_free = {by_id[id(p)] for g in weight_decay_groups(model, 1e-3) if g["weight_decay"] == 0.0
                  for p in g["params"]}
    assert timm_free == ltzoo_free == exempt


def test_fidelity_weight_decay_groups_follow_the_models_no_weight_decay():
    from ltzoo.engine.builders import weight_decay_groups

    model = ltzoo.create_model("small_cnn", num_classes=K)
    model.no_weight_decay = lambda: {"head.fc.weight"}  # one mechanism: the helper reads the model's list
    free = [g for g in weight_decay_groups(model, 1e-3) if g["weight_decay"] == 0.0][0]["params"]
    assert len(free) == 1 and free[0] is model.head.fc.weight


@pytest.mark.parametrize("arch", ["small_cnn", "resnet32", "wrn_28_2",
                                  pytest.param("resnet50", marks=pytest.mark.slow)])
def test_fidelity_grad_checkpointing_gives_the_same_gradients(arch):
    torch.manual_seed(0)
    model = ltzoo.create_model(arch, num_classes=K).train()
    x = _input(model)
    state = {k: v.clone() for k, v in model.state_dict().items()}

    def grads():
        model.load_state_dict(state)
        model.zero_grad()
        model(x).square().sum().backward()
        return [p.grad.clone() for p in model.parameters()]

    plain = grads()
    model.set_grad_checkpointing(True)
    checkpointed = grads()
    for a, b in zip(plain, checkpointed):
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-4)


EXPORT_CASES = ([(a, "fc") for a in ("small_cnn", "resnet32", "wrn_28_2")]
                + [("small_cnn", h) for h in ltzoo.list_heads() if h not in ("fc", "dlsa")])


@pytest.mark.parametrize("arch,head", EXPORT_CASES)
def test_fidelity_torch_export_matches_eager(arch, head):
    # TorchScript is not supported (README); torch.export is. The DLSA head routes samples by
    # data-dependent control flow and runs eagerly only.
    torch.manual_seed(0)
    model = ltzoo.create_model(arch, head=head, num_classes=K).eval()
    x = _input(model)
    program = torch.export.export(model, (x,))
    assert torch.allclose(program.module()(x), model(x), atol=1e-5)
