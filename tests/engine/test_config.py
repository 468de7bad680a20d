import json

import pytest

from ltzoo.engine.config import TrainConfig, load_config


def test_defaults_round_trip_through_dict_and_json(tmp_path):
    cfg = TrainConfig(model="resnet32", head="ms", loss="mixed_singleton", sampler="bmls", mixer="mixup",
                      milestones=[180, 160], group_ranges={"few": (7, 9)})
    assert cfg.milestones == [160, 180] and cfg.group_ranges == {"few": [7, 9]}
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(cfg.to_dict()))
    assert load_config(path) == cfg


def test_yaml_config(tmp_path):
    pytest.importorskip("yaml")
    path = tmp_path / "cfg.yaml"
    path.write_text("model: small_cnn\nepochs: 3\nloss_args:\n  tau: 0.5\nema_decay: 0.999\n")
    cfg = load_config(path)
    assert (cfg.model, cfg.epochs, cfg.loss_args, cfg.ema_decay) == ("small_cnn", 3, {"tau": 0.5}, 0.999)


def test_unknown_key_lists_valid_keys():
    with pytest.raises(ValueError, match=r"unknown config keys \['epoch'\].*'epochs'"):
        TrainConfig.from_dict({"epoch": 3})


@pytest.mark.parametrize("changes, match", [
    ({"epochs": 0}, "epochs"), ({"lr": 0.0}, "lr"), ({"lr": float("nan")}, "lr"), ({"schedule": "poly"}, "schedule"),
    ({"ema_decay": 1.0}, "ema_decay"), ({"milestones": [1.5]}, "milestones"), ({"batch_size": True}, "batch_size"),
    ({"data": "mnist"}, "data"), ({"device": "tpu"}, "device"), ({"imb_ratio": 0.5}, "imb_ratio"),
    ({"nesterov": True, "momentum": 0.0}, "nesterov"), ({"compile": "yes"}, "compile must be a bool"),
])
def test_bad_values_name_the_field(changes, match):
    with pytest.raises((ValueError, TypeError), match=match):
        TrainConfig(**changes)


def test_replace_validates():
    cfg = TrainConfig()
    assert cfg.replace(epochs=3).epochs == 3 and cfg.epochs == 200
    with pytest.raises(ValueError, match="unknown"):
        cfg.replace(epoch=3)
