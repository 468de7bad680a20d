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
