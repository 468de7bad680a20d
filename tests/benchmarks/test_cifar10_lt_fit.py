"""Training-image recall of a CIFAR-10-LT run (benchmarks/cifar10_lt_fit.py)."""
import json
import shutil
import statistics

import numpy as np
import pytest

from benchmarks.cifar10_lt_fit import fit_stats, fit_table, train_fit

GROUPS = {"many": [0, 2], "medium": [3, 6], "few": [7, 9]}


def _tree(root, n=4):
    """10 classes of random 32x32 PNGs; the test split is a copy of the training split."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in range(10):
        folder = root / "train" / f"c{c}"
        folder.mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / f"{i:04d}.png")
    shutil.copytree(root / "train", root / "test")
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from ltzoo.cli import main

    tmp = tmp_path_factory.mktemp("fit")
    root, run = _tree(tmp / "cifar10"), tmp / "run"
    assert main(["train", "--data", "cifar10", "--root", str(root), "--imb-ratio", "1", "--model", "small_cnn",
                 "--epochs", "2", "--batch-size", "8", "--num-threads", "1", "--device", "cpu", "--no-progress",
                 "--set", "warmup_epochs=0", "--output-dir", str(run)]) == 0
    return root, run


def test_training_recall_equals_the_eval_command_when_the_test_split_is_the_training_split(trained):
    from ltzoo.engine.eval_checkpoint import evaluate_checkpoint

    root, run = trained
    fit = train_fit(run / "model", str(root), GROUPS)
    ev = evaluate_checkpoint(run / "model", data_root=str(root))  # the metrics code, on the same images
    assert fit["per_class"] == pytest.approx(ev["per_class"], abs=0.01)
    assert fit["images"] == 40 and fit["mean"] == pytest.approx(statistics.mean(ev["per_class"]), abs=0.01)
    for group in ("many", "medium", "few"):
        assert fit[group] == pytest.approx(ev[group], abs=0.01)
    assert fit["lowest"] == pytest.approx(min(ev["per_class"]), abs=0.01)
    assert train_fit(run / "model", str(root), GROUPS) == fit  # no random crop or flip: the same every time


def test_training_recall_scores_only_the_long_tailed_images(trained, tmp_path):
    from ltzoo.engine.data import build_datasets
    from ltzoo.engine.eval_checkpoint import load_for_eval

    root, run = trained
    model = tmp_path / "model"
    shutil.copytree(run / "model", model)
    cfg = json.loads((model / "config.json").read_text())
    cfg["pretrained_cfg"]["recipe"]["imb_ratio"] = 4  # as if trained on the 4 ... 1 image profile
    (model / "config.json").write_text(json.dumps(cfg))
    (model / "ltzoo_manifest.json").unlink()  # the hand edit would not match the saved manifest
    _, recipe, _ = load_for_eval(model)
    train_set, _, _ = build_datasets(recipe.replace(data_root=str(root)))
    counts = list(train_set.class_counts)
    assert counts[0] == 4 and counts[-1] == 1
    fit = train_fit(model, str(root), {"all": [0, 9]})
    assert fit["images"] == sum(counts) < 40
    # brute force: the full-tree recall of each class, restricted to the kept images, from the first test
    full = train_fit(run / "model", str(root), GROUPS)
    assert fit["all"] == fit["mean"] and set(fit) == {"per_class", "mean", "all", "lowest", "images"}
    for c, (got, n) in enumerate(zip(fit["per_class"], counts)):
        assert round(got * n / 100) == pytest.approx(got * n / 100, abs=1e-6)  # a whole number of hits of n
        if n == 4:
            assert got == full["per_class"][c]  # every image kept: the same as on the whole tree


def test_seed_means_and_table_of_the_fit_blocks():
    fits = [{"per_class": [float(10 * s + c) for c in range(10)], "mean": 10.0 * s, "many": 1.0 + s,
             "medium": 2.0, "few": 3.0 * (s + 1), "lowest": 0.5 * s} for s in range(3)]
    runs = [{"seed": s, "train_fit": f} for s, f in enumerate(fits)] + [{"seed": 3}]  # seed 3: no block
    stats = fit_stats(runs)
    assert stats["seeds"] == [0, 1, 2] and stats["mean"] == 10.0 and stats["few"] == 6.0
    assert stats["per_class_mean"] == [10.0 + c for c in range(10)]
    assert fit_stats([{"seed": 0}]) is None
    test = {"stats": {"few": {"mean": 12.34}, "lowest": {"mean": 1.0}}}
    table = fit_table([("CE", stats, test)])
    assert "| CE | 10.0 | 2.0 | 2.0 | 6.0 | 0.5 | 12.3 | 1.0 | 3 |" in table
