"""The BTM rows of the CIFAR-10-LT table: BTM on a finished stage-1 run, with compute-matched controls.

BTM (``ltzoo.recipes.btm.train_btm``, the paper's defaults: N_D = 10 balanced subsets of N_C = 10
images per class, 30 fine-tuning epochs each at lr 5e-3 cosine, wd 5e-4, batch 256, the stage-1
run's mixer; uniform merge; MiSLAS-style post-training) runs on the stage-1 model of the same
schedule, seed and precision (its fine-tunes and post-training autocast in that precision too). ``fc_stage="auto"`` runs the paper's FC stage (Sec. 3.3: plain-CE
classifier retraining on all data) when stage 1 already handles imbalance, as the LA model does;
not for CE + mixup. Controls, each from the same starting model (after the FC stage when it ran)
and followed by the SAME post-training, S = the SGD steps of the N_D fine-tunes together:

* ``posttrain_only``: no fine-tuning;
* ``full_lt_finetune``: fine-tuned on the whole long-tailed set for S steps (random sampler);
* ``one_subset_finetune``: fine-tuned on balanced subset 0 alone for S steps, no merge.

Every control's metrics are kept in the run folder as soon as measured, so a restart resumes.
"""
from __future__ import annotations

import copy
import json
import time
from typing import Any

import numpy as np

from benchmarks._common import machine

BTM_ROWS: dict[str, dict[str, str]] = {
    "btm_ce_mixup": {"stage1": "ce_mixup"},
    "btm_la": {"stage1": "la"},
}
LABELS = {"btm_ce_mixup": "BTM on CE + mixup", "btm_la": "BTM on LA (with the FC stage)"}
CONTROLS = ("posttrain_only", "full_lt_finetune", "one_subset_finetune")
KEYS = ("top1", "many", "medium", "few", "hmean", "gmean", "lowest")


def _metrics(model: Any, test_set: Any, counts: list, groups: dict) -> dict[str, Any]:
    from ltzoo.engine.builders import build_eval_loader
    from ltzoo.engine.evaluation import evaluate_model

    out = evaluate_model(model.eval(), build_eval_loader(test_set), counts, {"ranges": groups})
    return {k: round(float(out[k]), 2) for k in KEYS}


def _control(name: str, base: Any, train_set: Any, subsets: list, steps: int, cfg: Any, mixer: tuple) -> Any:
    from ltzoo.recipes.btm import finetune_on_subset

    if name == "posttrain_only":
        return copy.deepcopy(base)
    indices = np.arange(len(train_set)) if name == "full_lt_finetune" else subsets[0]
    seed = cfg.seed * 1000 + (500 if name == "full_lt_finetune" else 0)
    return finetune_on_subset(base, train_set, indices, cfg, seed=seed, mixer=mixer[0], mixer_args=mixer[1],
                              total_steps=steps)


