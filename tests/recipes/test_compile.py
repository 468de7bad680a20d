"""``compile=True`` trains through ``torch.compile``: the same run as eager up to float rounding, eager weights saved."""
import shutil

import pytest
import torch

from ltzoo.recipes.supervised import train_supervised

pytestmark = pytest.mark.skipif(shutil.which("g++") is None and shutil.which("c++") is None,
                                reason="torch.compile (inductor) on CPU needs a C++ compiler")


def test_compiled_run_matches_the_eager_run_and_saves_plain_weights(digits, make_cfg, tmp_path, monkeypatch):
    train, test, _ = digits
    compiled_modules, real_compile = [], torch.compile

    def spy(module, *args, **kwargs):
        compiled_modules.append(module)
        return real_compile(module, *args, **kwargs)

    monkeypatch.setattr(torch, "compile", spy)
    cfg = make_cfg(epochs=2, max_steps_per_epoch=3, eval_every=2, mixer="mixup")
    eager = train_supervised(cfg.replace(output_dir=str(tmp_path / "eager")), train, test)
    assert compiled_modules == []
    torch._dynamo.reset()
    compiled = train_supervised(cfg.replace(output_dir=str(tmp_path / "compiled"), compile=True), train, test)
    assert len(compiled_modules) == 1 and compiled_modules[0].model is compiled["model"]
    a, b = eager["model"].state_dict(), compiled["model"].state_dict()
    assert a.keys() == b.keys()  # the eager module's names: no "_orig_mod." wrapper in what is saved
    for k in a:
        assert torch.allclose(a[k].float(), b[k].float(), rtol=1e-3, atol=1e-4), k
    assert compiled["history"][-1]["train_loss"] == pytest.approx(eager["history"][-1]["train_loss"], rel=1e-4)
