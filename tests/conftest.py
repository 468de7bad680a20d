"""Shared fixtures of the training tests: digits-LT at 16x16 (no download), tiny configs.

Every run here uses ``small_cnn`` on 16x16 digits with one torch thread: an epoch takes a
fraction of a second on a laptop core.
"""
import pytest

from ltzoo.engine.config import TrainConfig
from ltzoo.engine.data import build_datasets

BASE = dict(model="small_cnn", data="digits", imb_ratio=20, data_args={"image_size": 16}, epochs=2, batch_size=64,
            lr=0.1, warmup_epochs=1, schedule="cosine", weight_decay=5e-4, num_threads=1, progress=False,
            save_model=False, device="cpu")



def tiny_config(**changes) -> TrainConfig:
    """The base config of these tests with ``changes`` applied."""
    return TrainConfig.from_dict({**BASE, **changes})


@pytest.fixture(scope="session")
def make_cfg():
    """``make_cfg(**changes)``: the tiny base config with changes applied."""
    return tiny_config


@pytest.fixture(scope="session")
def digits():
    """(train, test, name) of digits-LT at imbalance 20, 16x16: train counts 113 ... 5, 629 test images."""
    return build_datasets(tiny_config())
