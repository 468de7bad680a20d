"""The command line on bad input: one ``ltzoo: error:`` line naming the argument or file, exit status 2,
nothing on disk changed; ``--debug`` shows the trace."""

import pytest

from ltzoo.cli import main

TINY = ["--data", "digits", "--imb-ratio", "20", "--data-args", '{"image_size": 16}', "--model", "small_cnn",
        "--batch-size", "64", "--num-threads", "1", "--device", "cpu", "--no-progress", "--epochs", "1",
        "--set", "warmup_epochs=0", "--set", "save_model=false"]


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ltzoo: error: ") and "Traceback" not in err[0], err
    return err[0]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("cli_rel") / "run"
    assert main(["train", *TINY, "--output-dir", str(run)]) == 0
    return run


def test_reliability_train_into_another_run_is_refused_unless_resume_or_overwrite(trained_run, capsys):
    before = _files(trained_run)
    capsys.readouterr()
    assert main(["train", *TINY, "--output-dir", str(trained_run)]) == 2
    line = _error_line(capsys)
    assert f"output_dir {str(trained_run)!r} is not empty" in line and "--overwrite" in line
    assert _files(trained_run) == before
    (trained_run / "keep.txt").write_text("user file")
    assert main(["train", *TINY, "--output-dir", str(trained_run), "--overwrite"]) == 2
    assert "keep.txt" in _error_line(capsys) and _files(trained_run) == {**before, "keep.txt": b"user file"}
    (trained_run / "keep.txt").unlink()


def test_reliability_output_dir_that_is_a_file_fails_before_training(tmp_path, capsys):
    target = tmp_path / "out"
    target.write_text("a file")
    assert main(["train", *TINY, "--output-dir", str(target)]) == 2
    assert f"output_dir {str(target)!r} is a file" in _error_line(capsys) and target.read_text() == "a file"


def test_reliability_resume_with_another_model_names_the_field(trained_run, capsys):
    before = _files(trained_run)
    args = [a if a != "small_cnn" else "resnet32" for a in TINY]
    assert main(["train", *args, "--output-dir", str(trained_run), "--resume"]) == 2
    line = _error_line(capsys)
    assert "cannot resume from" in line and "its model is 'small_cnn' but this run's model is 'resnet32'" in line
    assert _files(trained_run) == before


@pytest.mark.parametrize("content, why", [(b"", "is empty"), (b"PK\x03\x04trunc", "cannot be read"),
                                          (b"\x93NUMPY", "not a torch.save file")])
def test_reliability_corrupt_last_pt_names_the_file(tmp_path, capsys, content, why):
    bad = tmp_path / "last.pt"
    bad.write_bytes(content)
    assert main(["eval", str(bad), "--no-plot"]) == 2
    line = _error_line(capsys)
    assert str(bad) in line and why in line


def test_reliability_debug_shows_the_trace(tmp_path):
    (tmp_path / "last.pt").write_bytes(b"")
    with pytest.raises(ValueError, match="is empty"):
        main(["--debug", "eval", str(tmp_path / "last.pt"), "--no-plot"])


def test_reliability_eval_negative_tau_is_refused(trained_run, capsys):
    before = _files(trained_run)
    assert main(["eval", str(trained_run / "last.pt"), "--logit-adjust-tau", "-1", "--no-plot"]) == 2
    assert "logit_adjust_tau (--logit-adjust-tau) must be >= 0" in _error_line(capsys)
    assert _files(trained_run) == before


def test_reliability_merge_out_onto_an_input_is_refused(trained_run, tmp_path, capsys):
    before = _files(trained_run)
    other = tmp_path / "other.pt"
    other.write_bytes((trained_run / "last.pt").read_bytes())
    cases = [(trained_run / "last.pt", trained_run), (trained_run, trained_run / "model"),  # out holds / is in an input
             (trained_run / "last.pt", tmp_path), (other, other)]
    for first, out in cases:
        assert main(["merge", str(first), str(other), "--out", str(out), "--no-eval"]) == 2
        assert f"out {str(out)!r} would overwrite the input" in _error_line(capsys)
    assert _files(trained_run) == before


def test_reliability_unknown_loss_message_reads_registered_losses(capsys):
    assert main(["train", *TINY, "--loss", "focall", "--output-dir", "/nonexistent-never-created"]) == 2
    line = _error_line(capsys)
    assert "Registered losses:" in line and "losss" not in line


def test_reliability_bad_group_ranges_fail_before_anything_is_written(tmp_path, capsys):
    out = tmp_path / "new_run"
    ranges = '{"many": [0, 2], "medium": [3, 6], "few": [7, 50]}'  # digits has 10 classes
    assert main(["train", *TINY, "--group-ranges", ranges, "--output-dir", str(out)]) == 2
    assert "50" in _error_line(capsys) and not out.exists()
