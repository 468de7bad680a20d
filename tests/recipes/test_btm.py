"""BTM on digits-LT: balanced fine-tuning + merging + post-training raises H-mean over stage 1."""
import json

import numpy as np
import pytest
import torch

import ltzoo
from ltzoo.engine.data import build_datasets
from ltzoo.recipes.btm import BTMConfig, finetune_on_subset, finetune_steps, report_table, train_btm
from ltzoo.recipes.demo import demo_config
from ltzoo.recipes.supervised import train_supervised

BTM = dict(num_subsets=4, per_class=10, finetune_epochs=20, finetune_lr=0.02, posttrain_epochs=20,
           posttrain_lr=0.1, batch_size=32)


@pytest.fixture(scope="module")
def stage1(tmp_path_factory):
    torch.set_num_threads(1)
    runs = {}
    for seed in (0, 1):
        cfg = demo_config(epochs=10, seed=seed, output_dir=str(tmp_path_factory.mktemp(f"stage1_{seed}")))
        train, test, _ = build_datasets(cfg)
        runs[seed] = (train_supervised(cfg, train, test)["model"], train, test, cfg)
    return runs


@pytest.mark.parametrize("seed", [0, 1])
def test_btm_raises_hmean_over_stage1(stage1, seed, tmp_path):
    model, train, test, _ = stage1[seed]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out = train_btm(model, train, test, cfg=BTMConfig(seed=seed, **BTM), output_dir=tmp_path, progress=False)
    report = out["report"]
    # Stage 1 leaves a class at zero recall (H-mean 0.5); benchmarks/results/btm_digits.json has BTM's numbers.
    assert report["posttrained"]["hmean"] > report["stage1"]["hmean"] + 20
    assert report["posttrained"]["lowest"] > report["stage1"]["lowest"]
    assert len(report["finetuned"]) == 4
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # stage 1 untouched
    saved = json.loads((tmp_path / "btm_report.json").read_text())
    assert saved["merged"]["top1"] == pytest.approx(report["merged"]["top1"])
    assert sorted(p.name for p in tmp_path.glob("finetuned_*.safetensors")) == [f"finetuned_0{d}.safetensors" for d in range(4)]
    assert "merged + post-trained" in report_table(report)


def test_merge_is_the_average_of_the_finetuned_models(stage1, tmp_path):
    model, train, test, _ = stage1[0]
    cfg = BTMConfig(**{**BTM, "num_subsets": 2, "finetune_epochs": 2, "posttrain_epochs": 0})
    out = train_btm(model, train, test, cfg=cfg, output_dir=tmp_path, progress=False)
    from ltzoo.files import read_safetensors

    tuned = [read_safetensors(tmp_path / f"finetuned_0{d}.safetensors") for d in range(2)]
    key = "head.fc.weight"
    assert torch.allclose(out["merged_state"][key], (tuned[0][key] + tuned[1][key]) / 2, atol=1e-6)
    assert "posttrained" not in out["report"]


def test_resume_reuses_saved_finetuned_models(stage1, tmp_path, monkeypatch):
    model, train, test, _ = stage1[0]
    cfg = BTMConfig(**{**BTM, "num_subsets": 2, "finetune_epochs": 1, "posttrain_epochs": 0})
    first = train_btm(model, train, test, cfg=cfg, output_dir=tmp_path, progress=False)
    calls = []
    monkeypatch.setattr("ltzoo.recipes.btm.finetune_on_subset", lambda *a, **k: calls.append(1))
    second = train_btm(model, train, test, cfg=cfg, output_dir=tmp_path, progress=False)
    assert calls == []
    assert all(torch.equal(first["merged_state"][k], second["merged_state"][k]) for k in first["merged_state"])


def test_finetune_changes_a_copy_only(stage1):
    model, train, _, _ = stage1[0]
    before = model.state_dict()["head.fc.weight"].clone()
    tuned = finetune_on_subset(model, train, np.arange(40), BTMConfig(finetune_epochs=1, batch_size=16), seed=0)
    assert torch.equal(model.state_dict()["head.fc.weight"], before)
    assert not torch.equal(tuned.state_dict()["head.fc.weight"], before)


@pytest.mark.parametrize("kwargs,match", [({"num_subsets": 0}, "num_subsets"), ({"per_class": 1.5}, "per_class"),
                                          ({"finetune_lr": 0}, "finetune_lr"), ({"posttrain_epochs": -1}, "posttrain_epochs"),
                                          ({"fc_stage": "maybe"}, "fc_stage"), ({"posttrain": "crt"}, "posttrain"),
                                          ({"posttrain_lr_factor": 0}, "posttrain_lr_factor")])
def test_bad_btm_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BTMConfig(**kwargs)


