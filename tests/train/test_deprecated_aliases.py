"""The previous release's ``ltzoo.train`` paths resolve to the new homes, with a DeprecationWarning naming them."""
import importlib

import pytest

from ltzoo.recipes.btm import train_btm
from ltzoo.recipes.dlsa import train_dlsa
from ltzoo.recipes.fixmatch import train_fixmatch
from ltzoo.recipes.supervised import train_supervised


@pytest.mark.parametrize("module,name,target,new_path", [
    ("ltzoo.train", "train_supervised", train_supervised, "ltzoo.recipes.supervised.train_supervised"),
    ("ltzoo.train", "train_fixmatch", train_fixmatch, "ltzoo.recipes.fixmatch.train_fixmatch"),
    ("ltzoo.train.btm", "train_btm", train_btm, "ltzoo.recipes.btm.train_btm"),
    ("ltzoo.train.dlsa", "train_dlsa", train_dlsa, "ltzoo.recipes.dlsa.train_dlsa"),
])
def test_old_paths_warn_and_resolve(module, name, target, new_path):
    mod = importlib.import_module(module)
    with pytest.warns(DeprecationWarning, match=new_path.replace(".", r"\.")):
        got = getattr(mod, name)
    assert got is target


def test_old_config_names_and_unknown_names():
    from ltzoo.engine.config import TrainConfig

    with pytest.warns(DeprecationWarning, match=r"ltzoo\.engine\.config\.TrainConfig"):
        from ltzoo.train import TrainConfig as old
    assert old is TrainConfig
    with pytest.raises(AttributeError, match="ltzoo.recipes"):
        importlib.import_module("ltzoo.train").no_such_name
