"""timm backbone weights load through the safetensors-only path (a pre-seeded local file, no network)."""
import pytest
import timm
import torch

from ltzoo.backbones.timm_backbones import TimmBackbone
from ltzoo.files import write_safetensors


def test_timm_weights_load_from_safetensors_and_drop_the_classifier(tmp_path, monkeypatch):
    reference = timm.create_model("resnet50", num_classes=1000)
    path = tmp_path / "model.safetensors"
    write_safetensors({k: v.contiguous() for k, v in reference.state_dict().items()}, path)
    seen = {}

    def fake_hub_file(repo_id, filename, cache_dir=None, **kw):
        seen["repo"], seen["file"] = repo_id, filename
        return path

    monkeypatch.setattr("ltzoo.download.hub_file", fake_hub_file)
    backbone = TimmBackbone("resnet50", pretrained=True).eval()
    assert seen["file"] == "model.safetensors" and seen["repo"].startswith("timm/resnet50")
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(backbone.forward_features(x), reference.eval().forward_features(x), atol=1e-5)


def test_pickled_timm_weights_are_refused(tmp_path, monkeypatch):
    path = tmp_path / "model.safetensors"
    torch.save({"conv1.weight": torch.zeros(1)}, path)  # a zip/pickle file under a safetensors name
    monkeypatch.setattr("ltzoo.download.hub_file", lambda *a, **k: path)
    with pytest.raises(ValueError, match="unpickle|safetensors"):
        TimmBackbone("resnet50", pretrained=True)