def train_btm_row(row: str, schedule: str, seed: int, precision: str, work_dir: str, root: str,
                  device: str = "auto", btm_changes: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run (or resume, or skip when done) one BTM row: BTM, its controls, and the eval of the merged model.

    Args:
        row: A name of :data:`BTM_ROWS`.
        schedule, seed, precision: Those of the stage-1 run it starts from.
        work_dir: The run folders' root; root: the CIFAR-10 JPEG tree; device: where BTM runs ("auto",
            "cpu", "cuda").
        btm_changes: Other :class:`~ltzoo.recipes.btm.BTMConfig` fields (quick checks only).

    Returns:
        The row's ``done.json`` record.
    """
    from benchmarks.cifar10_lt import GROUPS, run_dir
    from ltzoo.data.in_memory import held_dataset
    from ltzoo.engine.data import build_datasets
    from ltzoo.engine.distributed import resolve_device
    from ltzoo.engine.eval_checkpoint import evaluate_checkpoint, load_for_eval
    from ltzoo.files import write_bytes_atomic
    from ltzoo.recipes.btm import BTMConfig, posttrain_model, resolve_mixer, train_btm
    from ltzoo.recipes.btm_save import save_btm_model

    folder = run_dir(work_dir, schedule, row, seed, precision)
    done = folder / "done.json"
    if done.exists():
        return json.loads(done.read_text())
    stage1 = run_dir(work_dir, schedule, BTM_ROWS[row]["stage1"], seed, precision)
    if not (stage1 / "done.json").exists():
        raise RuntimeError(f"{row} needs its finished stage-1 run {stage1} (train it first)")
    folder.mkdir(parents=True, exist_ok=True)
    device = str(resolve_device(device))
    start = time.perf_counter()
    model, cfg, counts = load_for_eval(stage1 / "model", device=device)
    cfg = cfg.replace(data_root=root)
    train_set, test_set, name = build_datasets(cfg)
    # decoded once and held in memory: BTM reads the training set ~50 times (same augmentation as tensor ops)
    train_set, test_set = held_dataset(train_set) or train_set, held_dataset(test_set) or test_set
    btm_cfg = BTMConfig(**{"seed": seed, "group_ranges": GROUPS, "fc_stage": "auto", "precision": precision,
                           **(btm_changes or {})})
    result = train_btm(model.train(), train_set, test_set, counts, btm_cfg, output_dir=folder / "btm",
                       progress=False, stage1_recipe=cfg.to_dict())
    report = result["report"]
    save_btm_model(result, folder / "model", cfg.to_dict(), counts, name)
    btm_s = time.perf_counter() - start
    steps = sum(report["finetune"]["steps"])  # S: the SGD steps of the N_D fine-tunes together
    mixer = resolve_mixer(btm_cfg, cfg.to_dict())
    controls = {}
    for control in CONTROLS:
        path = folder / "controls" / f"{control}.json"
        if path.exists():
            controls[control] = json.loads(path.read_text())
            continue
        t0 = time.perf_counter()
        tuned = _control(control, result["base"], train_set, result["subsets"], steps, btm_cfg, mixer)
        posttrain_model(tuned, train_set, test_set, counts, btm_cfg)
        controls[control] = {**_metrics(tuned, test_set, counts, GROUPS), "seconds": round(time.perf_counter() - t0, 1)}
        path.parent.mkdir(exist_ok=True)
        write_bytes_atomic(path, json.dumps(controls[control]).encode())
    summary = evaluate_checkpoint(folder / "model", data_root=root, out=folder / "eval_metrics.json", device=device)
    record = {"row": row, "variant": None, "schedule": schedule, "seed": seed, "precision": precision,
              "stage1_row": BTM_ROWS[row]["stage1"],
              "train_s": round(btm_s, 1), "epochs": None,
              "eval_command": f"ltzoo eval {folder / 'model'} --root <cifar10-jpeg>",
              "metrics": {k: summary[k] for k in KEYS}, "per_class": summary["per_class"],
              "class_counts": [int(c) for c in counts],
              "stage1_metrics": {k: round(float(report["stage1"][k]), 2) for k in KEYS},
              "merged_metrics": {k: round(float(report["merged"][k]), 2) for k in KEYS},
              "fc_stage": report["fc_stage"], "finetune_steps_total": steps, "controls": controls,
              "config": {"stage1": cfg.to_dict(), "btm": report["config"]}, "machine": machine()}
    write_bytes_atomic(done, json.dumps(record, indent=1).encode())
    return record


def btm_verdict(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Seed means of BTM and its controls, and whether BTM's H-mean is above every control's with top-1
    at most 1 point below the best control's (the claim "BTM raises worst-class metrics at little top-1 cost")."""
    mean = {s: {k: round(float(np.mean([r[s][k] for r in records])), 2) for k in ("top1", "hmean", "few")}
            for s in ("metrics", "stage1_metrics")}
    controls = {c: {k: round(float(np.mean([r["controls"][c][k] for r in records])), 2) for k in ("top1", "hmean", "few")}
                for c in CONTROLS}
    best_h = max(v["hmean"] for v in controls.values())
    best_t = max(v["top1"] for v in controls.values())
    holds = mean["metrics"]["hmean"] > best_h and mean["metrics"]["top1"] >= best_t - 1.0
    return {"btm": mean["metrics"], "stage1": mean["stage1_metrics"], "controls": controls,
            "best_control_hmean": best_h, "best_control_top1": best_t, "holds": bool(holds),
            "seeds": [r["seed"] for r in records]}