def test_merge_command_averages_saved_models_and_refuses_incompatible_ones(tmp_path):
    from ltzoo.cli import main

    dirs = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        d = tmp_path / f"m{seed}"
        ltzoo.save_pretrained(ltzoo.create_model("small_cnn", num_classes=10), d, class_counts=[5] * 10)
        dirs.append(str(d))
    assert main(["merge", *dirs, "--out", str(tmp_path / "merged"), "--no-eval"]) == 0
    merged = ltzoo.create_model(f"local-dir:{tmp_path / 'merged'}", pretrained=True)
    parts = [ltzoo.create_model(f"local-dir:{d}", pretrained=True) for d in dirs]
    key = "head.fc.bias"
    assert torch.allclose(merged.state_dict()[key], (parts[0].state_dict()[key] + parts[1].state_dict()[key]) / 2)
    other = tmp_path / "other"
    ltzoo.save_pretrained(ltzoo.create_model("small_cnn", num_classes=4), other, class_counts=[5] * 4)
    with pytest.raises(ValueError, match=r"head\.fc\.weight"):
        main(["--debug", "merge", dirs[0], str(other), "--out", str(tmp_path / "bad"), "--no-eval"])


def test_btm_command_from_a_run_folder(tmp_path):
    from ltzoo.cli import main

    run = tmp_path / "run"
    assert main(["train", "--data", "digits", "--imb-ratio", "20", "--model", "small_cnn", "--epochs", "1",
                 "--output-dir", str(run), "--no-progress", "--set", 'data_args={"image_size": 16}']) == 0
    out = tmp_path / "btm"
    assert main(["btm", str(run), "--out", str(out), "--subsets", "2", "--epochs", "1", "--posttrain-epochs", "1",
                 "--batch-size", "32"]) == 0
    model = ltzoo.create_model(f"local-dir:{out / 'model'}", pretrained=True)
    metrics = model.pretrained_cfg["metrics"]
    report = json.loads((out / "btm_report.json").read_text())
    assert metrics["top1"] == pytest.approx(report["posttrained"]["top1"])
    assert model.pretrained_cfg["extra_metrics"]["stage1"]["top1"] == pytest.approx(report["stage1"]["top1"])
    # `ltzoo eval` rebuilds the test set from the stage-1 recipe the BTM model records
    assert main(["eval", str(out / "model"), "--no-plot"]) == 0
    evaluated = json.loads((out / "model" / "eval_metrics.json").read_text())
    assert evaluated["top1"] == pytest.approx(report["posttrained"]["top1"])
    assert evaluated["hmean"] == pytest.approx(report["posttrained"]["hmean"])


class _CountingSet(torch.utils.data.Dataset):
    """Counts how often each item is read."""

    def __init__(self, base):
        self.base, self.targets = base, base.targets
        self.reads = np.zeros(len(base), dtype=np.int64)

    def __len__(self):
        return len(self.base)

    def __getitem__(self, i):
        self.reads[i] += 1
        return self.base[i]


def test_fidelity_btm_finetune_reads_every_subset_image_each_epoch(stage1):
    model, train, _, _ = stage1[0]
    counting = _CountingSet(train)
    subset = np.arange(0, 300, 3)  # 100 images: batch 32 would drop 4 per epoch with drop_last
    finetune_on_subset(model, counting, subset, BTMConfig(finetune_epochs=3, batch_size=32), seed=0)
    assert counting.reads[subset].tolist() == [3] * 100 and counting.reads.sum() == 300


def test_fidelity_btm_finetune_uses_the_stage1_mixer(stage1, monkeypatch):
    from ltzoo.recipes import btm as btm_module

    model, train, test, _ = stage1[0]
    recipe = demo_config(mixer="mixup", mixer_args={"alpha": 0.2}).to_dict()
    cfg = BTMConfig(**{**BTM, "num_subsets": 1, "finetune_epochs": 1, "posttrain_epochs": 0})
    assert btm_module.resolve_mixer(cfg, recipe) == ("mixup", {"alpha": 0.2})
    assert btm_module.resolve_mixer(BTMConfig(mixer=None), recipe) == (None, {})
    lams = []
    real = btm_module.train_one_epoch

    def spy(*args, **kwargs):
        mixer = kwargs["mixer"]
        lams.append(mixer is not None and mixer.alpha)
        return real(*args, **kwargs)

    monkeypatch.setattr(btm_module, "train_one_epoch", spy)
    report = train_btm(model, train, test, cfg=cfg, progress=False, stage1_recipe=recipe)["report"]
    assert lams == [0.2] and report["finetune"]["mixer"] == "mixup"


