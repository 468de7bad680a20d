"""An interrupted and resumed run ends with the same weights as an uninterrupted one (CPU, same seed)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ltzoo.engine.checkpoint import load_checkpoint
from ltzoo.recipes.supervised import train_supervised
from tests.recipes.interrupt import CrashAt, Interrupt

RECIPES = {
    # paired sampler + mixer with its own generator + EMA: every piece of state a checkpoint must carry
    "bmls_mixup_ms_ema": dict(head="ms", loss="mixed_singleton", sampler="bmls", mixer="mixup", ema_decay=0.8),
    # progressive loss with a step counter, class-aware sampler, CutMix, step schedule
    "udal_class_aware_cutmix": dict(loss="udal", sampler="class_aware", mixer="cutmix", schedule="step",
                                    milestones=[2]),
}


def _image_tree(root, suffix):
    """A CIFAR-style train/test ImageFolder tree of random 32x32 images (8 / 2 a class, 10 classes)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", 8), ("test", 2)):
        for c in range(10):
            (root / split / f"c{c}").mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
                    root / split / f"c{c}" / f"{i}{suffix}")


def _tensors_equal(a, b):
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_tensors_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_tensors_equal(x, y) for x, y in zip(a, b))
    return a == b


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_interrupted_and_resumed_run_matches_uninterrupted(digits, make_cfg, tmp_path, recipe):
    train, test, _ = digits
    cfg = make_cfg(**RECIPES[recipe], epochs=3, eval_every=1)
    straight = train_supervised(cfg.replace(output_dir=str(tmp_path / "a")), train, test)

    with pytest.raises(Interrupt):  # dies in the middle of the second epoch: last.pt holds epoch 1
        train_supervised(cfg.replace(output_dir=str(tmp_path / "b")), train, test, callbacks=[CrashAt(1, 2)])
    assert load_checkpoint(tmp_path / "b" / "last.pt")["epoch"] == 1
    resumed = train_supervised(cfg.replace(output_dir=str(tmp_path / "b")), train, test, resume=True)

    a, b = load_checkpoint(tmp_path / "a" / "last.pt"), load_checkpoint(tmp_path / "b" / "last.pt")
    for key in ("model", "optimizer", "scheduler", "ema", "loss", "sampler"):
        assert _tensors_equal(a[key], b[key]), key
    for k, v in straight["model"].state_dict().items():
        assert torch.equal(v, resumed["model"].state_dict()[k]), k
    log_a = json.loads((tmp_path / "a" / "log.json").read_text())
    log_b = json.loads((tmp_path / "b" / "log.json").read_text())
    strip = lambda log: [{k: v for k, v in r.items() if k != "epoch_time_s"} for r in log]  # noqa: E731
    assert strip(log_a) == strip(log_b) and len(log_a) == 3


def test_resume_of_a_finished_run_changes_nothing(digits, make_cfg, tmp_path):
    train, test, _ = digits
    cfg = make_cfg(epochs=1, output_dir=str(tmp_path / "run"))
    first = train_supervised(cfg, train, test)
    again = train_supervised(cfg, train, test, resume=True)
    assert again["metrics"] == first["metrics"]
    for k, v in first["model"].state_dict().items():
        assert torch.equal(v, again["model"].state_dict()[k])


def test_resume_warns_on_a_changed_recipe_and_needs_output_dir(digits, make_cfg, tmp_path):
    train, test, _ = digits
    cfg = make_cfg(epochs=1, max_steps_per_epoch=1, output_dir=str(tmp_path / "run"))
    train_supervised(cfg, train, test)
    with pytest.warns(UserWarning, match="differs from the checkpoint's in \\['lr'\\]"):
        train_supervised(cfg.replace(lr=0.05), train, test, resume=True)
    with pytest.raises(ValueError, match="output_dir"):
        train_supervised(cfg.replace(output_dir=None), train, test, resume=True)


@pytest.mark.parametrize("data_path", ["tensor", "per_sample"])
def test_fidelity_resume_equality_on_the_tensor_and_per_sample_paths(tmp_path, data_path):
    """A CIFAR-style image tree (crop + flip + normalise): interrupted + resumed == uninterrupted, on both paths."""
    from ltzoo.engine.config import TrainConfig
    from ltzoo.engine.data import build_datasets
    from ltzoo.engine.tensor_loader import TensorBatchLoader

    _image_tree(tmp_path / "cifar10", ".png")
    cfg = TrainConfig(model="small_cnn", data="cifar10", data_root=str(tmp_path / "cifar10"), imb_ratio=4, epochs=3,
                      batch_size=16, lr=0.05, warmup_epochs=1, schedule="cosine", num_threads=1, progress=False,
                      save_model=False, device="cpu", mixer="mixup", sampler="bmls", head="ms",
                      data_path=data_path, num_workers=0)
    train, test, _ = build_datasets(cfg)
    straight = train_supervised(cfg.replace(output_dir=str(tmp_path / "a")), train, test)
    with pytest.raises(Interrupt):
        train_supervised(cfg.replace(output_dir=str(tmp_path / "b")), train, test, callbacks=[CrashAt(1, 1)])
    resumed = train_supervised(cfg.replace(output_dir=str(tmp_path / "b")), train, test, resume=True)
    for k, v in straight["model"].state_dict().items():
        assert torch.equal(v, resumed["model"].state_dict()[k]), k
    from ltzoo.engine.distributed import DistInfo
    from ltzoo.engine.parts import build_parts

    parts = build_parts(cfg, train, train.class_counts, DistInfo(0, 1, 0, torch.device("cpu")))
    assert isinstance(parts.loader, TensorBatchLoader) == (data_path == "tensor")


def test_a_run_resumed_in_a_fresh_process_matches_an_uninterrupted_one(tmp_path):
    """Nothing a process holds (RNG streams, the decoded-image cache it wrote) changes a resumed run."""
    _image_tree(tmp_path / "tree", ".jpg")
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}

    def child(mode, out):
        subprocess.run([sys.executable, "-m", "tests.recipes.resume_child", mode, str(tmp_path / "tree"),
                        str(tmp_path / out)], check=True, cwd=root, env=env, capture_output=True)

    child("straight", "a")
    child("crash", "b")
    assert load_checkpoint(tmp_path / "b" / "last.pt")["epoch"] == 1 and not (tmp_path / "b.pt").exists()
    child("resume", "b")
    assert (tmp_path / "a.epochs").read_text() == "0 1 2" and (tmp_path / "b.epochs").read_text() == "1 2"
    a, b = torch.load(tmp_path / "a.pt"), torch.load(tmp_path / "b.pt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
