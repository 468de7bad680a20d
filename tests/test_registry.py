import pytest

import ltzoo
from ltzoo.registry import BACKBONES, HEADS, LOSSES, MIXERS, SAMPLERS, Registry, filter_names


def test_register_and_create():
    reg = Registry("widget")

    @reg.register("double")
    def double(x):
        return 2 * x

    assert reg.create("double", x=4) == 8
    assert reg.get("double") is double
    assert "double" in reg and len(reg) == 1


def test_duplicate_name_raises_and_keeps_first():
    reg = Registry("widget")
    reg.register("a", lambda: 1)
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a", lambda: 2)
    assert reg.create("a") == 1


def test_unknown_name_lists_closest():
    reg = Registry("widget")
    for name in ["resnet32", "resnet50", "wrn_28_2"]:
        reg.register(name, object)
    with pytest.raises(ValueError, match=r"unknown widget 'resnet33'; closest: resnet32"):
        reg.get("resnet33")
    with pytest.raises(TypeError, match="widget name must be a string"):
        reg.get(3)


@pytest.mark.parametrize("bad", ["", " a", "a.b", 7])
def test_invalid_names_refused(bad):
    with pytest.raises(ValueError, match="widget name"):
        Registry("widget").register(bad, object)


def test_name_defaults_to_dunder_name_and_nameless_objects_are_refused():
    reg = Registry("widget")
    reg.register(obj=dict)
    assert reg.get("dict") is dict
    with pytest.raises(ValueError, match="widget name"):
        reg.register(obj=3)


def test_filter_names_include_exclude():
    names = ["resnet32", "resnet32_w2", "resnet50", "wrn_28_2"]
    assert filter_names(names, "resnet*") == ["resnet32", "resnet32_w2", "resnet50"]
    assert filter_names(names, "resnet*", exclude="*_w2") == ["resnet32", "resnet50"]
    assert filter_names(names, ["wrn*", "resnet5*"]) == ["resnet50", "wrn_28_2"]
    with pytest.raises(TypeError, match="include"):
        filter_names(names, [1])


def test_five_role_registries_are_distinct():
    regs = [BACKBONES, HEADS, LOSSES, SAMPLERS, MIXERS]
    assert len({id(r) for r in regs}) == 5
    assert {r.role for r in regs} == {"backbone", "head", "loss", "sampler", "mixer"}


@pytest.mark.parametrize("create", [ltzoo.create_backbone, ltzoo.create_loss, ltzoo.create_sampler, ltzoo.create_mixer])
def test_public_create_rejects_unknown_names(create):
    with pytest.raises(ValueError, match="unknown .* 'no_such_component'"):
        create("no_such_component")


def test_public_list_functions():
    assert ltzoo.list_backbones("wrn*") == ["wrn_28_2", "wrn_28_8"]
    assert "fc" in ltzoo.list_heads()
    assert ltzoo.list_models(exclude="*") == []
    assert set(ltzoo.list_models()) == set(ltzoo.list_backbones())


def test_reliability_unknown_name_message_uses_english_plurals():
    with pytest.raises(ValueError, match="Registered losses: "):
        ltzoo.create_loss("no_such_loss", class_counts=[1, 2])
    with pytest.raises(ValueError, match="Registered mixers: "):
        ltzoo.create_mixer("no_such_mixer")
    assert Registry("box").plural == "boxes" and Registry("pretrained weights").plural == "pretrained weights"
