import random

import numpy as np
import pytest
import torch

from ltzoo.engine.checkpoint import capture_rng_state, load_checkpoint, restore_rng_state, save_checkpoint, write_atomic


def _draws():
    return torch.rand(3).tolist(), np.random.rand(3).tolist(), [random.random() for _ in range(3)]


def test_rng_state_round_trip_through_weights_only_file(tmp_path):
    torch.manual_seed(1), np.random.seed(2), random.seed(3)
    np.random.randn()  # leave a cached gaussian in numpy's state
    save_checkpoint(tmp_path / "rng.pt", {"rng": capture_rng_state()})
    expected = _draws()
    _draws()
    restore_rng_state(load_checkpoint(tmp_path / "rng.pt")["rng"])  # weights_only=True inside
    assert _draws() == expected


def test_save_is_atomic_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "ck" / "last.pt"
    save_checkpoint(path, {"a": torch.ones(2)})

    class Boom:
        def __reduce__(self):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        save_checkpoint(path, {"a": Boom()})
    assert torch.equal(load_checkpoint(path)["a"], torch.ones(2))  # the old checkpoint survives
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.pt"]


def test_load_refuses_pickled_objects(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"obj": object()}, path)
    with pytest.raises(Exception, match="(?i)weights_only|unsupported|global"):
        load_checkpoint(path)


def test_write_atomic_and_missing_file(tmp_path):
    write_atomic(tmp_path / "x.json", b"[]")
    assert (tmp_path / "x.json").read_bytes() == b"[]"
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "nope.pt")
