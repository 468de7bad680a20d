"""save_pretrained and loading from a local folder ("local-dir:"), through ltzoo and timm."""
import json

import pytest
import safetensors.torch
import timm
import torch

import ltzoo
from ltzoo.hub import METRICS_FIELDS, check_safetensors_file
from ltzoo.hub.timm_names import ltzoo_arch, timm_name
from ltzoo.models import LTModel

METRICS = {"dataset": "digits_lt", "split": "test", "top1": 81.5, "many": 92.0, "medium": None, "few": 60.25,
           "hmean": 70.0, "gmean": 74.5, "lowest": 55.0}
X = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def test_save_pretrained_writes_weights_config_and_card(tiny_model, tmp_path):
    out = ltzoo.save_pretrained(tiny_model, tmp_path / "m", tag="tiny", metrics=METRICS, per_class=[90, 70, 50],
                                class_counts=[100, 20, 5], recipe={"loss": "ce"}, paper="A paper")
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "ltzoo_manifest.json", "model.safetensors",
                                                    "per_class_accuracy.png"]
    config = json.loads((out / "config.json").read_text())
    assert config["architecture"] == "resnet32" and config["num_classes"] == 3 and config["head"] == "fc"
    assert config["library_name"] == "ltzoo"
    assert config["model_args"] == {"head": "fc", "head_args": {}, "global_pool": "avg", "drop_rate": 0.0,
                                    "in_chans": 3, "backbone_args": {}}
    pcfg = config["pretrained_cfg"]
    assert list(pcfg["metrics"]) == list(METRICS_FIELDS) and pcfg["metrics"] == METRICS
    assert pcfg["class_counts"] == [100, 20, 5] and pcfg["hf_hub_id"] == "ltzoo/resnet32.tiny"
    assert pcfg["input_size"] == [3, 32, 32] and pcfg["classifier"] == "head" and pcfg["paper"] == {"title": "A paper"}
    header = check_safetensors_file(out / "model.safetensors")
    assert set(header) - {"__metadata__"} == set(tiny_model.state_dict())


def test_local_dir_round_trip_gives_identical_outputs_in_ltzoo_and_timm(tiny_model, tmp_path):
    ltzoo.save_pretrained(tiny_model, tmp_path, metrics=METRICS)
    expected = tiny_model(X)
    loaded = ltzoo.create_model(f"local-dir:{tmp_path}", pretrained=True).eval()
    assert torch.equal(loaded(X), expected)
    assert loaded.pretrained_cfg["metrics"] == METRICS and loaded.pretrained_cfg["source"] == "local-dir"
    via_timm = timm.create_model(f"local-dir:{tmp_path}", pretrained=True).eval()
    assert isinstance(via_timm, LTModel) and torch.equal(via_timm(X), expected)
    fresh = ltzoo.create_model(f"local-dir:{tmp_path}")  # architecture only
    assert fresh.num_classes == 3 and not torch.equal(fresh.eval()(X), expected)


def test_pretrained_cfg_overlay_file_loads_a_safetensors_file(tiny_model, tmp_path):
    ltzoo.save_pretrained(tiny_model, tmp_path)
    overlay = {"file": str(tmp_path / "model.safetensors")}
    model = ltzoo.create_model("resnet32", num_classes=3, pretrained=True, pretrained_cfg_overlay=overlay).eval()
    assert torch.equal(model(X), tiny_model(X))


def test_other_num_classes_reinitialises_only_the_head(tiny_model, tmp_path):
    ltzoo.save_pretrained(tiny_model, tmp_path)
    model = ltzoo.create_model(f"local-dir:{tmp_path}", pretrained=True, num_classes=5)
    assert model.num_classes == 5 and model.head.fc.out_features == 5
    for key, value in tiny_model.backbone.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[key], value)


def test_head_pooling_and_backbone_args_round_trip(tmp_path):
    torch.manual_seed(0)
    model = ltzoo.create_model("resnet32", head="ms_wetf", num_classes=4, global_pool="catavgmax",
                               backbone_args={"width": 2}).eval()
    ltzoo.save_pretrained(model, tmp_path)
    loaded = ltzoo.create_model(f"local-dir:{tmp_path}", pretrained=True).eval()
    assert loaded.head_name == "ms_wetf" and loaded.model_args == model.model_args
    assert torch.equal(loaded(X), model(X))


def test_failed_write_leaves_previous_files_and_no_partial_file(tiny_model, tmp_path, monkeypatch):
    ltzoo.save_pretrained(tiny_model, tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def broken_save(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", broken_save)
    torch.manual_seed(1)
    with pytest.raises(OSError, match="disk full"):
        ltzoo.save_pretrained(ltzoo.create_model("resnet32", num_classes=3), tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_invalid_card_fields_fail_before_anything_is_written(tiny_model, tmp_path):
    with pytest.raises(ValueError, match="class_counts must have one entry per class"):
        ltzoo.save_pretrained(tiny_model, tmp_path / "m", class_counts=[1, 2])
    assert not (tmp_path / "m").exists()


def test_timm_named_backbones_use_an_ltzoo_alias_in_config():
    assert timm_name("resnet50") == "ltzoo_resnet50" and ltzoo_arch("ltzoo_resnet50") == "resnet50"
    assert timm_name("resnet32") == "resnet32" and timm.is_model("ltzoo_resnet50")


def test_fidelity_pretrained_folder_path_loads_the_saved_model(tiny_model, tmp_path):
    folder = tmp_path / "saved"
    ltzoo.save_pretrained(tiny_model, folder, tag="unregistered_tag")
    x = torch.randn(2, 3, 32, 32)
    loaded = ltzoo.create_model("resnet32", pretrained=str(folder)).eval()
    assert torch.allclose(loaded(x), tiny_model(x), atol=1e-6)
    card = (folder / "README.md").read_text()
    usage = [line for line in card.splitlines() if "create_model(" in line]
    assert usage[0] == f'model = ltzoo.create_model("local-dir:{folder}", pretrained=True).eval()'
    assert not any("unregistered_tag" in line for line in usage)  # an unregistered tag does not load by name
    code = usage[0].split("=", 1)[1].strip()  # the card's own line loads the model
    assert torch.allclose(eval(code, {"ltzoo": ltzoo})(x), tiny_model(x), atol=1e-6)
    with pytest.raises(ValueError, match="'resnet32' model, not 'wrn_28_2'.*local-dir:"):
        ltzoo.create_model("wrn_28_2", pretrained=str(folder))
    with pytest.raises(ValueError, match="not a saved model folder.*local-dir:"):
        ltzoo.create_model("resnet32", pretrained=str(tmp_path / "nothing"))
    with pytest.raises(TypeError, match="pretrained must be a bool or a path"):
        ltzoo.create_model("resnet32", pretrained=3)
