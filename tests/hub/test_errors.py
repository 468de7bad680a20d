"""Clear errors: corrupted/truncated safetensors, pickle files, key mismatches, wrong architecture, missing repo."""
import json
import pickle

import pytest
import torch
from huggingface_hub import HfApi
from huggingface_hub.errors import RemoteEntryNotFoundError, RepositoryNotFoundError

import ltzoo
from ltzoo.files import write_safetensors


@pytest.fixture
def saved(tiny_model, tmp_path):
    ltzoo.save_pretrained(tiny_model, tmp_path)
    return tmp_path


@pytest.fixture
def no_unpickling(monkeypatch):
    """Fail the test if anything tries to unpickle."""
    def forbidden(*args, **kwargs):
        raise AssertionError("a weights file was unpickled")
    monkeypatch.setattr(torch, "load", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)


def _load(folder):
    return ltzoo.create_model(f"local-dir:{folder}", pretrained=True)


def test_truncated_safetensors_is_refused(saved):
    weights = saved / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(ValueError, match="is not a valid safetensors file.*truncated"):
        _load(saved)
    weights.write_bytes(b"\x07\x00")
    with pytest.raises(ValueError, match="is not a valid safetensors file"):
        _load(saved)


def test_corrupted_safetensors_header_is_refused(saved):
    weights = saved / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[8:12] = b"!!!!"
    weights.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="is not a valid safetensors file.*not JSON"):
        _load(saved)


def test_pickle_files_are_refused_never_unpickled(tiny_model, saved, no_unpickling):
    weights = saved / "model.safetensors"
    torch.save(tiny_model.state_dict(), weights)  # a zip/pickle file under the safetensors name
    with pytest.raises(ValueError, match="refusing to unpickle .*pickle"):
        _load(saved)
    weights.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ValueError, match="refusing to unpickle"):
        _load(saved)
    weights.rename(saved / "pytorch_model.bin")
    with pytest.raises(FileNotFoundError, match=r"refusing to unpickle \['pytorch_model.bin'\]"):
        _load(saved)
    with pytest.raises(ValueError, match="refusing to unpickle .*pytorch_model.bin: it is a pickle"):
        ltzoo.create_model("resnet32", num_classes=3, pretrained=True,
                           pretrained_cfg_overlay={"file": str(saved / "pytorch_model.bin")})
    write_safetensors(tiny_model.state_dict(), saved / "weights.pth")  # right content, pickle-style name
    with pytest.raises(ValueError, match="refusing to unpickle .*does not end in '.safetensors'"):
        ltzoo.create_model("resnet32", num_classes=3, pretrained=True,
                           pretrained_cfg_overlay={"file": str(saved / "weights.pth")})


def test_missing_and_unexpected_keys_are_named(tiny_model, saved):
    state = dict(tiny_model.state_dict())
    state.pop("head.fc.bias")
    state["extra.weight"] = torch.zeros(2)
    write_safetensors(state, saved / "model.safetensors")
    with pytest.raises(ValueError, match=r"missing keys: head\.fc\.bias; unexpected keys: extra\.weight"):
        _load(saved)
    state = dict(tiny_model.state_dict(), **{"head.fc.bias": torch.zeros(7)})
    write_safetensors(state, saved / "model.safetensors")
    with pytest.raises(ValueError, match=r"shape mismatches: head\.fc\.bias \(checkpoint \(7,\), model \(3,\)\)"):
        _load(saved)


def test_wrong_architecture_lists_close_matches(saved):
    config = json.loads((saved / "config.json").read_text())
    (saved / "config.json").write_text(json.dumps({**config, "architecture": "resnet33"}))
    with pytest.raises(ValueError, match="names architecture 'resnet33', which ltzoo does not know.*closest: resnet32"):
        _load(saved)
    (saved / "config.json").write_text(json.dumps({**config, "library_name": "timm"}))
    with pytest.raises(ValueError, match="is not an ltzoo checkpoint"):
        _load(saved)
    (saved / "config.json").write_text(json.dumps({**config, "model_args": {"head": "fc", "evil": 1}}))
    with pytest.raises(ValueError, match=r"unknown arguments \['evil'\]"):
        _load(saved)


def test_unknown_tag_and_missing_folder():
    with pytest.raises(ValueError, match="no pretrained weights named 'resnet32.nope'"):
        ltzoo.create_model("resnet32.nope", pretrained=True)
    with pytest.raises(FileNotFoundError, match="no config.json"):
        ltzoo.create_model("local-dir:/nonexistent/folder")


def test_missing_repo_names_the_repo(hub):
    with pytest.raises(RepositoryNotFoundError, match="no Hugging Face Hub repository 'test-org/absent'"):
        ltzoo.create_model("hf-hub:test-org/absent", pretrained=True)


def test_repo_with_only_pickle_weights_is_refused(saved, hub, no_unpickling):
    (saved / "model.safetensors").rename(saved / "pytorch_model.bin")
    api = HfApi()
    api.create_repo("test-org/pickled")
    api.upload_folder(repo_id="test-org/pickled", folder_path=saved)
    with pytest.raises(RemoteEntryNotFoundError, match="has no file 'model.safetensors'.*never unpickles"):
        ltzoo.create_model("hf-hub:test-org/pickled", pretrained=True)


def test_header_length_whose_low_byte_looks_like_pickle_is_still_valid(tmp_path):
    """A safetensors header length ending in byte 0x80 must not be mistaken for a pickle."""
    import torch

    from ltzoo.files import check_safetensors_file, read_safetensors, write_safetensors

    for width in range(1, 400):  # find a state dict whose header length has low byte 0x80
        path = tmp_path / f"w{width}.safetensors"
        write_safetensors({"weight": torch.zeros(width), "name_" + "x" * width: torch.ones(1)}, path)
        if path.read_bytes()[0] == 0x80:
            break
    else:
        raise AssertionError("no header length with low byte 0x80 found")
    check_safetensors_file(path)
    assert read_safetensors(path)["weight"].shape == (width,)
