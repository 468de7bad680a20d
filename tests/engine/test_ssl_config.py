"""SSLConfig defaults follow the papers' recipes (WRN-28-2; BEM 250k iterations, else 2^16)."""
import json

import pytest

from ltzoo.cli import build_parser
from ltzoo.cli.train import config_from_args
from ltzoo.engine.ssl_config import PLUGINS, SSLConfig


def iterations(cfg):
    return cfg.epochs * cfg.iters_per_epoch


@pytest.mark.parametrize("plugin", PLUGINS)
def test_fidelity_ssl_defaults_are_the_papers_recipe(plugin):
    cfg = SSLConfig(plugin=plugin)
    assert cfg.model == "wrn_28_2" and cfg.batch_size == 64 and cfg.unlabeled_ratio == 7
    assert cfg.schedule == "fixmatch" and cfg.ema_decay == 0.999 and not cfg.decay_bias_norm
    if plugin == "bem":  # BEM Appendix B: 250k iterations, an evaluation every 500
        assert iterations(cfg) == 250_000 and cfg.iters_per_epoch * cfg.eval_every == 500
    else:  # UDAL: 2^16 iterations
        assert iterations(cfg) == 2 ** 16


def test_fidelity_plugin_lengths_follow_a_plugin_change_but_never_override_given_values():
    assert iterations(SSLConfig().replace(plugin="bem")) == 250_000
    assert iterations(SSLConfig(plugin="bem").replace(plugin="udal")) == 2 ** 16
    given = SSLConfig(plugin="bem", epochs=3)
    assert (given.epochs, given.iters_per_epoch) == (3, 500)
    moved = given.replace(plugin="none")
    assert (moved.epochs, moved.iters_per_epoch) == (3, 1024)  # epochs was given, iters_per_epoch derived
    saved = SSLConfig.from_dict(json.loads(json.dumps(SSLConfig(plugin="bem").to_dict())))
    assert iterations(saved) == 250_000 and saved == SSLConfig(plugin="bem")


def test_fidelity_train_ssl_command_takes_the_plugin_length(tmp_path):
    parser = build_parser()
    args = parser.parse_args(["train-ssl", "--plugin", "bem", "--output-dir", str(tmp_path)])
    assert iterations(config_from_args(args, SSLConfig)) == 250_000
    path = tmp_path / "cfg.json"  # a config file that leaves the length to the plugin, then --plugin bem
    path.write_text(json.dumps({"plugin": "none", "lr": 0.05}))
    args = parser.parse_args(["train-ssl", "--config", str(path), "--plugin", "bem", "--output-dir", str(tmp_path)])
    cfg = config_from_args(args, SSLConfig)
    assert iterations(cfg) == 250_000 and cfg.lr == 0.05
    args = parser.parse_args(["train-ssl", "--plugin", "bem", "--epochs", "2", "--output-dir", str(tmp_path)])
    assert iterations(config_from_args(args, SSLConfig)) == 2 * 500


@pytest.mark.parametrize("changes, name", [
    (dict(bem_temperature=0.0), "bem_temperature"), (dict(bem_delta="identity"), "bem_delta"),
    (dict(decay_bias_norm=1), "decay_bias_norm"), (dict(iters_per_epoch=0), "iters_per_epoch"),
    (dict(plugin="mixmatch"), "plugin"),
])
def test_bad_ssl_fields_are_named(changes, name):
    with pytest.raises((ValueError, TypeError), match=name):
        SSLConfig(**changes)
