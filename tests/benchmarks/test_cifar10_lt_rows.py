"""The CIFAR-10-LT table's rows and its seed statistics (benchmarks/cifar10_lt*.py)."""
import json
import statistics

import pytest

from benchmarks.cifar10_lt import BASE, GROUPS, PAPER_TOP1, ROWS, SCHEDULES, VARIANTS, load_runs, row_config, run_dir
from benchmarks.cifar10_lt_btm import BTM_ROWS, btm_verdict
from benchmarks.cifar10_lt_report import markdown_table, paired_difference, seed_stats, summarize_group


@pytest.mark.parametrize("row", list(ROWS))
def test_every_row_is_a_valid_config_of_the_papers_recipe(row):
    cfg = row_config(row, "full", seed=3, precision="bf16", root="/data")
    assert (cfg.model, cfg.batch_size, cfg.lr, cfg.momentum, cfg.weight_decay) == ("resnet32", 128, 0.1, 0.9, 2e-4)
    assert (cfg.epochs, cfg.milestones, cfg.eval_every, cfg.warmup_epochs) == (200, [160, 180], 200, 5.0)
    assert cfg.data_args == {"selection": "random", "seed": 0}  # LDAM-DRW's images, whatever the run seed
    assert cfg.seed == 3 and cfg.group_ranges == GROUPS and cfg.tag == f"cifar10_lt_r100_{row}"
    if row.startswith("bmls"):
        assert cfg.sampler == "bmls" and cfg.mixer == "mixup" and cfg.mixer_args == {"alpha": 1.0}
    cpu = row_config(row, "cpu", seed=0)
    assert (cpu.epochs, cpu.milestones) == (30, [24, 27])


def test_rows_name_the_components_the_table_says():
    assert ROWS["ce"] == {"loss": "ce"} and ROWS["la"]["loss"] == "logit_adjusted"
    assert ROWS["cbs_mixup"]["sampler"] == "class_balanced" and ROWS["etf_dr"]["loss"] == "dot_regression"
    assert [ROWS[r]["head"] for r in ("bmls_fc", "bmls_ms", "bmls_ms_wetf")] == ["fc", "ms", "ms_wetf"]
    assert {BTM_ROWS[r]["stage1"] for r in BTM_ROWS} == {"ce_mixup", "la"}
    assert set(PAPER_TOP1) <= set(ROWS) and "ce" not in PAPER_TOP1  # no paper number for plain CE without mixup
    assert SCHEDULES["cpu"]["seeds"] == [0, 1, 2] and SCHEDULES["full"]["seeds"] == [0]
    cfg = row_config("bmls_ms_wetf", "cpu", 0, variant="feature_norm")
    assert cfg.model_args == VARIANTS["feature_norm"]["model_args"] == {"head_args": {"feature_norm": True}}
    assert BASE["imb_ratio"] == 100


def test_etf_dr_row_rescales_dr_targets_as_the_authors_code_and_the_variant_does_not():
    import ltzoo
    from ltzoo.engine.builders import build_loss

    for variant, expected in ((None, True), ("fixed_targets", False)):
        cfg = row_config("etf_dr", "cpu", 0, variant=variant)
        model = ltzoo.create_model(cfg.model, num_classes=10, head=cfg.head)
        loss = build_loss(cfg.loss, model, [500] * 10, cfg.loss_args)
        assert type(loss).__name__ == "DotRegressionLoss" and loss.rescale_targets is expected


def test_bad_rows_and_schedules_are_refused():
    with pytest.raises(ValueError, match="row must be one of"):
        row_config("bmls", "cpu", 0)
    with pytest.raises(ValueError, match="schedule must be one of"):
        row_config("ce", "long", 0)
    with pytest.raises(ValueError, match="variant must be one of"):
        row_config("ce", "cpu", 0, variant="norm")


def _run(row, seed, top1, hmean, precision="fp32", variant=None, per_class=None):
    m = {"top1": top1, "many": 90.0, "medium": 70.0, "few": 50.0 + seed, "hmean": hmean, "gmean": hmean + 1,
         "lowest": 30.0}
    return {"row": row, "variant": variant, "schedule": "cpu", "seed": seed, "precision": precision, "metrics": m, "train_s": 100.0 + seed,
            "per_class": per_class or [float(seed)] * 10, "class_counts": [5000] * 10}


def test_seed_statistics_match_the_standard_library():
    values = [71.2, 73.9, 72.4]
    s = seed_stats(values)
    assert s["mean"] == round(statistics.mean(values), 2) and s["std"] == round(statistics.stdev(values), 2)
    assert (s["min"], s["max"], s["n"]) == (71.2, 73.9, 3)
    assert seed_stats([5.0])["std"] == 0.0


