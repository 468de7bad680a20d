"""Split-list (ImageNet-LT format) and image-folder data sets on tiny trees written here."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ltzoo.data import create_dataset, long_tailed_counts, read_split_list


def _write_png(path: Path, value: int, size=(40, 30), mode="RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.full((size[1], size[0], 3), value, dtype=np.uint8)
    img = Image.fromarray(arr)
    (img.convert(mode) if mode != "RGB" else img).save(path)


@pytest.fixture
def split_list_root(tmp_path):
    lines = ["# header comment", ""]
    for i in range(6):
        label = i % 3
        rel = f"images/class {label}/img_{i}.png"  # a space in the path on purpose
        _write_png(tmp_path / rel, 40 * i, mode="L" if i == 0 else "RGB")
        lines.append(f"{rel} {label}")
    (tmp_path / "ImageNet_LT_train.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "ImageNet_LT_val.txt").write_text("\n".join(lines[2:5]) + "\n")
    (tmp_path / "mylist.txt").write_text("\n".join(lines) + "\n")
    return tmp_path


def test_read_split_list(split_list_root):
    paths, labels = read_split_list(split_list_root / "mylist.txt")
    assert labels == [0, 1, 2, 0, 1, 2]
    assert paths[1] == "images/class 1/img_1.png"


def test_split_list_dataset(split_list_root):
    ds = create_dataset("split_list", root=split_list_root, list_file="mylist.txt", transform="none")
    assert len(ds) == 6 and ds.targets == [0, 1, 2, 0, 1, 2]
    assert ds.num_classes == 3 and ds.class_counts == [2, 2, 2]
    img, label = ds[0]  # grayscale PNG comes back as RGB
    assert img.mode == "RGB" and img.size == (40, 30) and label == 0
    ds = create_dataset("split_list", root=split_list_root, list_file=split_list_root / "mylist.txt",
                        image_size=32, split="val", num_classes=5)
    x, y = ds[4]
    assert x.shape == (3, 32, 32) and y == 1 and ds.num_classes == 5


def test_imagenet_lt_alias_defaults(split_list_root):
    train = create_dataset("imagenet_lt", root=split_list_root, transform="none")
    assert len(train) == 6 and train.num_classes == 1000
    val = create_dataset("imagenet_lt", root=split_list_root, split="val", transform="none")
    assert val.targets == [0, 1, 2]
    with pytest.raises(ValueError, match="list_file"):
        create_dataset("places_lt", root=split_list_root)
    with pytest.raises(ValueError, match="split"):
        create_dataset("inaturalist2018", root=split_list_root, split="test")


@pytest.mark.parametrize(
    "line, match",
    [("onlyonefield", r"bad\.txt:2"), ("a/b.png cat", r"bad\.txt:2: label"), ("a/b.png -1", r"bad\.txt:2")],
)
def test_split_list_malformed_lines(tmp_path, line, match):
    (tmp_path / "bad.txt").write_text(f"a/ok.png 0\n{line}\n")
    with pytest.raises(ValueError, match=match):
        create_dataset("split_list", root=tmp_path, list_file="bad.txt")


def test_split_list_bad_arguments(split_list_root, tmp_path):
    with pytest.raises(ValueError, match="list_file"):
        create_dataset("split_list", root=split_list_root)
    with pytest.raises(ValueError, match="root"):
        create_dataset("split_list", root=tmp_path / "missing", list_file="mylist.txt")
    with pytest.raises(ValueError, match="num_classes"):
        create_dataset("split_list", root=split_list_root, list_file="mylist.txt", num_classes=2)
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(ValueError, match="empty.txt"):
        create_dataset("split_list", root=tmp_path, list_file="empty.txt")


@pytest.fixture
def folder_root(tmp_path):
    for split, n in (("train", 8), ("test", 3)):
        for c, name in enumerate(["ant", "bee", "cat"]):
            for i in range(n):
                _write_png(tmp_path / split / name / f"{i:02d}.png", 10 * c + i, size=(12, 12))
    return tmp_path


def test_imagefolder_lt(folder_root):
    train = create_dataset("imagefolder_lt", root=folder_root, imb_ratio=4, transform="none")
    assert train.classes == ["ant", "bee", "cat"]
    assert train.class_counts == long_tailed_counts(8, 3, 4) == [8, 4, 2]
    # "first" keeps the first files of each class in sorted order
    kept = [Path(train.source.samples[i][0]).name for i in train.indices if train.source.targets[i] == 2]
    assert kept == ["00.png", "01.png"]
    img, label = train[len(train) - 1]
    assert label == 2 and np.asarray(img)[0, 0, 0] == 21
    full = create_dataset("imagefolder_lt", root=folder_root, transform="none")
    assert full.class_counts == [8, 8, 8]
    test = create_dataset("imagefolder_lt", root=folder_root, split="test", imb_ratio=4, image_size=16)
    assert test.class_counts == [3, 3, 3]
    x, _ = test[0]
    assert x.shape == (3, 16, 16) and x.dtype == torch.float32


def test_imagefolder_lt_bad_arguments(folder_root, tmp_path):
    with pytest.raises(ValueError, match="root"):
        create_dataset("imagefolder_lt", root=tmp_path / "nope")
    with pytest.raises(ValueError, match="root"):
        create_dataset("imagefolder_lt", root=folder_root, split="val")
    with pytest.raises(ValueError, match="root"):
        create_dataset("imagefolder_lt", root=None)
    with pytest.raises(ValueError, match="split"):
        create_dataset("imagefolder_lt", root=folder_root, split="dev")
    with pytest.raises(ValueError, match="download"):
        create_dataset("imagefolder_lt", root=folder_root, download=True)


def test_imagefolder_lt_class_too_small_for_profile(folder_root):
    for f in sorted((folder_root / "train" / "bee").iterdir())[3:]:
        f.unlink()
    # ratio 1 keeps the (unbalanced) tree as it is
    assert create_dataset("imagefolder_lt", root=folder_root, transform="none").class_counts == [8, 3, 8]
    # ratio 2 asks for 8, 5, 4 images, but "bee" (class 1) has 3
    with pytest.raises(ValueError, match="counts.*class 1"):
        create_dataset("imagefolder_lt", root=folder_root, imb_ratio=2)


def test_reliability_weights_and_checkpoints_get_the_umask_mode(tmp_path):
    import os

    import torch

    from ltzoo.engine.checkpoint import save_checkpoint
    from ltzoo.files import write_bytes_atomic, write_safetensors

    old = os.umask(0o027)
    try:
        write_safetensors({"w": torch.zeros(2)}, tmp_path / "model.safetensors")
        write_bytes_atomic(tmp_path / "config.json", b"{}")
        save_checkpoint(tmp_path / "last.pt", {"a": 1})
    finally:
        os.umask(old)
    assert {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()} == {
        "model.safetensors": 0o640, "config.json": 0o640, "last.pt": 0o640}


def test_reliability_stale_temp_files_of_dead_processes_are_cleaned(tmp_path):
    import os
    import subprocess
    import sys

    from ltzoo.files import TEMP_PREFIX, write_bytes_atomic

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    stale = tmp_path / f"{TEMP_PREFIX}{dead_pid}-abc-model.safetensors"
    live = tmp_path / f"{TEMP_PREFIX}{os.getppid()}-abc-model.safetensors"  # a running process's write
    other = tmp_path / ".model.safetensors.tmp"  # not ltzoo's naming: kept
    for p in (stale, live, other):
        p.write_bytes(b"partial")
    write_bytes_atomic(tmp_path / "config.json", b"{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["config.json", live.name, other.name])


def test_reliability_weights_and_checkpoints_are_fsynced_before_the_rename(tmp_path, monkeypatch):
    import os

    import torch

    from ltzoo.engine.checkpoint import save_checkpoint
    from ltzoo.files import write_safetensors

    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
                        or real_fsync(fd))
    monkeypatch.setattr(os, "replace", lambda a, b: events.append(("replace", str(a))) or real_replace(a, b))
    write_safetensors({"w": torch.zeros(2)}, tmp_path / "model.safetensors")
    save_checkpoint(tmp_path / "last.pt", {"a": 1})
    assert [kind for kind, _ in events] == ["fsync", "replace", "fsync", "replace"]
    assert events[0][1] == events[1][1] and events[2][1] == events[3][1]  # the same temporary file, synced first
