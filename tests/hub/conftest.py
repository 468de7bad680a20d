"""Fixtures for the Hub tests: a fresh Hub cache per test, offline mode, the Hub test double, a tag."""
from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path

import pytest
import torch

import ltzoo
from ltzoo.hub import MODEL_DIR_ENV, ORG_ENV, register_pretrained, unregister_pretrained

_spec = importlib.util.spec_from_file_location("ltzoo_tests_hub_double", Path(__file__).with_name("hub_double.py"))
hub_double = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hub_double)

TAG = "resnet32.hubtest_tiny"
METRICS = {"dataset": "digits_lt", "split": "test", "top1": 81.5, "many": 92.0, "medium": None, "few": 60.25,
           "hmean": 70.0, "gmean": 74.5, "lowest": 55.0}


@pytest.fixture
def hub_env(tmp_path, monkeypatch):
    """A fresh HF_HOME and Hub cache; offline mode and Xet off; no token; no ltzoo org or model folder set."""
    from huggingface_hub import constants

    home = tmp_path / "hf_home"
    cache = home / "hub"
    for name, value in {"HF_HOME": home, "HF_HUB_CACHE": cache, "HF_TOKEN_PATH": home / "token",
                        "HF_STORED_TOKENS_PATH": home / "stored_tokens", "AGENT_HARNESSES_PATH": home / "agents.json",
                        "HF_HUB_OFFLINE": False, "HF_HUB_DISABLE_XET": True}.items():
        monkeypatch.setattr(constants, name, str(value) if isinstance(value, Path) else value)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    for var in ("HF_TOKEN", "HF_HUB_OFFLINE", ORG_ENV, MODEL_DIR_ENV):
        monkeypatch.delenv(var, raising=False)
    return cache


@pytest.fixture
def offline(hub_env, monkeypatch):
    """Hub offline mode on (HF_HUB_OFFLINE): huggingface_hub refuses every request."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return hub_env


@pytest.fixture
def hub(hub_env, monkeypatch):
    """The Hub test double on 127.0.0.1, with huggingface_hub's endpoint pointed at it."""
    from huggingface_hub import constants

    with hub_double.HubDouble() as double:
        monkeypatch.setattr(constants, "ENDPOINT", double.url)
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", double.url + "/{repo_id}/resolve/{revision}/{filename}")
        monkeypatch.setenv("HF_ENDPOINT", double.url)
        yield double


@pytest.fixture
def seed_cache(hub_env):
    """Put a folder's files in the Hub cache in the Hub's own layout; return the commit hash."""
    def seed(repo_id: str, folder: Path, revision: str = "main") -> str:
        repo_dir = Path(hub_env) / f"models--{repo_id.replace('/', '--')}"
        files = {p.name: p.read_bytes() for p in sorted(Path(folder).iterdir()) if p.is_file()}
        commit = hashlib.sha1(b"".join(files.values())).hexdigest()
        snapshot = repo_dir / "snapshots" / commit
        for sub in ("blobs", "refs"):
            (repo_dir / sub).mkdir(parents=True, exist_ok=True)
        snapshot.mkdir(parents=True)
        for name, data in files.items():
            blob = repo_dir / "blobs" / hashlib.sha256(data).hexdigest()
            blob.write_bytes(data)
            os.symlink(os.path.relpath(blob, snapshot), snapshot / name)
        (repo_dir / "refs" / revision).write_text(commit)
        return commit
    return seed


@pytest.fixture
def tiny_model():
    torch.manual_seed(0)
    return ltzoo.create_model("resnet32", num_classes=3).eval()


@pytest.fixture
def tag():
    """Register the weights TAG (3 classes) for one test, then remove them."""
    register_pretrained(TAG, num_classes=3, metrics=METRICS, class_counts=[100, 20, 5], recipe={"loss": "ce"},
                        paper={"title": "Test paper"})
    yield TAG
    unregister_pretrained(TAG)


@pytest.fixture(autouse=True)
def no_timm_weight_loading(monkeypatch):
    """ltzoo loads weights itself (safetensors only); timm's loaders, which may unpickle, must never run."""
    import timm.models._builder as builder

    def forbidden(*args, **kwargs):
        raise AssertionError("timm's weight loader was used")
    for name in ("load_pretrained", "load_state_dict_from_hf", "load_state_dict_from_path", "load_state_dict"):
        monkeypatch.setattr(builder, name, forbidden)
