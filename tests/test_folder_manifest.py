"""A folder write is consistent or refused: staged files, marker, stale-file removal, manifest last."""
import hashlib
import json

import pytest

from ltzoo.folder_manifest import MANIFEST_NAME, SAVING_MARKER, check_folder, write_folder


def _write(data):
    return lambda path: path.write_bytes(data)


def test_reliability_manifest_records_sha256_and_removes_only_stale_own_files(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")  # not written by ltzoo: never touched
    write_folder(tmp_path, {"a.json": _write(b"1"), "plot.png": _write(b"png")})
    write_folder(tmp_path, {"a.json": _write(b"2")})  # the re-save has no plot
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", MANIFEST_NAME, "notes.txt"]
    manifest = json.loads((tmp_path / MANIFEST_NAME).read_text())
    assert manifest["files"] == {"a.json": hashlib.sha256(b"2").hexdigest()}
    assert (tmp_path / "notes.txt").read_text() == "mine"
    check_folder(tmp_path)


def test_reliability_failed_staging_leaves_the_folder_unchanged(tmp_path):
    write_folder(tmp_path, {"a.json": _write(b"1")})
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def broken(path):
        path.write_bytes(b"partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_folder(tmp_path, {"a.json": _write(b"2"), "b.json": broken})
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_reliability_interrupted_or_altered_folder_is_refused_naming_it(tmp_path):
    write_folder(tmp_path, {"a.json": _write(b"1")})
    (tmp_path / "a.json").write_bytes(b"changed")
    with pytest.raises(ValueError, match=r"a\.json does not match ltzoo_manifest\.json"):
        check_folder(tmp_path)
    (tmp_path / SAVING_MARKER).write_text("")
    with pytest.raises(ValueError, match=f"{tmp_path}.*interrupted"):
        check_folder(tmp_path)
