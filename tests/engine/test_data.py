"""``build_datasets``: every registered data set is reachable by its registry name."""
import pytest

import ltzoo.engine.data as engine_data
from ltzoo.data import list_datasets
from ltzoo.engine.config import DATA_NAMES, TrainConfig


@pytest.fixture
def calls(monkeypatch):
    seen = []

    def fake_create(name, **kwargs):
        seen.append((name, kwargs))
        return object()

    monkeypatch.setattr(engine_data, "create_dataset", fake_create)
    return seen


@pytest.mark.parametrize("name,test_split", [("imagenet_lt", "test"), ("places_lt", "test"),
                                             ("inaturalist2018", "val")])
def test_fidelity_split_list_sets_by_registry_name(calls, tmp_path, name, test_split):
    cfg = TrainConfig.from_dict({"data": name, "data_root": str(tmp_path), "imb_ratio": 1})
    _, _, label = engine_data.build_datasets(cfg)
    assert [(n, k["split"]) for n, k in calls] == [(name, "train"), (name, test_split)]
    assert all(k["root"] == str(tmp_path) and k["image_size"] == 224 for _, k in calls)
    assert calls[0][1]["imb_ratio"] == 1 and label == name


def test_fidelity_every_registered_dataset_name_is_accepted():
    for name in list_datasets():
        assert TrainConfig.from_dict({"data": name}).data == name
    assert set(DATA_NAMES) <= {"digits", "cifar10", "cifar100", "imagefolder"}
    with pytest.raises(ValueError, match="data must be one of"):
        TrainConfig.from_dict({"data": "imagenet-lt"})


def test_registry_names_of_short_sets_take_the_same_path():
    by_registry = engine_data.build_datasets(TrainConfig.from_dict({"data": "digits_lt", "imb_ratio": 20}))
    by_short = engine_data.build_datasets(TrainConfig.from_dict({"data": "digits", "imb_ratio": 20}))
    assert by_registry[2] == by_short[2] == "digits_lt_r20"
    assert list(by_registry[0].class_counts) == list(by_short[0].class_counts)


def test_split_list_needs_a_root():
    with pytest.raises(ValueError, match="needs a data root"):
        engine_data.build_datasets(TrainConfig.from_dict({"data": "places_lt"}))
