"""BTM's "FC" stage (Sec. 3.3): when it runs ("auto"), and what it trains (plain CE, all data, kept FC)."""
import pytest
import torch

import ltzoo
import ltzoo.recipes.crt as D
from ltzoo.engine.config import TrainConfig
from ltzoo.recipes.btm import BTMConfig, describe_fc_stage, train_btm
from ltzoo.recipes.btm_fc_stage import fc_stage_reasons, to_fc_head
from ltzoo.recipes.supervised import train_supervised


def _recipe(**changes):
    return TrainConfig(**changes).to_dict()


@pytest.mark.parametrize("changes,expected", [
    ({}, []),  # defaults: head "fc", loss None -> the head's "ce", sampler "random"
    ({"loss": "ce"}, []),
    ({"loss": "logit_adjusted"}, ["loss"]),
    ({"head": "ms", "loss": "mixed_singleton", "sampler": "bmls", "mixer": "mixup"}, ["loss", "head", "sampler"]),
    ({"sampler": "class_balanced", "loss": "ce"}, ["sampler"]),
    ({"loss": "ce", "crt_epochs": 5}, ["cRT"]),
])
def test_fidelity_fc_stage_auto_reasons(changes, expected):
    model = ltzoo.create_model("small_cnn", head=changes.get("head", "fc"), num_classes=10)
    reasons = fc_stage_reasons(_recipe(**changes), model)
    assert len(reasons) == len(expected)
    assert all(word in reason for word, reason in zip(expected, reasons))


def test_fc_stage_without_recipe_checks_the_head():
    assert fc_stage_reasons(None, ltzoo.create_model("small_cnn", num_classes=10)) == []
    assert len(fc_stage_reasons(None, ltzoo.create_model("small_cnn", head="ms", num_classes=10))) == 2  # head + loss


def test_fidelity_fc_head_keeps_linear_weights_and_replaces_an_etf():
    torch.manual_seed(0)
    x = torch.randn(3, 3, 16, 16)
    ms = ltzoo.create_model("small_cnn", head="ms", num_classes=10).eval()
    with torch.no_grad():
        before = ms(x)
    assert to_fc_head(ms, reinit=False, seed=0) is True
    assert ms.head_name == "fc" and type(ms.head).__name__ == "LinearHead"
    with torch.no_grad():
        assert torch.allclose(ms(x), before)  # the same FC, now an "fc" head
    etf = ltzoo.create_model("small_cnn", head="etf", num_classes=10)
    assert to_fc_head(etf, reinit=False, seed=0) is False and etf.head_name == "fc"


@pytest.fixture(scope="module")
def la_run(digits, make_cfg):
    train, test, _ = digits
    cfg = make_cfg(epochs=2, loss="logit_adjusted")
    return train_supervised(cfg, train, test)["model"], cfg


def test_fidelity_fc_stage_trains_plain_ce_on_all_data(digits, la_run, monkeypatch):
    train, test, _ = digits
    model, cfg = la_run
    calls = []
    original = D.retrain_classifier

    def spy(m, data, **kwargs):
        calls.append({"n": len(data), "head": m.head.fc.weight.detach().clone(), **kwargs})
        return original(m, data, **kwargs)

    monkeypatch.setattr(D, "retrain_classifier", spy)
    stage1_fc = model.head.fc.weight.detach().clone()
    btm = BTMConfig(num_subsets=1, per_class=5, finetune_epochs=1, batch_size=64, posttrain_epochs=0)
    report = train_btm(model, train, test, cfg=btm, progress=False, stage1_recipe=cfg.to_dict())["report"]
    fc = report["fc_stage"]
    assert fc["ran"] and fc["mode"] == "auto" and "logit_adjusted" in fc["reasons"][0]
    assert (fc["epochs"], fc["lr"], fc["sampler"], fc["loss"], fc["kept_classifier"]) == (10, 5e-3, "random", "ce", True)
    (call,) = calls
    assert call["n"] == len(train) and call["sampler"] == "random" and call["loss"] == "ce"  # ALL the imbalanced data
    assert call["reinit"] is False and torch.equal(call["head"], stage1_fc)  # it fine-tunes the stage-1 FC
    assert "after_fc_stage" in report and "ran because" in describe_fc_stage(fc)
    off = train_btm(model, train, test, cfg=BTMConfig(**{**btm.__dict__, "fc_stage": "off"}), progress=False,
                    stage1_recipe=cfg.to_dict())["report"]
    assert not off["fc_stage"]["ran"] and "after_fc_stage" not in off and len(calls) == 1


def test_fidelity_fc_stage_auto_skips_a_plain_ce_run(digits, make_cfg):
    train, test, _ = digits
    cfg = make_cfg(epochs=1, loss="ce")
    model = train_supervised(cfg, train, test)["model"]
    btm = BTMConfig(num_subsets=1, per_class=5, finetune_epochs=1, batch_size=64, posttrain_epochs=0)
    report = train_btm(model, train, test, cfg=btm, progress=False, stage1_recipe=cfg.to_dict())["report"]
    assert report["fc_stage"] == {"mode": "auto", "reasons": [], "recipe_known": True, "ran": False}
    assert "skipped" in describe_fc_stage(report["fc_stage"])
    on = train_btm(model, train, test, cfg=BTMConfig(**{**btm.__dict__, "fc_stage": "on"}), progress=False,
                   stage1_recipe=cfg.to_dict())["report"]
    assert on["fc_stage"]["ran"]
