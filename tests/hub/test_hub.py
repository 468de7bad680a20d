"""Download through the real huggingface_hub code: seeded cache offline, local fallback, push round trips."""
import json

import pytest
import timm
import torch
from huggingface_hub.errors import LocalEntryNotFoundError

import ltzoo
from ltzoo.cli import main
from ltzoo.hub import MODEL_DIR_ENV, ORG_ENV, LocalCopyWarning
from ltzoo.models import LTModel

X = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
METRICS = {"dataset": "digits_lt", "split": "test", "top1": 50.0, "many": 60.0, "medium": 40.0, "few": None,
           "hmean": 45.0, "gmean": 47.5, "lowest": 30.0}


def test_hf_hub_id_loads_from_seeded_cache_in_offline_mode(tiny_model, tmp_path, seed_cache, offline):
    ltzoo.save_pretrained(tiny_model, tmp_path / "m")
    ltzoo.save_pretrained(ltzoo.create_model("resnet32", num_classes=3), tmp_path / "other")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    config["pretrained_cfg"]["file"] = str(tmp_path / "other")  # a repo's config must not redirect the weights
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    seed_cache("test-org/tiny", tmp_path / "m")
    expected = tiny_model(X)
    model = ltzoo.create_model("hf-hub:test-org/tiny", pretrained=True).eval()
    assert torch.equal(model(X), expected) and model.pretrained_cfg["hf_hub_id"] == "test-org/tiny"
    via_timm = timm.create_model("hf-hub:test-org/tiny", pretrained=True).eval()
    assert isinstance(via_timm, LTModel) and torch.equal(via_timm(X), expected)


def test_tag_resolves_to_org_repo_and_revision(tiny_model, tmp_path, seed_cache, offline, tag, monkeypatch):
    monkeypatch.setenv(ORG_ENV, "fork-org")
    ltzoo.save_pretrained(tiny_model, tmp_path / "m", tag=tag.split(".")[1])
    seed_cache(f"fork-org/{tag}", tmp_path / "m", revision="v1")
    with pytest.raises(LocalEntryNotFoundError):  # nothing cached for "main"
        ltzoo.create_model(tag, pretrained=True)
    model = ltzoo.create_model(tag, pretrained=True, revision="v1").eval()
    assert torch.equal(model(X), tiny_model(X))
    via_timm = timm.create_model(tag, pretrained=True, revision="v1").eval()
    assert isinstance(via_timm, LTModel) and torch.equal(via_timm(X), tiny_model(X))
    assert model.pretrained_cfg["metrics"]["top1"] == 81.5 and model.pretrained_cfg["class_counts"] == [100, 20, 5]


def test_unreachable_hub_falls_back_to_local_model_folder_with_warning(tiny_model, tmp_path, offline, tag,
                                                                       monkeypatch):
    ltzoo.save_pretrained(tiny_model, tmp_path / "models" / tag)
    with pytest.raises(LocalEntryNotFoundError, match=f"no local copy of {tag}"):
        ltzoo.create_model(tag, pretrained=True)
    monkeypatch.setenv(MODEL_DIR_ENV, str(tmp_path / "models"))
    with pytest.warns(LocalCopyWarning, match="could not reach the Hugging Face Hub.*loading the local copy"):
        model = ltzoo.create_model(tag, pretrained=True).eval()
    assert torch.equal(model(X), tiny_model(X))


def test_push_download_round_trip(tiny_model, hub):
    info = ltzoo.push_to_hub(tiny_model, "test-org/tiny", token="hf_test", private=True, tag="tiny",
                             metrics=METRICS, per_class=[70, 50, 30], class_counts=[100, 20, 5])
    assert info.oid == hub.repos["test-org/tiny"]["branches"]["main"] and hub.repos["test-org/tiny"]["private"]
    assert sorted(hub.files("test-org/tiny")) == ["README.md", "config.json", "model.safetensors",
                                                  "per_class_accuracy.png"]
    assert {r["authorization"] for r in hub.requests if r["method"] == "POST"} == {"Bearer hf_test"}
    model = ltzoo.create_model("hf-hub:test-org/tiny", pretrained=True).eval()
    assert torch.equal(model(X), tiny_model(X)) and model.pretrained_cfg["metrics"] == METRICS
    via_timm = timm.create_model("hf-hub:test-org/tiny", pretrained=True).eval()
    assert torch.equal(via_timm(X), tiny_model(X))
    card = hub.files("test-org/tiny")["README.md"].decode()
    assert "library_name: ltzoo" in card and 'ltzoo.create_model("hf-hub:test-org/tiny", pretrained=True)' in card


def test_cli_push_to_a_branch_and_download_by_revision(tiny_model, tmp_path, hub, capsys):
    ltzoo.save_pretrained(tiny_model, tmp_path / "m")  # no repo id yet: the pushed copy names the target
    assert main(["push", str(tmp_path / "m"), "test-org/cli", "--revision", "dev", "--private",
                 "--token", "hf_cli"]) == 0
    assert "pushed" in capsys.readouterr().out
    repo = hub.repos["test-org/cli"]
    assert repo["private"] and hub.files("test-org/cli") == {} and "model.safetensors" in hub.files("test-org/cli", "dev")
    config = json.loads(hub.files("test-org/cli", "dev")["config.json"])
    assert config["pretrained_cfg"]["hf_hub_id"] == "test-org/cli"
    assert "hf-hub:test-org/cli" in hub.files("test-org/cli", "dev")["README.md"].decode()
    assert "hf_hub_id" not in json.loads((tmp_path / "m" / "config.json").read_text())["pretrained_cfg"]
    for name, kw in (("hf-hub:test-org/cli@dev", {}), ("hf-hub:test-org/cli", {"revision": "dev"})):
        model = ltzoo.create_model(name, pretrained=True, **kw).eval()
        assert torch.equal(model(X), tiny_model(X))


def test_push_refuses_pickle_files_before_any_request(tiny_model, tmp_path, hub):
    ltzoo.save_pretrained(tiny_model, tmp_path)
    torch.save({"w": torch.zeros(1)}, tmp_path / "pytorch_model.bin")
    with pytest.raises(ValueError, match="refusing to push pickle weight files"):
        ltzoo.push_to_hub(tmp_path, "test-org/tiny")
    assert hub.requests == []
