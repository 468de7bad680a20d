"""Pretrained configs and the tag registry; model cards and the per-class plot."""
import json

import numpy as np
import pytest
import torch
from huggingface_hub import ModelCard

import ltzoo
from ltzoo.cli import main
from ltzoo.hub import (
    METRIC_KEYS,
    ORG_ENV,
    build_card,
    config_for_model,
    config_json,
    get_pretrained_config,
    metrics_block,
    register_pretrained,
)
from ltzoo.hub.cards import class_order
from ltzoo.metrics import summarize

METRICS = {"dataset": "digits_lt", "split": "test", "top1": 81.5, "many": 92.0, "medium": None, "few": 60.25,
           "hmean": 70.0, "gmean": 74.5, "lowest": 55.0}


def test_registered_tag_is_listed_with_its_repo(tag, capsys, monkeypatch):
    assert tag in ltzoo.list_models(pretrained=True) and ltzoo.list_models("wrn*", pretrained=True) == []
    assert main(["list", "--pretrained"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("pretrained models (") and any(
        line.split() == [tag, f"ltzoo/{tag}"] for line in lines[1:])
    monkeypatch.setenv(ORG_ENV, "fork-org")
    assert get_pretrained_config(tag).repo_id == f"fork-org/{tag}"


def test_tag_builds_its_architecture_without_download(tag):
    model = ltzoo.create_model(tag)  # pretrained=False: architecture and config only, no network
    assert model.num_classes == 3 and model.head_name == "fc"
    assert model.pretrained_cfg["metrics"] == METRICS and model.pretrained_cfg["tag"] == "hubtest_tiny"


@pytest.mark.parametrize("name,fields,match", [
    ("resnet32.hubtest_tiny", {}, "already registered"),
    ("resnet50.a1_in1k", {}, "timm pretrained name"),
    ("resnet33.x", {}, "closest: resnet32"),
    ("resnet32", {}, "named 'arch.tag'"),
    ("resnet32.bad", {"head": "nope"}, "unknown head"),
    ("resnet32.bad", {"metrics": {**METRICS, "stage1_top1": 70.0}}, "unexpected.*stage1_top1.*extra_metrics"),
    ("resnet32.bad", {"metrics": {**METRICS, "top1": 0.815 * 1000}}, r"percentage in \[0, 100\]"),
    ("resnet32.bad", {"metrics": {k: v for k, v in METRICS.items() if k != "gmean"}}, r"missing \['gmean'\]"),
    ("resnet32.bad", {"num_classes": 3, "per_class": [1, 2, 3]}, "per_class needs class_counts"),
    ("resnet32.bad", {"num_classes": 3, "class_counts": [1, -2, 3]}, "non-negative"),
])
def test_invalid_registrations_are_refused(tag, name, fields, match):
    with pytest.raises((ValueError, TypeError), match=match):
        register_pretrained(name, **fields)


def test_metrics_block_from_summarize():
    counts = [50, 10, 2]
    summary = summarize([0, 0, 1, 1, 2, 2], [0, 0, 1, 0, 2, 1], counts, ranges={"many": (0, 0), "few": (2, 2)})
    block = metrics_block(summary, "toy", "test")
    assert list(block) == ["dataset", "split", *METRIC_KEYS] and block["top1"] == pytest.approx(400 / 6)
    assert block["medium"] is None


def _config(tiny_model, **fields):
    return config_json(tiny_model, config_for_model(tiny_model, **fields))


def test_card_is_generated_from_the_measured_metrics(tiny_model, tmp_path):
    ltzoo.save_pretrained(tiny_model, tmp_path, tag="tiny", repo_id="test-org/tiny", metrics=METRICS,
                          per_class=np.array([90.0, np.nan, 50.0]), class_counts=[5, 100, 20],
                          extra_metrics={"stage1": {"top1": 77.0}}, recipe={"loss": "ce", "epochs": 200},
                          paper={"title": "BTM", "url": "https://example.org/btm", "bibtex": "@article{btm}"},
                          license="cc-by-4.0")
    card = ModelCard.load(tmp_path / "README.md")
    assert card.data.library_name == "ltzoo" and card.data.license == "cc-by-4.0"
    from ltzoo.hub.cards import METRIC_LABELS

    key_of = {label: key for key, label in METRIC_LABELS.items()}
    results = {key_of[r.metric_name]: r for r in card.data.eval_results}
    assert set(results) == {k for k in METRIC_KEYS if METRICS[k] is not None}  # medium was not measured
    assert all(r.dataset_type == "digits_lt" and r.dataset_split == "test" for r in results.values())
    assert {k: r.metric_value for k, r in results.items()} == {k: METRICS[k] for k in results}
    text = card.text
    for snippet in ('ltzoo.create_model("hf-hub:test-org/tiny", pretrained=True)', '"epochs": 200',
                    "largest class 100, smallest 5, imbalance ratio 20.0", "[BTM](https://example.org/btm)",
                    "@article{btm}", "](per_class_accuracy.png)", "### Other measurements: stage1"):
        assert snippet in text
    assert (tmp_path / "per_class_accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((tmp_path / "config.json").read_text())["pretrained_cfg"]["per_class_top1"] == [90.0, None, 50.0]


def test_card_without_metrics_has_no_model_index(tiny_model):
    card = build_card(_config(tiny_model))
    assert card.data.eval_results is None and "model-index" not in str(card)
    assert "No measured metrics are recorded" in card.text and "local-dir:" in card.text


def test_plot_order_follows_class_frequency():
    assert class_order([5, 100, 20, 100]) == [1, 3, 2, 0]


def test_model_args_property_tracks_the_head(tiny_model):
    model = ltzoo.create_model("resnet32", num_classes=3, drop_rate=0.2)
    model.reset_classifier(4, head="etf")
    assert model.model_args["head"] == "etf" and model.model_args["drop_rate"] == 0.2
    assert _config(model)["num_classes"] == 4 and torch.is_tensor(model.head.etf)


def test_fidelity_card_metric_types_use_the_hubs_names(tiny_model, tmp_path):
    metrics = {**METRICS, "dataset": "cifar10_lt_r100"}
    ltzoo.save_pretrained(tiny_model, tmp_path, tag="tiny", metrics=metrics)
    card = ModelCard.load(tmp_path / "README.md")
    by = {(r.metric_type, r.metric_config): r for r in card.data.eval_results}
    expected = {("accuracy", None): "top1", ("accuracy", "many_shot"): "many", ("accuracy", "few_shot"): "few",
                ("harmonic_mean_recall", None): "hmean", ("geometric_mean_recall", None): "gmean",
                ("lowest_recall", None): "lowest"}
    assert {k: r.metric_value for k, r in by.items()} == {k: METRICS[v] for k, v in expected.items()}
    for r in by.values():  # a real Hub dataset id, the long-tail setting in config and args
        assert r.dataset_type == "cifar10" and r.dataset_config == "cifar10_lt_r100"
        assert r.dataset_args == {"long_tailed": True, "imbalance_ratio": 100.0}
    yaml = str(card).split("---")[1]
    assert "type: accuracy" in yaml and "type: top1" not in yaml


def test_fidelity_hub_dataset_names():
    from ltzoo.hub.cards import hub_dataset

    assert hub_dataset("cifar100_lt_r50") == ("cifar100", "cifar100_lt_r50", {"long_tailed": True, "imbalance_ratio": 50.0})
    assert hub_dataset("cifar10") == ("cifar10", "cifar10", {"long_tailed": False})
    assert hub_dataset("imagenet_lt")[0] == "imagenet-1k"
    assert hub_dataset("digits_lt") == ("digits_lt", None, None)