def test_paired_difference_uses_only_shared_seeds():
    a = [_run("ce", 0, 70.0, 60.0), _run("ce", 1, 72.0, 61.0), _run("ce", 2, 74.0, 62.0)]
    b = [_run("ce", 0, 69.0, 60.5), _run("ce", 2, 75.0, 61.0)]
    d = paired_difference(a, b, "top1")
    assert d["seeds"] == [0, 2] and d["differences"] == [1.0, -1.0] and d["mean_difference"] == 0.0
    assert (d["mean_a"], d["mean_b"]) == (72.0, 72.0)
    with pytest.raises(ValueError, match="no seed"):
        paired_difference(a, [_run("ce", 7, 1.0, 1.0)], "top1")


def test_summary_table_and_per_class_means():
    runs = [_run("ce", 0, 70.0, 60.0), _run("ce", 1, 72.0, 62.0)]
    s = summarize_group(runs)
    assert s["stats"]["top1"]["mean"] == 71.0 and s["per_class_mean"] == [0.5] * 10 and s["train_s"] == [100.0, 101.0]
    assert s["trained_on"] == [None, None]  # records kept before the machine was recorded
    runs[0]["machine"], runs[1]["machine"] = {"cpu": "Xeon", "gpu": None}, {"cpu": "EPYC", "gpu": "H200"}
    assert summarize_group(runs)["trained_on"] == ["Xeon", "H200"]
    table = markdown_table([("CE", s, "–")])
    lines = table.strip().splitlines()
    assert lines[0].startswith("| method | top-1 | many | medium | few | H-mean | G-mean | lowest |")
    assert lines[2].startswith("| CE | 71.0 ± 1.4 |") and lines[2].endswith("| 2 | – |")


def test_finished_runs_are_read_from_their_folders(tmp_path):
    for seed in (0, 1):
        folder = run_dir(tmp_path, "cpu", "ce", seed, "bf16")
        folder.mkdir(parents=True)
        (folder / "done.json").write_text(json.dumps(_run("ce", seed, 70.0 + seed, 60.0)))
    run_dir(tmp_path, "cpu", "la", 0, "bf16").mkdir(parents=True)  # unfinished: no done.json
    runs = load_runs(tmp_path, "cpu")
    assert [(r["row"], r["seed"]) for r in runs] == [("ce", 0), ("ce", 1)]
    assert run_dir(tmp_path, "cpu", "bmls_ms_wetf", 1, "fp32", "feature_norm").name == "seed1_fp32"
    assert run_dir(tmp_path, "cpu", "bmls_ms_wetf", 1, "fp32", "feature_norm").parent.name == "bmls_ms_wetf+feature_norm"


def test_kept_records_fill_in_runs_whose_folders_are_gone(tmp_path):
    from benchmarks.cifar10_lt import keep_record

    kept = tmp_path / "kept"
    path = keep_record(_run("ce", 0, 61.0, 50.0), kept)
    assert path == kept / "cpu" / "ce" / "seed0_fp32.json" and json.loads(path.read_text())["metrics"]["top1"] == 61.0
    keep_record({**_run("la", 1, 65.0, 55.0), "variant": "feature_norm"}, kept)
    assert (kept / "cpu" / "la+feature_norm" / "seed1_fp32.json").is_file()
    folder = run_dir(tmp_path / "runs", "cpu", "ce", 0, "fp32")  # a run folder beats the kept copy
    folder.mkdir(parents=True)
    (folder / "done.json").write_text(json.dumps(_run("ce", 0, 62.0, 50.0)))
    runs = load_runs(tmp_path / "runs", "cpu", kept)
    assert [(r["row"], r.get("variant"), r["seed"], r["metrics"]["top1"]) for r in runs] == [
        ("ce", None, 0, 62.0), ("la", "feature_norm", 1, 65.0)]
    assert load_runs(tmp_path / "nothing", "full", kept) == []


def test_btm_verdict_compares_with_the_best_control():
    def rec(seed, btm_h, btm_t, ctrl_h):
        ctrl = {"top1": 80.0, "hmean": ctrl_h, "few": 60.0}
        return {"seed": seed, "metrics": {"top1": btm_t, "hmean": btm_h, "few": 61.0},
                "stage1_metrics": {"top1": 75.0, "hmean": 50.0, "few": 40.0},
                "controls": {"posttrain_only": ctrl, "full_lt_finetune": {**ctrl, "hmean": ctrl_h - 5},
                             "one_subset_finetune": ctrl}}
    assert btm_verdict([rec(0, 70.0, 79.5, 69.0), rec(1, 72.0, 79.5, 69.0)])["holds"]
    assert not btm_verdict([rec(0, 70.0, 78.5, 69.0)])["holds"]  # top-1 more than 1 point below the best control
    assert not btm_verdict([rec(0, 68.0, 80.0, 69.0)])["holds"]  # H-mean below a control's


