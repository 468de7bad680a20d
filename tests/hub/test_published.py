"""Published weights: the CIFAR-10-LT publishing pipeline round trip, and every committed checkpoint.

The pipeline test publishes a fabricated finished run into a temporary model folder and registry and
loads it back by name (offline, from the local copy), through timm from the local test Hub, and
checks the card. The committed-checkpoint tests run once per entry of ltzoo/hub/published.json.
"""
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

import ltzoo
from ltzoo.hub import MODEL_DIR_ENV, LocalCopyWarning, unregister_pretrained
from ltzoo.hub.published import PUBLISHED_FILE, published_entries, register_published

ROOT = Path(__file__).resolve().parents[2]
X = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
COUNTS = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]


def _fake_run(work, row="bmls_ms"):
    """A finished full-schedule run folder: an (untrained) model, its done.json and eval_metrics.json."""
    from benchmarks.cifar10_lt import GROUPS, row_config, run_dir
    from ltzoo.metrics import summarize

    folder = run_dir(work, "full", row, 0, "fp32")
    torch.manual_seed(0)
    cfg = row_config(row, "full", 0, "fp32", root="/data", output_dir=folder)
    model = ltzoo.create_model("resnet32", num_classes=10, head=cfg.head).eval()
    ltzoo.save_pretrained(model, folder / "model", class_counts=COUNTS, recipe=cfg.to_dict())
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(10), 100)
    pred = np.where(rng.random(1000) < 0.6, y, rng.integers(0, 10, 1000))
    summary = summarize(y, pred, COUNTS, ranges=GROUPS)
    (folder / "eval_metrics.json").write_text(json.dumps({**summary, "dataset": "cifar10_lt_r100"}, default=float))
    keys = ("top1", "many", "medium", "few", "hmean", "gmean", "lowest")
    (folder / "done.json").write_text(json.dumps({"row": row, "config": cfg.to_dict(), "class_counts": COUNTS,
                                                  "metrics": {k: summary[k] for k in keys},
                                                  "machine": {"cpu": "Test CPU", "gpu": None}}))
    return model, summary


def _check_card(folder):
    from huggingface_hub import ModelCard

    config = json.loads((folder / "config.json").read_text())
    card = ModelCard.load(folder / "README.md")
    index = card.data.to_dict()["model-index"][0]["results"]
    metrics = config["pretrained_cfg"]["metrics"]
    values = [m["value"] for r in index for m in r["metrics"]]
    assert values and all(v is not None for v in values)
    shown = sorted(round(v, 6) for v in values)
    recorded = sorted(round(metrics[k], 6) for k in ("top1", "many", "medium", "few", "hmean", "gmean", "lowest")
                      if metrics.get(k) is not None)
    assert shown == recorded
    return config, card


def test_publishing_a_run_makes_a_loadable_named_checkpoint(tmp_path, offline, monkeypatch):
    from benchmarks.cifar10_lt_publish import publish_row

    model, summary = _fake_run(tmp_path / "runs")
    registry = tmp_path / "published.json"
    name = "resnet32.cifar10_lt_r100_bmls_ms"
    try:
        out = publish_row("bmls_ms", tmp_path / "runs", model_dir=tmp_path / "models", registry=registry)
        assert out == tmp_path / "models" / name
        assert {p.name for p in out.iterdir()} >= {"model.safetensors", "config.json", "README.md"}
        config, card = _check_card(out)
        pcfg = config["pretrained_cfg"]
        assert pcfg["metrics"]["top1"] == pytest.approx(summary["top1"]) and pcfg["class_counts"] == COUNTS
        assert pcfg["recipe"]["schedule"] == "full" and pcfg["recipe"]["epochs"] == 200
        assert pcfg["recipe"]["trained_on"]["cpu"] == "Test CPU" and '"trained_on"' in str(card)
        assert "python -m benchmarks.cifar10_lt run --schedule full --rows bmls_ms --seeds 0" in pcfg["recipe"]["reproduce"]
        assert pcfg["extra_metrics"]["paper"]["top1"] == 79.7  # the paper's number beside ours
        assert f'ltzoo.create_model("{name}", pretrained=True)' in str(card)
        assert set(published_entries(registry)) == {name}
        unregister_pretrained(name)
        assert register_published(registry) == [name]  # the registry file alone re-registers it
        monkeypatch.setenv(MODEL_DIR_ENV, str(tmp_path / "models"))
        with pytest.warns(LocalCopyWarning):
            loaded = ltzoo.create_model(name, pretrained=True).eval()
        assert torch.equal(loaded(X), model(X))
        assert loaded.pretrained_cfg["metrics"]["hmean"] == pytest.approx(summary["hmean"])
    finally:
        from ltzoo.hub import PRETRAINED

        if name in PRETRAINED:
            unregister_pretrained(name)


def test_published_checkpoint_loads_through_timm_from_the_test_hub(tmp_path, hub, monkeypatch):
    import timm

    from benchmarks.cifar10_lt_publish import publish_row
    from ltzoo.cli import main

    model, _ = _fake_run(tmp_path / "runs", "la")
    name = "resnet32.cifar10_lt_r100_la"
    try:
        out = publish_row("la", tmp_path / "runs", model_dir=tmp_path / "models", registry=tmp_path / "p.json")
        monkeypatch.setenv("LTZOO_HUB_ORG", "test-org")
        assert main(["push", str(out), f"test-org/{name}", "--token", "hf_test"]) == 0
        via_timm = timm.create_model(f"hf-hub:test-org/{name}", pretrained=True).eval()
        assert torch.equal(via_timm(X), model(X))
        by_name = ltzoo.create_model(name, pretrained=True).eval()  # the tag resolves to $LTZOO_HUB_ORG/<name>
        assert torch.equal(by_name(X), model(X))
    finally:
        from ltzoo.hub import PRETRAINED

        if name in PRETRAINED:
            unregister_pretrained(name)


PUBLISHED = sorted(published_entries(PUBLISHED_FILE))


@pytest.mark.parametrize("name", PUBLISHED)
def test_committed_checkpoint_card_parses_and_matches_its_config(name):
    folder = ROOT / "model_cards" / name
    config, _ = _check_card(folder)
    entry = published_entries()[name]
    assert config["pretrained_cfg"]["metrics"] == entry["metrics"]
    assert config["pretrained_cfg"]["class_counts"] == entry["class_counts"]


@pytest.mark.parametrize("name", PUBLISHED)
def test_committed_checkpoint_re_evaluates_to_its_card(name):
    root = os.environ.get("LTZOO_CIFAR10_JPEG")
    if not root:
        pytest.skip("LTZOO_CIFAR10_JPEG is not set: no CIFAR-10 test set to re-evaluate on")
    from ltzoo.engine.eval_checkpoint import evaluate_checkpoint

    folder = ROOT / "model_cards" / name
    metrics = json.loads((folder / "config.json").read_text())["pretrained_cfg"]["metrics"]
    measured = evaluate_checkpoint(folder, data_root=root)
    assert measured["top1"] == pytest.approx(metrics["top1"], abs=0.1)
    assert measured["hmean"] == pytest.approx(metrics["hmean"], abs=0.1)
