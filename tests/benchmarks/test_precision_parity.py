"""The bf16 / fp32 parity check on fabricated finished runs: the criterion, the paired seeds, the losses read."""
import json

import pytest

import benchmarks._common as common
from benchmarks import bench_precision_parity as parity
from benchmarks.cifar10_lt import METRICS, run_dir


def _write_run(work, row, seed, precision, top1, hmean, loss):
    folder = run_dir(work, "cpu", row, seed, precision)
    folder.mkdir(parents=True)
    metrics = {k: 50.0 for k in METRICS}
    metrics.update(top1=top1, hmean=hmean)
    record = {"row": row, "variant": None, "schedule": "cpu", "seed": seed, "precision": precision,
              "train_s": 100.0 if precision == "bf16" else 200.0, "metrics": metrics, "per_class": [50.0] * 10}
    (folder / "done.json").write_text(json.dumps(record))
    (folder / "log.json").write_text(json.dumps([{"epoch": 30, "train_loss": loss}]))


@pytest.fixture
def results_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "RESULTS_DIR", tmp_path / "results")
    monkeypatch.delenv("LTZOO_CIFAR10_JPEG", raising=False)  # no probe: the fabricated runs have no model
    return tmp_path / "results"


def _fabricate(work, ce_bf16_top1):
    for seed in range(3):
        for row in ("ce", "bmls_ms"):
            _write_run(work, row, seed, "fp32", 60.0 + seed, 50.0 + seed, 0.25)
            bf16_top1 = ce_bf16_top1[seed] if row == "ce" else 60.0 + seed + 0.5
            _write_run(work, row, seed, "bf16", bf16_top1, 50.0 + seed - 1.0, 0.27)


def test_parity_fails_when_the_mean_top1_gap_exceeds_one_point(tmp_path, results_dir):
    # CE bf16 is 0.5, 1.5 and 1.6 points lower: mean 1.2 > 1 (each seed alone says little).
    _fabricate(tmp_path / "runs", [59.5, 59.5, 60.4])
    out = parity.main(["--work-dir", str(tmp_path / "runs")])
    assert out["rows"]["ce"]["bf16_minus_fp32"]["top1"]["differences"] == [-0.5, -1.5, -1.6]
    assert out["rows"]["ce"]["bf16_minus_fp32"]["top1"]["mean_difference"] == pytest.approx(-1.2)
    assert out["rows"]["ce"]["parity"] is False and out["rows"]["bmls_ms"]["parity"] is True
    assert out["parity"] is False
    assert out["rows"]["ce"]["final_train_loss"] == {"bf16": [0.27] * 3, "fp32": [0.25] * 3}
    assert out["rows"]["ce"]["train_s_mean"] == {"bf16": 100.0, "fp32": 200.0}
    assert json.loads((results_dir / "precision_parity.json").read_text())["parity"] is False


def test_parity_holds_within_the_limits(tmp_path, results_dir):
    _fabricate(tmp_path / "runs", [59.5, 61.5, 61.4])  # differences -0.5, +0.5, -0.6: mean -0.2
    out = parity.main(["--work-dir", str(tmp_path / "runs")])
    assert out["parity"] is True
    assert out["rows"]["ce"]["bf16_minus_fp32"]["hmean"]["mean_difference"] == pytest.approx(-1.0)


def test_too_few_seeds_is_refused(tmp_path, results_dir):
    _write_run(tmp_path / "runs", "ce", 0, "fp32", 60.0, 50.0, 0.25)
    with pytest.raises(SystemExit, match="need 3 each"):
        parity.main(["--work-dir", str(tmp_path / "runs")])
    assert not results_dir.exists() or not any(results_dir.iterdir())


def test_step_agreement_compares_bf16_with_fp32_on_one_batch(tmp_path):
    import numpy as np
    import torch
    from PIL import Image

    import ltzoo
    from ltzoo.hub.save import save_pretrained

    rng = np.random.default_rng(0)
    for c in range(10):
        folder = tmp_path / "data" / "train" / f"c{c}"
        folder.mkdir(parents=True)
        for i in range(4):
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    torch.manual_seed(0)
    save_pretrained(ltzoo.create_model("resnet32", num_classes=10), tmp_path / "model", plot=False,
                    class_counts=[40, 30, 20, 10, 8, 6, 5, 4, 3, 2])
    out = parity.step_agreement(tmp_path / "model", tmp_path / "data", images=32)
    assert out["images"] == 32
    for name in ("bf16", "bf16_fp32_classifier"):
        # bf16 rounds (the logits differ), yet the step points the same way as fp32's
        assert 0 < out[name]["max_abs_logit_difference"] < 0.5
        assert 0.98 < out[name]["gradient_cosine"] <= 1.0
        assert abs(out[name]["loss"] - out["fp32_loss"]) < 1e-2
