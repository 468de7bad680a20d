"""Hostile or broken configs and weights: refused with an error naming the file / field, before anything is built
or downloaded; a re-save leaves no stale files; an interrupted save is refused."""
import json

import numpy as np
import pytest
import timm
import torch

import ltzoo
from ltzoo.folder_manifest import SAVING_MARKER

METRICS = {"dataset": "digits_lt", "split": "test", "top1": 50.0, "many": 60.0, "medium": 40.0, "few": None,
           "hmean": 45.0, "gmean": 47.5, "lowest": 30.0}


def _edit_config(folder, edit):
    config = json.loads((folder / "config.json").read_text())
    edit(config)
    (folder / "config.json").write_text(json.dumps(config))


@pytest.fixture
def no_torch_load(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("torch.load was called on a downloaded file")
    monkeypatch.setattr(torch, "load", refuse)


@pytest.mark.parametrize("backbone_args, refused", [({"checkpoint_path": "/tmp/evil.pt"}, "checkpoint_path"),
                                                    ({"pretrained": True}, "pretrained"),
                                                    ({"drop_path_rate": 0.1, "pretrained_cfg": {}}, "pretrained_cfg")])
def test_reliability_hostile_backbone_args_refused_from_seeded_offline_cache(
        tiny_model, tmp_path, seed_cache, offline, no_torch_load, backbone_args, refused):
    ltzoo.save_pretrained(tiny_model, tmp_path / "m")

    def hostile(config):
        config["architecture"] = "ltzoo_resnet50"  # a timm-built backbone: timm.create_model receives the args
        config["model_args"]["backbone_args"] = backbone_args
        config["pretrained_cfg"]["architecture"] = "resnet50"
    _edit_config(tmp_path / "m", hostile)
    seed_cache("evil-org/m", tmp_path / "m")
    with pytest.raises(ValueError, match=rf"hf-hub:evil-org/m: config\.json model_args\.backbone_args sets "
                                         rf"\['{refused}'\].*allowed: \['drop_block_rate', 'drop_path_rate', "
                                         r"'drop_rate'\]"):
        ltzoo.create_model("hf-hub:evil-org/m", pretrained=True)
    with pytest.raises(ValueError, match=rf"backbone_args sets \['{refused}'\]"):
        timm.create_model("hf-hub:evil-org/m", pretrained=True)  # timm's own reading of config.json


def test_reliability_allowed_backbone_args_and_pretrained_cfg_fields(tiny_model, tmp_path, seed_cache, offline):
    ltzoo.save_pretrained(ltzoo.create_model("resnet32", num_classes=3, backbone_args={"width": 1}), tmp_path / "ok")
    seed_cache("org/ok", tmp_path / "ok")
    assert ltzoo.create_model("hf-hub:org/ok").model_args["backbone_args"] == {"width": 1}
    ltzoo.save_pretrained(tiny_model, tmp_path / "cfg")
    _edit_config(tmp_path / "cfg", lambda c: c["pretrained_cfg"].update(custom_loader="evil.module:load"))
    seed_cache("org/cfg", tmp_path / "cfg")
    with pytest.raises(ValueError, match=r"hf-hub:org/cfg: config\.json pretrained_cfg sets \['custom_loader'\]"):
        ltzoo.create_model("hf-hub:org/cfg")


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["pretrained_cfg"].update(metrics={**METRICS, "top1": 150.0}), r"metrics\['top1'\]"),
    (lambda c: c["pretrained_cfg"].update(class_counts=[1, 2]), "class_counts must have one entry per class"),
    (lambda c: c["pretrained_cfg"].update(mean=[0.5, 0.5]), "mean and std must have one entry per input channel"),
    (lambda c: c.update(num_classes=10**9), "num_classes must be at most 1,000,000"),
    (lambda c: c["pretrained_cfg"].update(input_size=[3, 10**6, 10**6]), "input_size must be within"),
])
def test_reliability_loaded_config_is_validated_as_on_save(tiny_model, tmp_path, edit, message):
    ltzoo.save_pretrained(tiny_model, tmp_path)
    (tmp_path / "ltzoo_manifest.json").unlink()  # a hand-assembled folder: only the config's own checks apply
    _edit_config(tmp_path, edit)
    with pytest.raises(ValueError, match=rf"local-dir:{tmp_path}: config\.json is invalid: .*{message}"):
        ltzoo.create_model(f"local-dir:{tmp_path}", pretrained=True)


