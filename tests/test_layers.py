"""The import layering of pyproject.toml's import-linter contracts: kept by the package, and enforced.

Layers (each imports only those below it): cli | train (deprecated aliases) > recipes > engine >
hub > models > components > registry / validation / utilities; no import cycles between sibling
packages or modules. A change that breaks a contract fails here with the offending import named.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _lint(package_parent: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(package_parent)}
    script = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    return subprocess.run([sys.executable, "-c", script, "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
                          cwd=package_parent, env=env, capture_output=True, text=True, timeout=300)


def test_import_contracts_are_kept():
    pytest.importorskip("importlinter")
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


@pytest.mark.parametrize("module,line,named", [
    ("models.py", "from ltzoo.cli import main\n", "ltzoo.models -> ltzoo.cli"),
    ("engine/parts.py", "from ltzoo.recipes import supervised\n", "ltzoo.engine.parts -> ltzoo.recipes"),
    ("backbones/base.py", "def _late():\n    import ltzoo.hub\n", "ltzoo.backbones.base -> ltzoo.hub"),
])
def test_a_layer_violation_fails_naming_the_import(tmp_path, module, line, named):
    pytest.importorskip("importlinter")
    shutil.copytree(ROOT / "ltzoo", tmp_path / "ltzoo", ignore=shutil.ignore_patterns("__pycache__"))
    with open(tmp_path / "ltzoo" / module, "a", encoding="utf-8") as fh:
        fh.write("\n" + line)  # imports inside functions count
    result = _lint(tmp_path)
    assert result.returncode != 0 and "BROKEN" in result.stdout
    assert named in result.stdout


def test_a_cycle_between_components_fails(tmp_path):
    pytest.importorskip("importlinter")
    shutil.copytree(ROOT / "ltzoo", tmp_path / "ltzoo", ignore=shutil.ignore_patterns("__pycache__"))
    with open(tmp_path / "ltzoo" / "backbones" / "base.py", "a", encoding="utf-8") as fh:
        fh.write("\nfrom ltzoo.heads import etf\n")  # heads already import backbones
    result = _lint(tmp_path)
    assert result.returncode != 0 and "No cycles are allowed in ltzoo" in result.stdout
