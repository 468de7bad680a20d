"""Cache keys: content hash of the source + canonical settings (independent hashlib computations)."""
import hashlib
import json

import numpy as np
import pytest
import torch

from ltzoo.cache_keys import KEY_LENGTH, cache_key, content_hash, key_matches


def test_reliability_cache_key_is_sha256_of_source_hash_and_sorted_settings(tmp_path):
    f = tmp_path / "w.bin"
    f.write_bytes(b"stage-1 weights")
    source = hashlib.sha256(b"stage-1 weights").hexdigest()
    payload = json.dumps({"source": source, "settings": {"a": 1, "b": [1, 2]}}, sort_keys=True, separators=(",", ":"))
    assert cache_key(f, b=[1, 2], a=1) == hashlib.sha256(payload.encode()).hexdigest()[:KEY_LENGTH]
    assert cache_key(f, a=1, b=[1, 2]) == cache_key(source, b=np.array([1, 2]), a=np.int64(1))


def test_reliability_cache_key_changes_with_model_content_and_settings():
    a, b = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    with torch.no_grad():
        b.weight.copy_(a.weight)
        b.bias.copy_(a.bias)
    assert content_hash(a) == content_hash(b)  # same content, different objects
    assert cache_key(a, seed=0) == cache_key(b.state_dict(), seed=0)
    with torch.no_grad():
        b.bias[0] += 1e-6
    assert cache_key(a, seed=0) != cache_key(b, seed=0)
    assert cache_key(a, seed=0) != cache_key(a, seed=1)


def test_reliability_cache_key_bad_source_names_the_argument(tmp_path):
    with pytest.raises(TypeError, match="cache source must be"):
        content_hash(3.0)
    with pytest.raises(FileNotFoundError, match="cache source .*missing.bin"):
        content_hash(tmp_path / "missing.bin")
    with pytest.raises(TypeError, match="cache setting 'settings.fn'"):
        cache_key(b"x", fn=object())
    assert key_matches({"ltzoo_cache_key": "abc"}, "abc") and not key_matches({}, "abc")
