"""One short epoch on the real CIFAR-10-LT (the shared JPEG copy); skipped without LTZOO_CIFAR10_JPEG."""
import json
import os
from pathlib import Path

import pytest

from ltzoo.cli import main
from ltzoo.engine.checkpoint import load_checkpoint

CIFAR10_LT_100 = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]


@pytest.fixture(scope="module")
def cifar10_root():
    root = os.environ.get("LTZOO_CIFAR10_JPEG")
    if not root:
        pytest.skip("LTZOO_CIFAR10_JPEG is not set (folder with the CIFAR-10 JPEG train/ and test/)")
    if not (Path(root) / "train").is_dir() or not (Path(root) / "test").is_dir():
        pytest.skip(f"LTZOO_CIFAR10_JPEG={root!r} has no train/ and test/ folders")
    return root


def test_one_short_epoch_on_cifar10_lt_r100(cifar10_root, tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--data", "cifar10", "--root", cifar10_root, "--imb-ratio", "100", "--model", "resnet32",
                 "--head", "ms", "--loss", "mixed_singleton", "--sampler", "bmls", "--mixer", "mixup",
                 "--epochs", "1", "--batch-size", "32", "--max-steps-per-epoch", "3", "--num-threads", "1",
                 "--set", "max_eval_samples=300", "--set", "save_model=false", "--output-dir", str(run),
                 "--no-progress"]) == 0
    state = load_checkpoint(run / "last.pt")
    assert state["class_counts"] == CIFAR10_LT_100 and state["global_step"] == 3
    record = json.loads((run / "log.json").read_text())[-1]
    m = record["metrics"]
    assert m["num_samples"] == 300 and len(m["per_class"]) == 10 and record["train_loss"] > 0
    assert main(["eval", str(run / "last.pt"), "--max-samples", "200", "--no-plot"]) == 0
    assert json.loads((run / "eval_metrics.json").read_text())["num_samples"] == 200
