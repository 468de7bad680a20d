"""Shared set-up of the BTM distributed test and its torchrun worker."""
from ltzoo.engine.data import build_datasets
from ltzoo.recipes.btm import BTMConfig
from ltzoo.recipes.demo import demo_config


def digits_data():
    train, test, _ = build_datasets(demo_config(epochs=1))
    return train, test


def btm_config() -> BTMConfig:
    return BTMConfig(num_subsets=3, per_class=5, finetune_epochs=2, finetune_lr=0.02, posttrain_epochs=2,
                     posttrain_lr=0.1, batch_size=16)
