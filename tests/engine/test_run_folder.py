"""The run folder guard: another run is refused unless --resume / --overwrite; overwrite removes only ltzoo's files."""
import pytest

from ltzoo.engine.run_folder import check_writable_folder, prepare_output_dir
from ltzoo.folder_manifest import write_folder


def _old_run(folder):
    folder.mkdir()
    for name in ("last.pt", "log.json", "metrics.json"):
        (folder / name).write_bytes(b"old " + name.encode())
    write_folder(folder / "model", {"config.json": lambda p: p.write_bytes(b"{}")})
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_reliability_existing_run_is_refused_and_left_unchanged(tmp_path):
    before = _old_run(tmp_path / "run")
    with pytest.raises(ValueError, match=r"output_dir .*run' is not empty .*last\.pt.*--resume.*--overwrite"):
        prepare_output_dir(tmp_path / "run")
    assert {p.relative_to(tmp_path / "run").as_posix(): p.read_bytes()
            for p in (tmp_path / "run").rglob("*") if p.is_file()} == before
    assert prepare_output_dir(tmp_path / "run", resume=True) == tmp_path / "run"  # resume keeps it
    assert {p.relative_to(tmp_path / "run").as_posix() for p in (tmp_path / "run").rglob("*") if p.is_file()} == set(before)


def test_reliability_overwrite_removes_only_ltzoo_files_and_refuses_foreign_ones(tmp_path):
    _old_run(tmp_path / "run")
    (tmp_path / "run" / "thesis.tex").write_text("not ltzoo's")
    with pytest.raises(ValueError, match=r"holds files ltzoo did not write \(thesis\.tex\)"):
        prepare_output_dir(tmp_path / "run", overwrite=True)
    assert (tmp_path / "run" / "last.pt").read_bytes() == b"old last.pt"  # nothing removed on refusal
    (tmp_path / "run" / "thesis.tex").unlink()
    prepare_output_dir(tmp_path / "run", overwrite=True)
    assert list((tmp_path / "run").iterdir()) == []
    with pytest.raises(ValueError, match="resume and overwrite exclude each other"):
        prepare_output_dir(tmp_path / "run", resume=True, overwrite=True)


def test_reliability_output_dir_that_is_a_file_or_unwritable_is_refused(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(ValueError, match=r"output_dir .*f' is a file, not a folder"):
        prepare_output_dir(tmp_path / "f")
    with pytest.raises(ValueError, match=r"output_dir .*f/sub' is not writable"):  # its parent is a file
        check_writable_folder(tmp_path / "f" / "sub")
