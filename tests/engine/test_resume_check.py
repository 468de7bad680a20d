"""A checkpoint of another model / head / loss / class count is refused before load_state_dict, naming the field."""
import pytest
from torch import nn

from ltzoo.engine.resume_check import check_checkpoint_fits


def _state(model, **cfg):
    return {"config": {"model": "small_cnn", "head": "fc", "loss": None, "model_args": {}, **cfg},
            "num_classes": 3, "model": model.state_dict()}


def test_reliability_resume_mismatch_names_the_field():
    model = nn.Linear(4, 3)
    run = {"model": "small_cnn", "head": "fc", "loss": None, "model_args": {}}
    check_checkpoint_fits(_state(model), run, 3, model)  # the same run: fits
    with pytest.raises(ValueError, match=r"last\.pt: its head is 'etf' but this run's head is 'fc'"):
        check_checkpoint_fits(_state(model, head="etf"), run, 3, model, "run/last.pt")
    with pytest.raises(ValueError, match="trained for num_classes=3 but this run's data has 5 classes"):
        check_checkpoint_fits(_state(model), run, 5, model)
    with pytest.raises(ValueError, match=r"shape mismatches: weight \(checkpoint \(3, 4\), model \(3, 8\)\)"):
        check_checkpoint_fits(_state(model), run, 3, nn.Linear(8, 3))
    with pytest.raises(ValueError, match="not an ltzoo training checkpoint"):
        check_checkpoint_fits({"model": 1}, run, 3, model)