def test_reliability_nan_weights_are_refused(tiny_model, tmp_path):
    from ltzoo.files import write_safetensors

    ltzoo.save_pretrained(tiny_model, tmp_path)
    state = dict(tiny_model.state_dict())
    state["head.fc.bias"] = torch.tensor([0.0, float("nan"), 1.0])
    write_safetensors(state, tmp_path / "model.safetensors")
    with pytest.raises(ValueError, match=r"model\.safetensors hold 1 NaN / infinite value\(s\) in 'head\.fc\.bias'"):
        ltzoo.create_model(f"local-dir:{tmp_path}", pretrained=True)


def test_reliability_resave_removes_stale_plot_keeps_foreign_files(tiny_model, tmp_path):
    pytest.importorskip("matplotlib")
    ltzoo.save_pretrained(tiny_model, tmp_path, per_class=[90, 70, 50], class_counts=[100, 20, 5])
    (tmp_path / "my_notes.md").write_text("mine")
    assert (tmp_path / "per_class_accuracy.png").is_file()
    ltzoo.save_pretrained(tiny_model, tmp_path)  # no per-class numbers this time
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md", "config.json", "ltzoo_manifest.json",
                                                          "model.safetensors", "my_notes.md"]


def test_reliability_interrupted_save_is_refused_on_load(tiny_model, tmp_path, monkeypatch):
    import ltzoo.folder_manifest as fm

    ltzoo.save_pretrained(tiny_model, tmp_path)

    def crash(*a, **k):
        raise KeyboardInterrupt  # between the renames and the manifest
    monkeypatch.setattr(fm, "finish_folder_write", crash)
    with pytest.raises(KeyboardInterrupt):
        ltzoo.save_pretrained(ltzoo.create_model("resnet32", num_classes=3), tmp_path)
    assert (tmp_path / SAVING_MARKER).exists()
    with pytest.raises(ValueError, match=rf"{tmp_path}: an ltzoo save into this folder was interrupted"):
        ltzoo.create_model(f"local-dir:{tmp_path}", pretrained=True)


def test_reliability_weights_file_changed_after_save_is_refused(tiny_model, tmp_path):
    from ltzoo.files import write_safetensors

    ltzoo.save_pretrained(tiny_model, tmp_path)
    other = ltzoo.create_model("resnet32", num_classes=3)
    write_safetensors(other.state_dict(), tmp_path / "model.safetensors")  # same shapes, other weights
    with pytest.raises(ValueError, match=r"model\.safetensors does not match ltzoo_manifest\.json"):
        ltzoo.create_model(f"local-dir:{tmp_path}", pretrained=True)


def test_reliability_offline_hub_miss_names_repo_file_and_remedy(offline):
    from huggingface_hub.errors import LocalEntryNotFoundError

    with pytest.raises(LocalEntryNotFoundError, match=r"(?s)'config\.json' of Hugging Face Hub repository "
                                                      r"'nobody/missing'.*HF_HUB_OFFLINE.*local-dir:"):
        ltzoo.create_model("hf-hub:nobody/missing")


def test_reliability_bad_tag_repo_id_and_in_chans(tiny_model, tmp_path, monkeypatch):
    for tag in ("../../x", "a/b", ".hidden", "a..b"):
        with pytest.raises(ValueError, match="tag may hold only letters"):
            ltzoo.save_pretrained(tiny_model, tmp_path, tag=tag)
    monkeypatch.setenv("LTZOO_HUB_ORG", "../evil")
    with pytest.raises(ValueError, match=r"repository id derived from \$LTZOO_HUB_ORG .* got '\.\./evil/resnet32\.x'"):
        ltzoo.save_pretrained(tiny_model, tmp_path, tag="x")
    assert not (tmp_path / "model.safetensors").exists()
    for bad in (0, -1, 2.5, 10**6):
        with pytest.raises(ValueError, match=r"in_chans must be an integer in \[1, 1024\]"):
            ltzoo.create_model("resnet32", in_chans=bad)
    with pytest.raises(ValueError, match="num_classes must be at most 1,000,000"):
        ltzoo.create_model("resnet32", num_classes=10**7)
    assert ltzoo.create_model("resnet32", in_chans=np.int64(1)).model_args["in_chans"] == 1
