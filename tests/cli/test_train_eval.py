"""``ltzoo train`` and ``ltzoo eval`` on digits-LT (16x16, small_cnn): flags, config files, outputs."""
import json

import pytest

from ltzoo.cli import build_parser, main
from ltzoo.cli.train import config_from_args
from ltzoo.engine.checkpoint import load_checkpoint

TINY = ["--data", "digits", "--imb-ratio", "20", "--data-args", '{"image_size": 16}', "--model", "small_cnn",
        "--batch-size", "64", "--num-threads", "1", "--device", "cpu", "--no-progress", "--set", "warmup_epochs=1",
        "--set", "schedule=cosine"]


def test_config_file_then_flags_then_set(tmp_path):
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps({"model": "resnet32", "epochs": 7, "lr": 0.05, "loss": "logit_adjusted"}))
    args = build_parser().parse_args(["train", "--config", str(path), "--epochs", "3", "--milestones", "2,1",
                                      "--set", "loss_args={\"tau\": 0.5}", "--set", "tag=my_run"])
    cfg = config_from_args(args)
    assert (cfg.model, cfg.epochs, cfg.lr, cfg.loss, cfg.loss_args) == ("resnet32", 3, 0.05, "logit_adjusted",
                                                                          {"tau": 0.5})
    assert cfg.milestones == [1, 2] and cfg.output_dir == "runs/my_run"
    with pytest.raises(ValueError, match="unknown config keys"):
        config_from_args(build_parser().parse_args(["train", "--set", "epoch=3"]))
    assert cfg.compile is False
    assert config_from_args(build_parser().parse_args(["train", "--compile"])).compile is True


def test_train_then_eval_run_folder_checkpoint_and_model(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", *TINY, "--epochs", "2", "--loss", "logit_adjusted", "--output-dir", str(run)]) == 0
    out = capsys.readouterr().out
    assert "top-1" in out and str(run) in out
    final = json.loads((run / "metrics.json").read_text())
    assert load_checkpoint(run / "last.pt")["epoch"] == 2 and (run / "model" / "model.safetensors").is_file()

    pytest.importorskip("matplotlib")
    assert main(["eval", str(run)]) == 0  # the run folder: its model/ (the final model)
    got = json.loads((run / "eval_metrics.json").read_text())
    assert got["top1"] == pytest.approx(final["top1"]) and got["per_class"] == final["per_class"]
    assert (run / "eval_per_class.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    out_json, plot = tmp_path / "ck.json", tmp_path / "ck.png"
    assert main(["eval", str(run / "last.pt"), "--out", str(out_json), "--plot", str(plot),
                 "--logit-adjust-tau", "1.0"]) == 0
    got = json.loads(out_json.read_text())
    assert got["top1"] == pytest.approx(final["top1"]) and "posthoc" in got and plot.is_file()
    assert "post-hoc LA" in capsys.readouterr().out
    with pytest.raises(ValueError, match="no EMA"):
        main(["--debug", "eval", str(run / "last.pt"), "--ema", "--no-plot"])  # --debug: the error propagates


def test_train_resume_flag_and_default_run_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = [*TINY, "--epochs", "1", "--set", "max_steps_per_epoch=1", "--set", "save_model=false"]
    assert main(["train", *args]) == 0
    run = tmp_path / "runs" / "digits_lt_r20_default"
    assert (run / "last.pt").is_file() and not (run / "model").exists()
    assert main(["train", *args, "--resume"]) == 0
    assert len(json.loads((run / "log.json").read_text())) == 1


def _tiny_cifar_tree(root, per_class=(6, 2)):
    """A 10-class ImageFolder split tree of random 32x32 PNGs laid out like the CIFAR-10 JPEG copy."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in zip(("train", "test"), per_class):
        for c in range(10):
            folder = root / split / f"c{c}"
            folder.mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / f"{i:04d}.png")
    return root


def test_fidelity_cifar10_lt_groups_by_index_travel_from_data_to_config_model_and_eval(tmp_path, capsys):
    from ltzoo.metrics import CIFAR10_SPLIT

    root, run = _tiny_cifar_tree(tmp_path / "cifar10"), tmp_path / "run"
    args = ["--data", "cifar10", "--root", str(root), "--imb-ratio", "3", "--model", "small_cnn", "--epochs", "1",
            "--batch-size", "8", "--num-threads", "1", "--device", "cpu", "--no-progress", "--set", "warmup_epochs=0",
            "--output-dir", str(run)]
    assert main(["train", *args]) == 0
    assert "classes 0-2 / 3-6 / 7-9" in capsys.readouterr().out
    ck = load_checkpoint(run / "last.pt")
    assert ck["config"]["group_ranges"] == CIFAR10_SPLIT["ranges"]  # recorded in the run's config
    assert json.loads((run / "log.json").read_text())[-1]["metrics"]["groups"] == CIFAR10_SPLIT
    saved = json.loads((run / "model" / "config.json").read_text())
    assert saved["pretrained_cfg"]["groups"] == CIFAR10_SPLIT  # and in the saved model's config.json
    assert "classes 0-2 / 3-6 / 7-9" in (run / "model" / "README.md").read_text()

    assert main(["eval", str(run), "--no-plot"]) == 0
    got = json.loads((run / "eval_metrics.json").read_text())
    per = got["per_class"]
    assert got["groups"] == CIFAR10_SPLIT
    assert got["few"] == pytest.approx(sum(per[7:10]) / 3) and got["many"] == pytest.approx(sum(per[0:3]) / 3)
    # told otherwise: thresholds on the training counts (6, 5, ..., 2 images: all "few" below 20)
    assert main(["eval", str(run), "--no-plot", "--many-threshold", "100", "--few-threshold", "20"]) == 0
    got = json.loads((run / "eval_metrics.json").read_text())
    assert got["groups"] == {"many_threshold": 100.0, "few_threshold": 20.0} and got["many"] is None
    assert got["few"] == pytest.approx(sum(per) / 10)


def test_fidelity_digits_defaults_match_the_demo_and_summary_names_the_run(capsys):
    from ltzoo.cli import build_parser
    from ltzoo.cli.train import config_from_args, print_run

    parser = build_parser()
    cfg = config_from_args(parser.parse_args(["train", "--data", "digits"]))
    from ltzoo.recipes.demo import demo_config

    assert cfg.imb_ratio == demo_config().imb_ratio == 20  # ltzoo demo's digits-LT (113 ... 5 images per class)
    assert config_from_args(parser.parse_args(["train", "--data", "digits", "--imb-ratio", "5"])).imb_ratio == 5
    assert config_from_args(parser.parse_args(["train", "--data", "cifar10"])).imb_ratio == 100
    print_run(cfg.replace(tag="my_tag"), {"metrics": None}, rank=0)
    assert "data: digits, imbalance ratio 20, recipe tag: my_tag" in capsys.readouterr().out
    assert parser.parse_args(["eval", "run"]).device == "auto"