def test_fidelity_btm_finetune_of_an_ms_head_uses_pairs_the_ms_loss_accepts():
    train, test, _ = build_datasets(demo_config())
    torch.manual_seed(0)
    model = ltzoo.create_model("small_cnn", head="ms", num_classes=10)
    from ltzoo.merge import balanced_subsets

    subset = balanced_subsets(train.targets, 1, 10, seed=0, num_classes=10)[0]
    cfg = BTMConfig(finetune_epochs=2, batch_size=32)  # loss None: the "ms" head's mixed_singleton
    tuned = finetune_on_subset(model, train, subset, cfg, seed=0, mixer="mixup", mixer_args={"alpha": 1.0})
    assert not torch.equal(tuned.head.fc.weight, model.head.fc.weight)  # trained (the MS loss refuses y_a == y_b)
    with pytest.raises(ValueError, match="mixed labels"):
        finetune_on_subset(model, train, subset, cfg, seed=0, mixer=None)


def test_fidelity_btm_posttrained_classifier_starts_from_the_merged_one(stage1):
    model, train, test, _ = stage1[0]
    base = {**BTM, "num_subsets": 2, "finetune_epochs": 2, "posttrain_epochs": 1, "posttrain_lr": 1e-9,
            "posttrain_lws": False}
    kept = train_btm(model, train, test, cfg=BTMConfig(**base), progress=False)
    merged_w = kept["merged_state"]["head.fc.weight"]
    assert torch.allclose(kept["model"].head.fc.weight, merged_w, atol=1e-6)  # kept, barely moved at lr ~ 0
    assert kept["report"]["posttrain"]["kept_classifier"] is True
    fresh = train_btm(model, train, test, cfg=BTMConfig(**base, posttrain_reinit=True), progress=False)
    assert not torch.allclose(fresh["model"].head.fc.weight, merged_w, atol=1e-2)


def test_fidelity_btm_finetune_steps_count(stage1):
    model, train, _, _ = stage1[0]
    cfg = BTMConfig(finetune_epochs=3, batch_size=32)
    assert finetune_steps(100, cfg) == 3 * 4
    steps = []
    from ltzoo.recipes import btm as btm_module

    real = btm_module.train_one_epoch

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        steps.append(out["steps"])
        return out

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(btm_module, "train_one_epoch", spy)
        finetune_on_subset(model, train, np.arange(100), cfg, seed=0, total_steps=10)
    assert sum(steps) == 10  # compute-matched controls: exactly total_steps SGD steps


def test_fidelity_btm_command_runs_the_fc_stage_for_an_la_run(tmp_path, capsys):
    from ltzoo.cli import main

    run = tmp_path / "run"
    assert main(["train", "--data", "digits", "--imb-ratio", "20", "--model", "small_cnn", "--epochs", "1",
                 "--loss", "logit_adjusted", "--output-dir", str(run), "--no-progress",
                 "--set", 'data_args={"image_size": 16}']) == 0
    out = tmp_path / "btm"
    assert main(["btm", str(run), "--out", str(out), "--subsets", "1", "--epochs", "1", "--fc-epochs", "1",
                 "--posttrain-epochs", "1", "--batch-size", "32"]) == 0
    assert "FC stage (auto): ran because stage-1 loss is 'logit_adjusted'" in capsys.readouterr().out
    report = json.loads((out / "btm_report.json").read_text())
    assert report["fc_stage"]["ran"] and report["fc_stage"]["epochs"] == 1 and report["posttrain"]["mode"] == "mislas"
    model = ltzoo.create_model(f"local-dir:{out / 'model'}", pretrained=True)
    assert model.pretrained_cfg["recipe"]["fc_stage"]["ran"] is True


def test_reliability_finetunes_of_another_stage1_model_are_not_reused(stage1, tmp_path, monkeypatch):
    cfg = BTMConfig(**{**BTM, "num_subsets": 2, "finetune_epochs": 1, "posttrain_epochs": 0})
    model0, train, test, _ = stage1[0]
    train_btm(model0, train, test, cfg=cfg, output_dir=tmp_path, progress=False)
    left = {p.name: p.read_bytes() for p in tmp_path.glob("finetuned_*.safetensors")}
    import ltzoo.recipes.btm as btm_module

    real, calls = btm_module.finetune_on_subset, []
    monkeypatch.setattr(btm_module, "finetune_on_subset", lambda *a, **k: calls.append(1) or real(*a, **k))
    model1 = stage1[1][0]  # same architecture and data, other weights: the old fine-tunes must not be reused
    out = train_btm(model1, train, test, cfg=cfg, output_dir=tmp_path, progress=False)
    assert len(calls) == 2
    assert all((tmp_path / name).read_bytes() != data for name, data in left.items())
    calls.clear()
    train_btm(model1, train, test, cfg=BTMConfig(**{**BTM, "num_subsets": 2, "finetune_epochs": 1,
                                                    "posttrain_epochs": 0, "finetune_lr": 0.01}),
              output_dir=tmp_path, progress=False)
    assert len(calls) == 2  # a changed setting is a new key too
    assert "merged_state" in out
