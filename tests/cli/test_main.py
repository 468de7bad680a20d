import ltzoo
from ltzoo.cli import main


def test_list_prints_every_backbone(capsys):
    assert main(["list", "backbones"]) == 0
    out = capsys.readouterr().out
    assert f"backbones ({len(ltzoo.list_backbones())}):" in out and "  wrn_28_2" in out and "  small_cnn" in out


def test_list_filter(capsys):
    main(["list", "models", "--filter", "resnet3*"])
    lines = [l.strip() for l in capsys.readouterr().out.splitlines()[1:]]
    assert lines == ["resnet32", "resnet32_w2"]


def _run_fresh(code: str) -> str:
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_fidelity_version_and_list_do_not_import_torch():
    code = ("import sys, io, contextlib\nfrom ltzoo.cli import main\n"
            "try:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
            "buf = io.StringIO()\nwith contextlib.redirect_stdout(buf):\n    main(['list'])\n"
            "heavy = sorted(m for m in ('torch', 'timm', 'numpy', 'torchvision') if m in sys.modules)\n"
            "print('HEAVY', heavy)\nprint(buf.getvalue())")
    out = _run_fresh(code)
    assert "HEAVY []" in out
    assert "ltzoo 0.1.0" in out
    assert "datasets (" in out and "  places_lt" in out and "  wrn_28_2" in out


def test_fidelity_static_name_index_matches_the_registries():
    from ltzoo.cli.names import NAMES, current_names

    assert current_names() == NAMES, "update ltzoo/cli/names.py from ltzoo.cli.names.current_names()"


def test_fidelity_import_ltzoo_then_timm_finds_ltzoo_architectures():
    out = _run_fresh("import sys\nimport ltzoo\nprint('torch' in sys.modules)\nimport timm\n"
                     "print(timm.is_model('resnet32'), timm.is_model('ltzoo_resnet50'))\n"
                     "print(type(timm.create_model('small_cnn', num_classes=3)).__name__)")
    assert out.split() == ["False", "True", "True", "LTModel"]


def test_fidelity_list_roles_and_models_include_pretrained_tags(capsys, monkeypatch):
    from ltzoo.cli import names

    monkeypatch.setitem(names.NAMES, "pretrained", ("resnet32.cifar10_lt_r100_x",))
    main(["list", "models", "--filter", "resnet32*"])
    lines = [l.strip() for l in capsys.readouterr().out.splitlines()[1:]]
    assert lines == ["resnet32", "resnet32_w2", "resnet32.cifar10_lt_r100_x"]
    main(["list", "datasets"])
    out = capsys.readouterr().out
    assert all(f"  {n}" in out for n in ("cifar10_lt", "imagenet_lt", "places_lt", "inaturalist2018"))
