"""A catalogue of bad inputs, faults and hostile files, tried against ltzoo; outcome counts per family.

Each case is something a careless or hostile user could do. Its outcome is "clear error" when
ltzoo raises the expected error type (ValueError / TypeError / FileNotFoundError / the Hub's
LocalEntryNotFoundError, or the CLI's one ``ltzoo: error:`` line with exit status 2) with a
message naming the argument or file, and, where the case says so, nothing on disk changed;
"handled" when the input is legitimate and gives the right result (numpy scalars, a batch of
one); anything else (silent success, a trace of another type, an unnamed message, files
changed) is a "bad outcome". Families follow the reliability section of the README.

    python -m benchmarks.bench_reliability [--only FAMILY] [--verbose]

Writes ``benchmarks/results/reliability.json``.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from benchmarks._common import write_result

CASES: list[tuple[str, str, Callable[[Path], str | None]]] = []  # (family, case, run(tmp) -> None | why bad)


def case(family: str, name: str):
    def deco(fn):
        CASES.append((family, name, fn))
        return fn
    return deco


def raises(fn: Callable[[], Any], types: tuple[type[BaseException], ...], *needles: str) -> str | None:
    """None if ``fn()`` raises one of ``types`` with every needle in its message, else why not."""
    try:
        fn()
    except types as e:
        missing = [n for n in needles if n not in str(e)]
        return f"message lacks {missing}: {str(e)[:200]}" if missing else None
    except BaseException as e:  # noqa: BLE001 - classifying every outcome is the point
        return f"{type(e).__name__}: {str(e)[:200]}"
    return "no error"


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def cli(args: list[str]) -> tuple[int, str]:
    from ltzoo.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = main(args)
        except SystemExit as e:  # argparse
            rc = e.code
        except BaseException as e:  # noqa: BLE001
            return -1, f"{type(e).__name__} raised: {e}"
    return rc, err.getvalue()


def cli_error(args: list[str], *needles: str) -> str | None:
    rc, err = cli(args)
    lines = [line for line in err.strip().splitlines() if line]
    if rc != 2 or len(lines) != 1 or not lines[0].startswith("ltzoo: error: "):
        return f"rc={rc}, stderr={err[-300:]!r}"
    missing = [n for n in needles if n not in lines[0]]
    return f"message lacks {missing}: {lines[0][:200]}" if missing else None


TINY = ["--data", "digits", "--imb-ratio", "20", "--data-args", '{"image_size": 16}', "--model", "small_cnn",
        "--batch-size", "64", "--num-threads", "1", "--device", "cpu", "--no-progress", "--epochs", "1",
        "--set", "warmup_epochs=0", "--set", "save_model=false"]
_RUN: dict[str, Path] = {}


def trained_run(tmp: Path) -> Path:
    """A tiny finished run folder (made once; cases copy it when they may change it)."""
    if "run" not in _RUN:
        base = Path(tempfile.mkdtemp(prefix="ltzoo-rel-run-"))
        rc, err = cli(["train", *TINY, "--output-dir", str(base / "run")])
        assert rc == 0, err
        _RUN["run"] = base / "run"
    return _RUN["run"]


def tiny_model(seed: int = 0):
    import ltzoo

    torch.manual_seed(seed)
    return ltzoo.create_model("resnet32", num_classes=3).eval()


# ------------------------------------------------------------------ 1. run folders
for _flags in ([], ["--overwrite"]):
    @case("1 run folder reused", f"train into a finished run {' '.join(_flags) or '(no flag)'} + foreign file")
    def _reuse(tmp, _flags=_flags):
        import shutil

        run = tmp / "run"
        shutil.copytree(trained_run(tmp), run)
        (run / "notes.txt").write_text("user file")
        before = snapshot(run)
        why = cli_error(["train", *TINY, "--output-dir", str(run), *_flags], str(run))
        return why or (None if snapshot(run) == before else "files changed")


@case("1 run folder reused", "--resume together with --overwrite")
def _both(tmp):
    return cli_error(["train", *TINY, "--output-dir", str(tmp / "r"), "--resume", "--overwrite"], "exclude each other")


@case("1 run folder reused", "--overwrite on a plain run removes only ltzoo's files")
def _overwrite_ok(tmp):
    from ltzoo.engine.run_folder import prepare_output_dir

    import shutil

    run = tmp / "run"
    shutil.copytree(trained_run(tmp), run)
    prepare_output_dir(run, overwrite=True)
    return None if list(run.iterdir()) == [] else f"left {[p.name for p in run.iterdir()]}"


# ------------------------------------------------------------------ 2. caches
@case("2 stale caches", "feature cache written by another model")
def _features(tmp):
    from ltzoo.engine.features import extract_features

    data = torch.utils.data.TensorDataset(torch.randn(8, 4), torch.arange(8) % 2)
    a, b = torch.nn.Linear(4, 3), torch.nn.Linear(4, 3)
    extract_features(a, data, cache_path=tmp / "f.safetensors", progress=False)
    return raises(lambda: extract_features(b, data, cache_path=tmp / "f.safetensors", progress=False),
                  (ValueError,), "f.safetensors", "another model")


@case("2 stale caches", "feature cache with other labels, same size")
def _features_labels(tmp):
    from ltzoo.engine.features import extract_features

    a = torch.nn.Linear(4, 3)
    x = torch.randn(8, 4)
    extract_features(a, torch.utils.data.TensorDataset(x, torch.arange(8) % 2), cache_path=tmp / "f.safetensors",
                     progress=False)
    other = torch.utils.data.TensorDataset(x, torch.arange(8) % 2)
    other.targets = (np.arange(8) % 4).tolist()
    return raises(lambda: extract_features(a, other, cache_path=tmp / "f.safetensors", progress=False),
                  (ValueError,), "f.safetensors")


@case("2 stale caches", "cache keys differ for another source / setting")
def _keys(tmp):
    from ltzoo.cache_keys import cache_key

    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    ok = cache_key(a, s=1) != cache_key(b, s=1) and cache_key(a, s=1) != cache_key(a, s=2)
    return None if ok and cache_key(a, s=1) == cache_key(a.state_dict(), s=np.int64(1)) else "keys collide"


# ------------------------------------------------------------------ 3. merge --out
for _label, _inputs, _out in [("out is the first input's run folder", ("run/last.pt", "b.pt"), "run"),
                              ("out is inside an input folder", ("run", "b.pt"), "run/model"),
                              ("out is an input file", ("run/last.pt", "b.pt"), "b.pt")]:
    @case("3 merge overwrites input", _label)
    def _merge(tmp, _inputs=_inputs, _out=_out):
        import shutil

        shutil.copytree(trained_run(tmp), tmp / "run")
        shutil.copy(tmp / "run" / "last.pt", tmp / "b.pt")
        before = snapshot(tmp)
        why = cli_error(["merge", *[str(tmp / i) for i in _inputs], "--out", str(tmp / _out), "--no-eval"],
                        "would overwrite the input")
        return why or (None if snapshot(tmp) == before else "files changed")


# ------------------------------------------------------------------ 4. save_pretrained folders
@case("4 inconsistent saved folder", "interrupt between the renames and the manifest")
def _interrupt(tmp):
    import ltzoo
    import ltzoo.folder_manifest as fm

    ltzoo.save_pretrained(tiny_model(0), tmp)
    real = fm.finish_folder_write
    fm.finish_folder_write = lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt())
    try:
        ltzoo.save_pretrained(tiny_model(1), tmp)
    except KeyboardInterrupt:
        pass
    finally:
        fm.finish_folder_write = real
    return raises(lambda: ltzoo.create_model(f"local-dir:{tmp}", pretrained=True), (ValueError,), str(tmp),
                  "interrupted")


@case("4 inconsistent saved folder", "failure while staging leaves the old folder")
def _staging(tmp):
    import safetensors.torch

    import ltzoo

    ltzoo.save_pretrained(tiny_model(0), tmp)
    before = snapshot(tmp)
    real = safetensors.torch.save_file
    safetensors.torch.save_file = lambda *a, **k: (_ for _ in ()).throw(OSError("disk full"))
    try:
        why = raises(lambda: ltzoo.save_pretrained(tiny_model(1), tmp), (OSError,), "disk full")
    finally:
        safetensors.torch.save_file = real
    return why or (None if snapshot(tmp) == before else "files changed")


@case("4 inconsistent saved folder", "weights replaced after the save")
def _replaced(tmp):
    import ltzoo
    from ltzoo.files import write_safetensors

    ltzoo.save_pretrained(tiny_model(0), tmp)
    write_safetensors(tiny_model(1).state_dict(), tmp / "model.safetensors")
    return raises(lambda: ltzoo.create_model(f"local-dir:{tmp}", pretrained=True), (ValueError,),
                  "model.safetensors", "manifest")


@case("4 inconsistent saved folder", "re-save drops a stale plot, keeps a foreign file")
def _stale(tmp):
    import ltzoo

    ltzoo.save_pretrained(tiny_model(0), tmp, per_class=[90, 70, 50], class_counts=[100, 20, 5])
    (tmp / "mine.txt").write_text("x")
    ltzoo.save_pretrained(tiny_model(0), tmp)
    names = sorted(p.name for p in tmp.iterdir())
    want = ["README.md", "config.json", "ltzoo_manifest.json", "mine.txt", "model.safetensors"]
    return None if names == want else f"files {names}"


# ------------------------------------------------------------------ 5. modes, fsync, temp files
@case("5 file modes and temp files", "weights, config and checkpoint share the umask mode")
def _modes(tmp):
    from ltzoo.engine.checkpoint import save_checkpoint
    from ltzoo.files import write_bytes_atomic, write_safetensors

    old = os.umask(0o022)
    try:
        write_safetensors({"w": torch.zeros(1)}, tmp / "model.safetensors")
        write_bytes_atomic(tmp / "config.json", b"{}")
        save_checkpoint(tmp / "last.pt", {"a": 1})
    finally:
        os.umask(old)
    modes = {p.name: oct(p.stat().st_mode & 0o777) for p in tmp.iterdir()}
    return None if set(modes.values()) == {"0o644"} else f"modes {modes}"


@case("5 file modes and temp files", "a dead writer's temp file is removed on the next write")
def _temps(tmp):
    from ltzoo.files import TEMP_PREFIX, write_bytes_atomic

    pid = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                             text=True).stdout)
    (tmp / f"{TEMP_PREFIX}{pid}-x-last.pt").write_bytes(b"partial")
    write_bytes_atomic(tmp / "log.json", b"[]")
    return None if [p.name for p in tmp.iterdir()] == ["log.json"] else f"left {[p.name for p in tmp.iterdir()]}"


# ------------------------------------------------------------------ 6. config.json on load
_METRICS = {"dataset": "d", "split": "test", "top1": 50.0, "many": 60.0, "medium": 40.0, "few": None, "hmean": 45.0,
            "gmean": 47.5, "lowest": 30.0}
for _label, _edit, _needle in [
    ("metrics out of range", lambda c: c["pretrained_cfg"].update(metrics={**_METRICS, "top1": 150.0}), "top1"),
    ("metrics with a missing key", lambda c: c["pretrained_cfg"].update(metrics={"top1": 1.0}), "metrics"),
    ("class_counts of the wrong length", lambda c: c["pretrained_cfg"].update(class_counts=[1, 2]), "class_counts"),
    ("negative class_counts", lambda c: c["pretrained_cfg"].update(class_counts=[1, -2, 3]), "class_counts"),
    ("mean of the wrong length", lambda c: c["pretrained_cfg"].update(mean=[0.5, 0.5]), "mean"),
    ("std of zero", lambda c: c["pretrained_cfg"].update(std=[0.0, 1.0, 1.0]), "std"),
    ("num_classes absurdly large", lambda c: c.update(num_classes=10**9), "num_classes"),
    ("num_classes negative", lambda c: c.update(num_classes=-3), "num_classes"),
    ("per_class of the wrong length", lambda c: c["pretrained_cfg"].update(per_class_top1=[1.0],
                                                                           class_counts=[1, 2, 3]), "per_class"),
    ("groups beyond num_classes", lambda c: c["pretrained_cfg"].update(
        groups={"ranges": {"many": [0, 0], "medium": [1, 1], "few": [2, 9]}}), "few"),
    ("input_size absurdly large", lambda c: c["pretrained_cfg"].update(input_size=[3, 10**6, 10**6]), "input_size"),
    ("config.json not JSON", None, "not valid JSON"),
]:
    @case("6 config.json on load", _label)
    def _cfg(tmp, _edit=_edit, _needle=_needle):
        import ltzoo

        ltzoo.save_pretrained(tiny_model(), tmp)
        (tmp / "ltzoo_manifest.json").unlink()  # a hand-made folder: the config's own checks must catch it
        if _edit is None:
            (tmp / "config.json").write_text("{not json")
        else:
            config = json.loads((tmp / "config.json").read_text())
            _edit(config)
            (tmp / "config.json").write_text(json.dumps(config))
        return raises(lambda: ltzoo.create_model(f"local-dir:{tmp}", pretrained=True), (ValueError,), str(tmp),
                      _needle)


# ------------------------------------------------------------------ 7. NaN / inf / empty
@case("7 NaN, inf, empty batch", "metrics.evaluate on NaN logits")
def _nan_eval(tmp):
    from torch.utils.data import DataLoader, TensorDataset

    from ltzoo.metrics import evaluate

    model = torch.nn.Sequential(torch.nn.Linear(2, 3))
    with torch.no_grad():
        model[0].bias[0] = float("nan")
    loader = DataLoader(TensorDataset(torch.zeros(4, 2), torch.tensor([0, 1, 2, 0])), batch_size=2)
    return raises(lambda: evaluate(model, loader, [10, 5, 1]), (ValueError,), "NaN")


for _bad in ("nan", "inf"):
    @case("7 NaN, inf, empty batch", f"loaded weights containing {_bad}")
    def _nan_weights(tmp, _bad=_bad):
        import ltzoo
        from ltzoo.files import write_safetensors

        model = tiny_model()
        ltzoo.save_pretrained(model, tmp)
        state = dict(model.state_dict())
        state["head.fc.bias"] = torch.tensor([0.0, float(_bad), 1.0])
        write_safetensors(state, tmp / "model.safetensors")
        return raises(lambda: ltzoo.create_model(f"local-dir:{tmp}", pretrained=True), (ValueError,),
                      "head.fc.bias", "NaN")

for _label, _value in [("NaN", float("nan")), ("negative", -0.5), ("inf", float("inf"))]:
    @case("7 NaN, inf, empty batch", f"UDALLoss.update with {_label} probabilities")
    def _udal(tmp, _value=_value):
        from ltzoo.losses.udal import UDALLoss

        loss = UDALLoss([10, 5, 1], total_steps=4, mode="unsupervised")
        probs = torch.full((2, 3), 1 / 3)
        probs[0, 0] = _value
        return raises(lambda: loss.update(probs), (ValueError,), "probs")

for _name in ("ce", "logit_adjusted", "balanced_softmax", "class_balanced"):
    @case("7 NaN, inf, empty batch", f"empty batch to the {_name} loss (mean)")
    def _empty(tmp, _name=_name):
        import ltzoo

        loss = ltzoo.create_loss(_name, class_counts=[10, 5, 1])
        return raises(lambda: loss(torch.empty(0, 3), torch.empty(0, dtype=torch.long)), (ValueError,), "empty batch")


# ------------------------------------------------------------------ 8. missing checks / scalars
@case("8 missing checks, scalar types", "ltzoo eval --logit-adjust-tau -1")
def _tau(tmp):
    return cli_error(["eval", str(trained_run(tmp) / "last.pt"), "--logit-adjust-tau", "-1", "--no-plot"],
                     "logit_adjust_tau")


for _bad in (0, -1, 2.5):
    @case("8 missing checks, scalar types", f"in_chans={_bad}")
    def _chans(tmp, _bad=_bad):
        import ltzoo

        return raises(lambda: ltzoo.create_model("resnet32", in_chans=_bad), (ValueError,), "in_chans")

for _tag in ("../../x", "a/b", ".hidden", "a..b"):
    @case("8 missing checks, scalar types", f"tag={_tag!r}")
    def _tag_case(tmp, _tag=_tag):
        import ltzoo

        return raises(lambda: ltzoo.save_pretrained(tiny_model(), tmp / "m", tag=_tag), (ValueError,), "tag")


@case("8 missing checks, scalar types", "LTZOO_HUB_ORG='../evil' derived repo id")
def _org(tmp):
    import ltzoo

    os.environ["LTZOO_HUB_ORG"] = "../evil"
    try:
        return raises(lambda: ltzoo.save_pretrained(tiny_model(), tmp / "m", tag="x"), (ValueError,), "LTZOO_HUB_ORG")
    finally:
        del os.environ["LTZOO_HUB_ORG"]


for _label, _tau in [("np.float32", np.float32(1.0)), ("np.int64", np.int64(1)), ("0-d tensor", torch.tensor(1.0))]:
    @case("8 missing checks, scalar types", f"tau={_label}(1) accepted like 1.0")
    def _scalar(tmp, _tau=_tau):
        import ltzoo

        logits, y = torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
        a = ltzoo.create_loss("logit_adjusted", class_counts=[10, 5, 1], tau=_tau)(logits, y)
        b = ltzoo.create_loss("logit_adjusted", class_counts=[10, 5, 1], tau=1.0)(logits, y)
        return None if torch.allclose(a, b) else "different loss"


# ------------------------------------------------------------------ 9. split lists
for _line in ("../outside.png 0", "/etc/passwd 0", "a/../../x.png 1"):
    @case("9 split-list paths", f"list line {_line!r}")
    def _split(tmp, _line=_line):
        from ltzoo.data import create_dataset

        (tmp / "list.txt").write_text(f"a.png 0\n{_line}\n")
        return raises(lambda: create_dataset("split_list", root=str(tmp), split="test", list_file="list.txt"),
                      (ValueError,), "list.txt", "outside root")


# ------------------------------------------------------------------ 10. validated before the first step
@case("10 late validation", "output dir is a file")
def _outfile(tmp):
    (tmp / "f").write_text("x")
    return cli_error(["train", *TINY, "--output-dir", str(tmp / "f")], str(tmp / "f"), "is a file")


@case("10 late validation", "output dir under a file")
def _outunder(tmp):
    (tmp / "f").write_text("x")
    return cli_error(["train", *TINY, "--output-dir", str(tmp / "f" / "run")], "not writable")


for _ranges, _needle in [('{"many": [0, 2], "medium": [3, 6], "few": [7, 50]}', "few"),
                         ('{"many": [0, 5], "medium": [3, 6], "few": [7, 9]}', "overlaps")]:
    @case("10 late validation", f"group ranges {_ranges}")
    def _groups(tmp, _ranges=_ranges, _needle=_needle):
        why = cli_error(["train", *TINY, "--group-ranges", _ranges, "--output-dir", str(tmp / "r")], _needle)
        return why or (None if not (tmp / "r").exists() else "run folder created")


@case("10 late validation", "few threshold above many threshold")
def _thresholds(tmp):
    return cli_error(["train", *TINY, "--many-threshold", "5", "--few-threshold", "50", "--output-dir",
                      str(tmp / "r")], "threshold")


for _flag, _value, _field in [("--model", "resnet32", "model"), ("--head", "etf", "head"),
                              ("--loss", "logit_adjusted", "loss")]:
    @case("10 late validation", f"resume with another {_field}")
    def _resume(tmp, _flag=_flag, _value=_value, _field=_field):
        import shutil

        run = tmp / "run"
        shutil.copytree(trained_run(tmp), run)
        args = [*TINY, _flag, _value] if _flag not in TINY else [v if v != "small_cnn" else _value for v in TINY]
        return cli_error(["train", *args, "--output-dir", str(run), "--resume"], f"its {_field} is")


# ------------------------------------------------------------------ 11. BatchNorm1d heads on a batch of one
for _head in ("etf", "ms_wetf"):
    @case("11 batch of one", f"{_head} head, training batch of 1")
    def _bn1(tmp, _head=_head):
        import ltzoo

        model = ltzoo.create_model("resnet32", head=_head, num_classes=3, **(
            {"head_args": {"feature_norm": True}} if _head == "ms_wetf" else {})).train()
        try:
            out = model(torch.randn(1, 3, 32, 32))
        except Exception as e:  # noqa: BLE001
            return f"{type(e).__name__}: {e}"
        return None if out.shape == (1, 3) and bool(out.isfinite().all()) else "bad output"


# ------------------------------------------------------------------ 12. messages
for _content, _needle in [(b"", "is empty"), (b"PK\x03\x04trunc", "cannot be read"),
                          (b"\x93NUMPY\x01\x00", "not a torch.save file")]:
    @case("12 clear messages", f"last.pt starting {_content[:6]!r}")
    def _lastpt(tmp, _content=_content, _needle=_needle):
        (tmp / "last.pt").write_bytes(_content)
        return cli_error(["eval", str(tmp / "last.pt"), "--no-plot"], str(tmp / "last.pt"), _needle)


@case("12 clear messages", "last.pt holding a pickled object")
def _evil(tmp):
    torch.save({"x": argparse.Namespace(a=1)}, tmp / "last.pt")  # a class weights_only loading refuses
    return cli_error(["eval", str(tmp / "last.pt"), "--no-plot"], str(tmp / "last.pt"), "weights_only")


@case("12 clear messages", "offline Hub miss")
def _offline(tmp):
    from huggingface_hub import constants
    from huggingface_hub.errors import LocalEntryNotFoundError

    import ltzoo

    old, os.environ["HF_HOME"] = os.environ.get("HF_HOME"), str(tmp)
    prev = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        return raises(lambda: ltzoo.create_model("hf-hub:nobody/missing"), (LocalEntryNotFoundError,),
                      "nobody/missing", "config.json", "HF_HUB_OFFLINE", "local-dir:")
    finally:
        constants.HF_HUB_OFFLINE = prev
        if old is None:
            os.environ.pop("HF_HOME", None)
        else:
            os.environ["HF_HOME"] = old


for _role, _plural in [("loss", "losses"), ("mixer", "mixers"), ("head", "heads"), ("sampler", "samplers")]:
    @case("12 clear messages", f"unknown {_role} name")
    def _registry(tmp, _role=_role, _plural=_plural):
        import ltzoo

        make = {"loss": lambda: ltzoo.create_loss("nope", class_counts=[1, 2]),
                "mixer": lambda: ltzoo.create_mixer("nope"),
                "head": lambda: ltzoo.create_model("resnet32", head="nope"),
                "sampler": lambda: ltzoo.create_sampler("nope", labels=[0, 1])}[_role]
        return raises(make, (ValueError,), f"Registered {_plural}:")


@case("12 clear messages", "CLI user error prints one line, exit 2")
def _oneline(tmp):
    return cli_error(["eval", str(tmp / "missing")], str(tmp / "missing"))


# ------------------------------------------------------------------ 13. sizes capped
for _n in (10**7, 10**12):
    @case("13 sizes capped", f"num_classes={_n:.0e}")
    def _ncls(tmp, _n=_n):
        import ltzoo

        return raises(lambda: ltzoo.create_model("resnet32", num_classes=_n), (ValueError,), "num_classes",
                      "1,000,000")


@case("13 sizes capped", "split-list label 5e6")
def _label_cap(tmp):
    from ltzoo.data import create_dataset

    (tmp / "list.txt").write_text("a.png 0\nb.png 5000000\n")
    return raises(lambda: create_dataset("split_list", root=str(tmp), split="test", list_file="list.txt"),
                  (ValueError,), "1,000,000")


@case("13 sizes capped", "loss targets >= num_classes")
def _targets(tmp):
    import ltzoo

    loss = ltzoo.create_loss("ce", class_counts=[1, 2, 3])
    return raises(lambda: loss(torch.randn(2, 3), torch.tensor([0, 7])), (ValueError,), "target")


# ------------------------------------------------------------------ 14. hostile downloaded configs
for _args, _key in [({"checkpoint_path": "/tmp/evil.pt"}, "checkpoint_path"), ({"pretrained": True}, "pretrained"),
                    ({"pretrained_cfg_overlay": {"file": "/tmp/evil.pt"}}, "pretrained_cfg_overlay"),
                    ({"drop_path_rate": "/tmp/x"}, "drop_path_rate")]:
    for _via in ("ltzoo", "timm"):
        @case("14 hostile configs", f"backbone_args {sorted(_args)} via {_via}.create_model")
        def _hostile(tmp, _args=_args, _key=_key, _via=_via):
            return _hostile_config(tmp, lambda c: (c.update(architecture="ltzoo_resnet50"),
                                                   c["model_args"].update(backbone_args=_args)), _key, _via)

for _field in ("custom_load", "hf_hub_filename_evil", "state_dict_url"):
    @case("14 hostile configs", f"pretrained_cfg field {_field!r}")
    def _cfg_field(tmp, _field=_field):
        return _hostile_config(tmp, lambda c: c["pretrained_cfg"].update({_field: "x"}), _field, "ltzoo",
                               allow_drop=_field == "custom_load")


def _hostile_config(tmp: Path, edit: Callable[[dict], Any], needle: str, via: str, allow_drop: bool = False):
    """Seed a hostile repo in an offline Hub cache and load it; refused before any torch.load."""
    import hashlib

    import timm
    from huggingface_hub import constants

    import ltzoo

    folder = tmp / "m"
    ltzoo.save_pretrained(tiny_model(), folder)
    config = json.loads((folder / "config.json").read_text())
    edit(config)
    (folder / "config.json").write_text(json.dumps(config))
    cache = tmp / "hub"
    repo = cache / "models--evil--m"
    files = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    commit = hashlib.sha1(b"".join(files.values())).hexdigest()
    (repo / "refs").mkdir(parents=True)
    (repo / "blobs").mkdir()
    (repo / "snapshots" / commit).mkdir(parents=True)
    for name, data in files.items():
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        os.symlink(os.path.relpath(blob, repo / "snapshots" / commit), repo / "snapshots" / commit / name)
    (repo / "refs" / "main").write_text(commit)
    real_load, loads = torch.load, []
    torch.load = lambda *a, **k: loads.append(a) or real_load(*a, **k)
    prev = (constants.HF_HUB_OFFLINE, constants.HF_HUB_CACHE)
    constants.HF_HUB_OFFLINE, constants.HF_HUB_CACHE = True, str(cache)
    try:
        make = (lambda: ltzoo.create_model("hf-hub:evil/m", pretrained=True, cache_dir=str(cache))) if via == "ltzoo" \
            else (lambda: timm.create_model("hf-hub:evil/m", pretrained=True, cache_dir=str(cache)))
        if allow_drop:  # weight-location fields are dropped, never used: loading the real weights is right
            try:
                make()
            except ValueError as e:
                return None if needle in str(e) else str(e)[:200]
            return None if not loads else "torch.load called"
        why = raises(make, (ValueError,), needle)
        return why or (None if not loads else "torch.load called")
    finally:
        torch.load = real_load
        constants.HF_HUB_OFFLINE, constants.HF_HUB_CACHE = prev


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=None, help="run the families whose name starts with this")
    parser.add_argument("--verbose", action="store_true", help="print every case")
    args = parser.parse_args()
    torch.set_num_threads(1)
    families: dict[str, dict[str, Any]] = {}
    start = time.perf_counter()
    for family, name, run in CASES:
        if args.only and not family.startswith(args.only):
            continue
        with tempfile.TemporaryDirectory(prefix="ltzoo-rel-") as tmp:
            try:
                why = run(Path(tmp))
            except BaseException as e:  # noqa: BLE001 - a case that crashes is a bad outcome
                why = f"case crashed: {type(e).__name__}: {str(e)[:200]}"
        fam = families.setdefault(family, {"tried": 0, "clear_error_or_handled": 0, "bad_outcome": 0, "bad": []})
        fam["tried"] += 1
        if why is None:
            fam["clear_error_or_handled"] += 1
        else:
            fam["bad_outcome"] += 1
            fam["bad"].append({"case": name, "outcome": why})
        if args.verbose or why is not None:
            print(f"[{'ok ' if why is None else 'BAD'}] {family}: {name}" + ("" if why is None else f" -> {why}"))
    tried = sum(f["tried"] for f in families.values())
    good = sum(f["clear_error_or_handled"] for f in families.values())
    totals = {"tried": tried, "clear_error_or_handled": good, "bad_outcome": tried - good,
              "clear_share_percent": round(100.0 * good / max(tried, 1), 1)}
    print(json.dumps(totals))
    if not args.only:
        path = write_result("reliability", {"totals": totals, "families": families,
                                            "wall_s": round(time.perf_counter() - start, 1),
                                            "note": "measured on 2 CPU cores; each case in a fresh temporary folder"})
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
