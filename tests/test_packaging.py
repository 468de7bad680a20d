"""Packaging: the wheel ships the Apache-2.0 LICENSE and declares the license as an SPDX expression."""
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    pytest.importorskip("setuptools")
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "ltzoo", src / "ltzoo", ignore=shutil.ignore_patterns("__pycache__"))
    out = src / "dist"
    script = ("import sys, warnings; warnings.simplefilter('always'); from setuptools import build_meta; "
              "print(build_meta.build_wheel(sys.argv[1]))")
    result = subprocess.run([sys.executable, "-W", "always", "-c", script, str(out)], cwd=src, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return out / result.stdout.strip().splitlines()[-1], result.stdout + result.stderr


def test_fidelity_license_file_is_apache_2():
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    for section in range(1, 10):  # the nine numbered terms
        assert f"\n   {section}. " in text
    assert 'license = "Apache-2.0"' in (ROOT / "pyproject.toml").read_text()


def test_fidelity_wheel_ships_license_with_spdx_metadata(wheel):
    path, log = wheel
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        licenses = [n for n in names if n.endswith("LICENSE") and ".dist-info/" in n]
        assert licenses, names[-10:]
        assert zf.read(licenses[0]) == (ROOT / "LICENSE").read_bytes()
        meta = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "License-Expression: Apache-2.0" in meta
    assert "SetuptoolsDeprecationWarning" not in log and "License classifiers are deprecated" not in log


def test_wheel_ships_the_published_weights_registry(wheel):
    path, _ = wheel
    with zipfile.ZipFile(path) as zf:
        assert zf.read("ltzoo/hub/published.json") == (ROOT / "ltzoo" / "hub" / "published.json").read_bytes()