def test_report_writes_the_result_table_and_plot(tmp_path, monkeypatch):
    import benchmarks._common as common
    from benchmarks.cifar10_lt import main

    monkeypatch.setattr(common, "RESULTS_DIR", tmp_path / "results")
    work = tmp_path / "runs"
    ctrl = {"top1": 70.0, "many": 90.0, "medium": 70.0, "few": 50.0, "hmean": 55.0, "gmean": 60.0, "lowest": 30.0}
    for seed in (0, 1):
        for row in ("ce", "btm_la"):
            rec = _run(row, seed, 70.0 + seed, 60.0 + seed, per_class=[50.0 + c for c in range(10)])
            if row == "btm_la":
                rec.update(fc_stage={"ran": True}, finetune_steps_total=300, stage1_metrics=ctrl, config={},
                           controls={c: ctrl for c in ("posttrain_only", "full_lt_finetune", "one_subset_finetune")})
            else:
                rec["config"] = {"loss": "ce"}
            folder = run_dir(work, "cpu", row, seed, "fp32")
            folder.mkdir(parents=True)
            (folder / "done.json").write_text(json.dumps(rec))
    other = run_dir(work, "cpu", "ce", 0, "bf16")  # another precision: not in the default (fp32) table
    other.mkdir(parents=True)
    (other / "done.json").write_text(json.dumps({**_run("ce", 0, 10.0, 10.0, precision="bf16"), "config": {}}))
    assert main(["report", "--schedule", "cpu", "--work-dir", str(work)]) == 0
    result = json.loads((tmp_path / "results" / "cifar10_lt_cpu.json").read_text())
    assert set(result["rows"]) == {"ce", "btm_la"}
    assert result["rows"]["ce"]["stats"]["top1"]["mean"] == 70.5 and result["rows"]["ce"]["seeds"] == [0, 1]
    assert result["rows"]["btm_la"]["verdict"]["holds"]  # H-mean 60.5 > every control's 55, top-1 above theirs
    table = (tmp_path / "results" / "cifar10_lt_cpu.md").read_text()
    assert "| CE | 70.5 ± 0.7 |" in table and "control: full lt finetune" in table
    assert (tmp_path / "results" / "cifar10_lt_cpu_per_class.png").read_bytes()[:4] == b"\x89PNG"


def test_run_skips_kept_records_but_retrains_a_stage1_whose_model_a_btm_row_needs(tmp_path, monkeypatch):
    import benchmarks.cifar10_lt as c10

    calls = []

    def fake_train(row, schedule, seed, precision, work_dir, root, variant=None, *rest):
        calls.append(row)
        rec = {**_run(row, seed, 60.0, 50.0, precision), "schedule": schedule}
        folder = c10.run_dir(work_dir, schedule, row, seed, precision, variant)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "done.json").write_text(json.dumps(rec))
        return rec

    monkeypatch.setattr(c10, "train_row", fake_train)
    monkeypatch.setattr(c10, "train_btm_row", fake_train)
    kept, work = tmp_path / "kept", tmp_path / "runs"
    for row in ("ce", "la"):
        c10.keep_record(_run(row, 0, 61.0, 50.0), kept)
    args = ["run", "--schedule", "cpu", "--seeds", "0", "--root", "/data", "--work-dir", str(work),
            "--record-dir", str(kept)]
    assert c10.main([*args, "--rows", "ce", "ce_mixup"]) == 0
    assert calls == ["ce_mixup"]  # ce: kept record, no folder -> skipped
    assert (kept / "cpu" / "ce_mixup" / "seed0_fp32.json").is_file()
    assert c10.main([*args, "--rows", "btm_la"]) == 0
    assert calls == ["ce_mixup", "la", "btm_la"]  # la's record was kept, but BTM needs its model
    assert json.loads((kept / "cpu" / "btm_la" / "seed0_fp32.json").read_text())["row"] == "btm_la"
    assert c10.main([*args, "--rows", "ce", "--rerun-kept"]) == 0
    assert calls[-1] == "ce"


def test_paper_column_shows_ours_minus_the_paper_on_the_full_schedule():
    from benchmarks.cifar10_lt import PAPER_TOP1, paper_cell

    summary = {"stats": {"top1": {"mean": 77.25}}}
    assert PAPER_TOP1["bmls_ms"][0] == 79.7  # REFERENCE.md: BMLS paper Table 1
    assert paper_cell(PAPER_TOP1["bmls_ms"], summary, "full") == "79.7 (-2.5)"
    assert paper_cell(PAPER_TOP1["bmls_ms"], summary, "cpu") == "79.7"
    assert paper_cell(None, summary, "full") == "–"
