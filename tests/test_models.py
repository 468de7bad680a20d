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
