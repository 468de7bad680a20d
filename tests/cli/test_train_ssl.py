"""``ltzoo train-ssl`` cuts the LTSSL split from the training data and runs train_fixmatch."""
import json

import pytest

from ltzoo.cli import main

LTSSL = '{"n1": 15, "m1": 90, "gamma_l": 10, "gamma_u": 0.1}'


def test_train_ssl_command_runs_fixmatch_with_a_plugin(tmp_path):
    out = tmp_path / "run"
    assert main(["train-ssl", "--data", "digits", "--model", "small_cnn", "--plugin", "udal", "--ltssl", LTSSL,
                 "--epochs", "1", "--iters-per-epoch", "3", "--batch-size", "8", "--output-dir", str(out),
                 "--no-progress", "--set", 'data_args={"image_size": 16}']) == 0
    log = json.loads((out / "log.json").read_text())
    assert log and "udal_alpha" in json.dumps(log[-1])
    assert (out / "last.pt").is_file() and (out / "model" / "model.safetensors").is_file()


def test_train_ssl_needs_the_split(tmp_path):
    with pytest.raises(ValueError, match="--ltssl"):
        main(["--debug", "train-ssl", "--data", "digits", "--output-dir", str(tmp_path / "x")])
    with pytest.raises(ValueError, match="ltssl must give exactly"):
        main(["--debug", "train-ssl", "--data", "digits", "--ltssl", '{"n1": 5}', "--output-dir", str(tmp_path / "y")])
