"""CIFAR-10-LT (imbalance 100) with ResNet-32: every supervised method of the zoo, trained and evaluated.

Data: the CIFAR-10 JPEG tree (``--root`` or ``$LTZOO_CIFAR10_JPEG``), long-tailed with LDAM-DRW's
choice of images (numpy seed 0, a per-class shuffle; 5000 ... 50, 12,406 images; the choice does not
change with the run seed), tested on the balanced 10,000. Every row: ResNet-32, batch 128, SGD
momentum 0.9, wd 2e-4, lr 0.1 with 5 warm-up epochs (lr x (epoch + 1) / 5), step decay x0.1 twice,
evaluation once, after the last epoch (no selection on the test set), many / medium / few by class
index [0, 2], [3, 6], [7, 9]. Schedules: ``full`` (200 epochs, decay at 160 and 180; seed 0) and
``cpu`` (30 epochs, decay at 24 and 27; seeds 0, 1, 2). The table's rows train in fp32: bf16
autocast cost CE more than the parity criterion allows (``benchmarks/bench_precision_parity.py``).

Each run lives in its own folder under ``--work-dir`` (``<schedule>/<row>[+<variant>]/seed<k>_<precision>``),
resumes from its ``last.pt`` when restarted, and is finished when ``done.json`` is there: the metrics
of ``ltzoo eval`` on the saved model, its recall on its own training images (``cifar10_lt_fit.py``), the
training seconds summed over restarts and the config. A
finished run's record is also copied to ``--record-dir`` (default
``benchmarks/results/cifar10_lt_runs/<schedule>/<row>[+<variant>]/seed<k>_<precision>.json``, kept
in the repository), and ``report`` reads both, so the table survives the loss of the run folders.

    python -m benchmarks.cifar10_lt run --schedule cpu --rows ce bmls_ms --seeds 0 1 2 --precision fp32
    python -m benchmarks.cifar10_lt run --schedule cpu   # every row and seed not finished or kept yet
    python -m benchmarks.cifar10_lt report --schedule cpu      # result JSON, markdown table, per-class plot
    python -m benchmarks.cifar10_lt fit --schedule cpu --root DIR   # training recall of runs that lack it
    python -m benchmarks.cifar10_lt config --row bmls_ms --schedule full   # the row's TrainConfig as JSON
    python -m benchmarks.cifar10_lt publish --schedule full    # model_cards/<arch.tag>/ + published.json
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any, Sequence

from benchmarks._common import machine
from benchmarks.cifar10_lt_btm import BTM_ROWS, train_btm_row
from benchmarks.cifar10_lt_fit import train_fit

MIXUP = {"mixer": "mixup", "mixer_args": {"alpha": 1.0}}
ROWS: dict[str, dict[str, Any]] = {
    "ce": {"loss": "ce"},
    "ce_mixup": {"loss": "ce", **MIXUP},
    "cbs_mixup": {"loss": "ce", "sampler": "class_balanced", **MIXUP},
    "la": {"loss": "logit_adjusted"},
    "etf_dr": {"head": "etf", "loss": "dot_regression", **MIXUP},
    "bmls_fc": {"head": "fc", "loss": "ce", "sampler": "bmls", **MIXUP},
    "bmls_ms": {"head": "ms", "loss": "mixed_singleton", "sampler": "bmls", **MIXUP},
    "bmls_ms_wetf": {"head": "ms_wetf", "loss": "mixed_singleton", "sampler": "bmls", **MIXUP},
}
LABELS = {"ce": "CE", "ce_mixup": "CE + mixup", "cbs_mixup": "class-balanced sampler + mixup",
          "la": "logit-adjusted loss", "etf_dr": "ETF + dot-regression", "bmls_fc": "BMLS + FC",
          "bmls_ms": "BMLS + MS", "bmls_ms_wetf": "BMLS + MS-WETF"}
# Options measured against a row's default: name -> TrainConfig changes.
VARIANTS: dict[str, dict[str, Any]] = {
    "feature_norm": {"model_args": {"head_args": {"feature_norm": True}}},  # WETF: BN + L2 before the ETF
    "fixed_targets": {"loss_args": {"rescale_targets": False}},  # DR: the paper's unit targets, no batch rescale
}
SCHEDULES: dict[str, dict[str, Any]] = {
    "full": {"epochs": 200, "milestones": [160, 180], "seeds": [0]},
    "cpu": {"epochs": 30, "milestones": [24, 27], "seeds": [0, 1, 2]},
}
GROUPS = {"many": [0, 2], "medium": [3, 6], "few": [7, 9]}  # the BMLS paper's CIFAR-10 split (its Table 6)
BASE: dict[str, Any] = {
    "model": "resnet32", "num_classes": 10, "data": "cifar10", "imb_ratio": 100,
    "data_args": {"selection": "random", "seed": 0},  # LDAM-DRW's images
    "batch_size": 128, "lr": 0.1, "momentum": 0.9, "weight_decay": 2e-4, "warmup_epochs": 5,
    "warmup_mode": "epoch", "schedule": "step", "lr_gamma": 0.1, "group_ranges": GROUPS, "progress": False,
}
METRICS = ("top1", "many", "medium", "few", "hmean", "gmean", "lowest")
# The papers' top-1 at the full schedule (ResNet-32, CIFAR-10-LT, imbalance 100; see the README for sources).
PAPER_TOP1: dict[str, tuple[float, str]] = {
    "ce_mixup": (72.9, "BMLS paper, Table 2 / 4 (random sampler, FC)"),
    "cbs_mixup": (76.6, "BMLS paper, Table 2"),
    "la": (77.9, "logit-adjustment repository (1241 epochs, TF ResNet-32)"),
    "etf_dr": (76.5, "ETF paper, via BMLS paper Table 5"),
    "bmls_fc": (78.9, "BMLS paper, Table 4"),
    "bmls_ms": (79.7, "BMLS paper, Table 1 / 4"),
    "bmls_ms_wetf": (80.3, "BMLS paper, Table 5"),
}


def row_config(row: str, schedule: str, seed: int, precision: str = "fp32", variant: str | None = None,
               root: str | None = None, output_dir: str | os.PathLike | None = None,
               num_threads: int | None = None, device: str = "auto") -> "Any":
    """The :class:`~ltzoo.engine.config.TrainConfig` of one row of the table.

    Args:
        row: A name of :data:`ROWS`.
        schedule: "full" or "cpu".
        seed: Seed of model init, sampler, mixer and augmentation.
        precision: "fp32", "bf16" or "fp16".
        variant: A name of :data:`VARIANTS` or None.
        root: The CIFAR-10 JPEG tree.
        output_dir: The run folder.
        num_threads: torch CPU threads.
        device: "auto", "cpu" or "cuda".

    Returns:
        The validated config.
    """
    from ltzoo.engine.config import TrainConfig

    if row not in ROWS:
        raise ValueError(f"row must be one of {list(ROWS)}, got {row!r}")
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {list(SCHEDULES)}, got {schedule!r}")
    if variant is not None and variant not in VARIANTS:
        raise ValueError(f"variant must be one of {list(VARIANTS)} or None, got {variant!r}")
    sched = SCHEDULES[schedule]
    values = {**BASE, **ROWS[row], **(VARIANTS[variant] if variant else {}),
              "epochs": sched["epochs"], "milestones": sched["milestones"], "eval_every": sched["epochs"],
              "seed": seed, "precision": precision, "data_root": root, "device": device,
              "output_dir": None if output_dir is None else str(output_dir), "num_threads": num_threads,
              "tag": f"cifar10_lt_r100_{row}"}
    return TrainConfig.from_dict(values)


def run_name(row: str, variant: str | None = None) -> str:
    """The folder name of a row (with its variant)."""
    return row if variant is None else f"{row}+{variant}"


def run_dir(work_dir: str | os.PathLike, schedule: str, row: str, seed: int, precision: str,
            variant: str | None = None) -> Path:
    """The run folder of one (row, variant, seed, precision) under ``work_dir``."""
    return Path(work_dir) / schedule / run_name(row, variant) / f"seed{seed}_{precision}"


class _Timer:
    """Sums training seconds over restarts in ``timing.json`` and prints one line per epoch."""

    def __init__(self, folder: Path, epochs: int) -> None:
        self.path, self.epochs = folder / "timing.json", epochs
        self.before = json.loads(self.path.read_text())["train_s"] if self.path.exists() else 0.0
        self.start = time.perf_counter()

    def total(self) -> float:
        return self.before + time.perf_counter() - self.start

    def on_epoch_end(self, info: dict[str, Any]) -> bool:
        from ltzoo.files import write_bytes_atomic

        record = {"train_s": round(self.total(), 1), "epochs": info["epoch"]}
        write_bytes_atomic(self.path, json.dumps(record).encode())
        print(f"{self.path.parent}: epoch {info['epoch']}/{self.epochs}, {self.total():.0f} s", flush=True)
        return False


def train_row(row: str, schedule: str, seed: int, precision: str, work_dir: str | os.PathLike, root: str,
              variant: str | None = None, num_threads: int | None = 2, device: str = "auto") -> dict[str, Any]:
    """Train (or resume, or skip when done) one run, then evaluate its saved model with ``ltzoo eval``'s code.

    Returns:
        The run's ``done.json`` record.
    """
    from ltzoo.engine.data import build_datasets
    from ltzoo.engine.distributed import resolve_device
    from ltzoo.engine.eval_checkpoint import evaluate_checkpoint
    from ltzoo.files import write_bytes_atomic
    from ltzoo.recipes.supervised import train_supervised

    folder = run_dir(work_dir, schedule, row, seed, precision, variant)
    done = folder / "done.json"
    if done.exists():
        return json.loads(done.read_text())
    folder.mkdir(parents=True, exist_ok=True)
    cfg = row_config(row, schedule, seed, precision, variant, root, folder, num_threads, device)
    train_set, test_set, name = build_datasets(cfg)
    timer = _Timer(folder, cfg.epochs)
    result = train_supervised(cfg, train_set, test_set, callbacks=[timer], resume=True, dataset_name=name)
    train_s = timer.total()
    if result["stopped"] or result["epochs_done"] < cfg.epochs:
        raise RuntimeError(f"{folder} stopped after {result['epochs_done']} of {cfg.epochs} epochs")
    summary = evaluate_checkpoint(folder / "model", data_root=root, out=folder / "eval_metrics.json",
                                  plot=None, device=str(resolve_device(device)))
    record = {"row": row, "variant": variant, "schedule": schedule, "seed": seed, "precision": precision,
              "train_s": round(train_s, 1), "epochs": cfg.epochs,
              "eval_command": f"ltzoo eval {folder / 'model'} --root <cifar10-jpeg>",
              "metrics": {k: summary[k] for k in METRICS}, "per_class": summary["per_class"],
              "class_counts": [int(c) for c in train_set.class_counts], "config": cfg.to_dict(),
              "train_fit": train_fit(folder / "model", root, GROUPS, str(resolve_device(device))),
              "machine": machine()}
    write_bytes_atomic(done, json.dumps(record, indent=1).encode())
    return record


def add_train_fit(work_dir: str | os.PathLike, schedule: str, root: str, record_dir: str | os.PathLike | None = None,
                  device: str = "cpu") -> list[Path]:
    """Measure the training recall (:func:`~benchmarks.cifar10_lt_fit.train_fit`) of finished runs that lack it.

    Every ``done.json`` of a table row under ``work_dir`` without a ``train_fit`` block gets one, in
    the run folder and in its kept record under ``record_dir``.

    Returns:
        The run folders that were measured.
    """
    from ltzoo.files import write_bytes_atomic

    measured = []
    for done in sorted((Path(work_dir) / schedule).glob("*/*/done.json")):
        record = json.loads(done.read_text())
        if record["row"] not in ROWS or record.get("train_fit"):
            continue
        record["train_fit"] = train_fit(done.parent / "model", root, GROUPS, device)
        write_bytes_atomic(done, json.dumps(record, indent=1).encode())
        keep_record(record, record_dir)
        print(f"{done.parent}: training recall mean {record['train_fit']['mean']:.1f}, "
              f"few {record['train_fit']['few']:.1f}", flush=True)
        measured.append(done.parent)
    return measured


RECORDS_DIR = Path(__file__).resolve().parent / "results" / "cifar10_lt_runs"


def record_path(record_dir: str | os.PathLike, record: dict[str, Any]) -> Path:
    """Where a finished run's record is kept under ``record_dir``."""
    return (Path(record_dir) / record["schedule"] / run_name(record["row"], record.get("variant"))
            / f"seed{record['seed']}_{record['precision']}.json")


def keep_record(record: dict[str, Any], record_dir: str | os.PathLike | None = None) -> Path:
    """Write a finished run's record under ``record_dir`` (default :data:`RECORDS_DIR`), atomically.

    Args:
        record: A ``done.json`` record of :func:`train_row` or ``train_btm_row``.
        record_dir: The records' root.

    Returns:
        The record's path.
    """
    from ltzoo.files import write_bytes_atomic

    path = record_path(RECORDS_DIR if record_dir is None else record_dir, record)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, json.dumps(record, indent=1).encode())
    return path


def _run_key(record: dict[str, Any]) -> tuple:
    return record["row"], record.get("variant"), record["seed"], record["precision"]


def load_runs(work_dir: str | os.PathLike, schedule: str,
              record_dir: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """Every finished run of a schedule: ``done.json`` under ``work_dir``, then the kept records of
    ``record_dir`` (default :data:`RECORDS_DIR`) that no run folder has (a run folder wins)."""
    base = Path(work_dir) / schedule
    runs = {_run_key(r): r for r in (json.loads(p.read_text()) for p in sorted(base.glob("*/*/done.json")))}
    kept = Path(RECORDS_DIR if record_dir is None else record_dir) / schedule
    for path in sorted(kept.glob("*/*.json")):
        record = json.loads(path.read_text())
        runs.setdefault(_run_key(record), record)
    return sorted(runs.values(), key=lambda r: (r["row"], str(r.get("variant")), r["seed"], r["precision"]))


def _report_line(rec: dict[str, Any]) -> str:
    m = rec["metrics"]
    return (f"{run_name(rec['row'], rec.get('variant'))} seed {rec['seed']} {rec['precision']}: top-1 {m['top1']:.2f}, "
            f"few {m['few']:.2f}, H-mean {m['hmean']:.2f} ({rec['train_s']:.0f} s)")


def _cmd_run(args: argparse.Namespace) -> int:
    if not args.root:
        raise SystemExit("--root (or LTZOO_CIFAR10_JPEG) must name the CIFAR-10 JPEG tree")
    seeds = args.seeds if args.seeds is not None else SCHEDULES[args.schedule]["seeds"]
    for seed in seeds:  # seed-major: a partial pass still has every row at the first seeds
        for row in args.rows:
            for precision in args.precision:
                variant = None if row in BTM_ROWS else args.variant
                key = {"schedule": args.schedule, "row": row, "variant": variant, "seed": seed, "precision": precision}
                kept = record_path(args.record_dir, key)
                folder = run_dir(args.work_dir, args.schedule, row, seed, precision, variant)
                if kept.is_file() and not (folder / "done.json").exists() and not args.rerun_kept:
                    print(f"{_report_line(json.loads(kept.read_text()))}: kept record, skipped", flush=True)
                    continue
                if row in BTM_ROWS:
                    stage1 = BTM_ROWS[row]["stage1"]  # its saved model is needed, even when its record is kept
                    if not (run_dir(args.work_dir, args.schedule, stage1, seed, precision) / "done.json").exists():
                        keep_record(train_row(stage1, args.schedule, seed, precision, args.work_dir, args.root,
                                              None, args.threads, args.device), args.record_dir)
                    rec = train_btm_row(row, args.schedule, seed, precision, args.work_dir, args.root, args.device)
                else:
                    rec = train_row(row, args.schedule, seed, precision, args.work_dir, args.root, variant,
                                    args.threads, args.device)
                keep_record(rec, args.record_dir)
                print(_report_line(rec), flush=True)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from benchmarks._common import RESULTS_DIR, write_result
    from benchmarks.cifar10_lt_btm import CONTROLS, btm_verdict
    from benchmarks.cifar10_lt_btm import LABELS as BTM_LABELS
    from benchmarks.cifar10_lt_fit import fit_stats, fit_table
    from benchmarks.cifar10_lt_report import group_runs, markdown_table, per_class_figure, seed_stats, summarize_group
    from ltzoo.files import write_bytes_atomic

    groups = group_runs(load_runs(args.work_dir, args.schedule, args.record_dir))
    precision = args.precision[0]
    rows, table, curves, counts = {}, [], [], None
    for row in ROWS:
        runs = groups.get((row, None, precision))
        if not runs:
            continue
        summary = summarize_group(runs)
        paper = PAPER_TOP1.get(row)
        rows[row] = {"label": LABELS[row], "precision": precision, **summary,
                     "paper_top1": None if paper is None else {"top1": paper[0], "source": paper[1]},
                     "train_fit": fit_stats(runs), "config": runs[0]["config"]}
        table.append((LABELS[row], summary, paper_cell(paper, summary, args.schedule)))
        curves.append((LABELS[row], summary["per_class_mean"]))
        counts = runs[0]["class_counts"]
    for row, label in BTM_LABELS.items():
        runs = groups.get((row, None, precision))
        if not runs:
            continue
        summary = summarize_group(runs)
        rows[row] = {"label": label, "precision": precision, **summary, "paper_top1": None,
                     "stage1_row": BTM_ROWS[row]["stage1"], "fc_stage_ran": [r["fc_stage"]["ran"] for r in runs],
                     "finetune_steps_total": runs[0]["finetune_steps_total"],
                     "controls_per_seed": [{"seed": r["seed"], **r["controls"]} for r in runs],
                     "verdict": btm_verdict(runs), "config": runs[0]["config"]}
        table.append((label, summary, "–"))
        for control in CONTROLS:
            stats = {k: seed_stats([r["controls"][control][k] for r in runs]) for k in METRICS}
            table.append((f"&nbsp;&nbsp;control: {control.replace('_', ' ')}", {"stats": stats, "seeds": summary["seeds"]},
                          "–"))
        curves.append((label, summary["per_class_mean"]))
    if not rows:
        raise SystemExit(f"no finished {args.schedule} runs in {precision} under {args.work_dir}")
    sched = SCHEDULES[args.schedule]
    name = f"cifar10_lt_{args.schedule}"
    title = (f"ResNet-32, CIFAR-10-LT r=100, {args.schedule} schedule ({sched['epochs']} epochs), "
             f"{precision}, seed means")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    header = "paper top-1 (ours minus paper)" if args.schedule == "full" else "paper top-1 (the papers' full schedules)"
    text = f"{title}\n\n" + markdown_table(table, header)
    fits = [(LABELS[row], rows[row]["train_fit"], rows[row]) for row in ROWS if rows.get(row, {}).get("train_fit")]
    if fits:
        text += ("\nRecall on the training images themselves (no crop or flip), seed means, beside the test "
                 "recall:\n\n" + fit_table(fits))
    write_bytes_atomic(RESULTS_DIR / f"{name}.md", text.encode())
    write_bytes_atomic(RESULTS_DIR / f"{name}_per_class.png", per_class_figure(curves, counts, title))
    payload = {"data": {"dataset": "CIFAR-10-LT, imbalance 100 (shared JPEG copy, LDAM-DRW's images)",
                        "train_class_counts": counts, "num_test": 10000, "groups": GROUPS},
               "schedule": {"name": args.schedule, "epochs": sched["epochs"], "milestones": sched["milestones"]},
               "rows": rows, "table": f"{name}.md", "plot": f"{name}_per_class.png"}
    print(f"wrote {write_result(name, payload)}")
    print(text)
    return 0


def paper_cell(paper: tuple[float, str] | None, summary: dict[str, Any], schedule: str) -> str:
    """The table's paper column: the paper's top-1, and on the full schedule ours minus it."""
    if paper is None:
        return "–"
    if schedule != "full":
        return f"{paper[0]:.1f}"
    return f"{paper[0]:.1f} ({summary['stats']['top1']['mean'] - paper[0]:+.1f})"


def _cmd_fit(args: argparse.Namespace) -> int:
    if not args.root:
        raise SystemExit("--root (or LTZOO_CIFAR10_JPEG) must name the CIFAR-10 JPEG tree")
    from ltzoo.engine.distributed import resolve_device

    done = add_train_fit(args.work_dir, args.schedule, args.root, args.record_dir, str(resolve_device(args.device)))
    print(f"measured {len(done)} run(s)")
    return 0


def _cmd_publish(args: argparse.Namespace) -> int:
    from benchmarks.cifar10_lt_publish import publish_row

    seed = SCHEDULES[args.schedule]["seeds"][0]
    for row in args.rows:
        out = publish_row(row, args.work_dir, args.schedule, seed, args.precision[0])
        print(f"{row}: {out}")
    print("now update ltzoo/cli/names.py's 'pretrained' entry (see its docstring) and run the tests")
    return 0


def _cmd_config(args: argparse.Namespace) -> int:
    cfg = row_config(args.row, args.schedule, args.seed, args.precision[0], args.variant)
    print(json.dumps({k: v for k, v in cfg.to_dict().items() if v is not None}, indent=1))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("run", "config", "report", "publish", "fit"):
        p = sub.add_parser(name)
        p.add_argument("--schedule", choices=list(SCHEDULES), default="cpu")
        p.add_argument("--precision", nargs="+", choices=["fp32", "bf16", "fp16"], default=["fp32"],
                       help="fp32 by default: bf16 did not keep CE's accuracy (benchmarks/bench_precision_parity.py)")
        p.add_argument("--variant", choices=list(VARIANTS), default=None)
        if name in ("run", "report", "fit"):
            p.add_argument("--record-dir", default=str(RECORDS_DIR),
                           help="where finished runs' records are kept (and read by report)")
        if name == "fit":
            p.add_argument("--work-dir", default="runs/cifar10_lt")
            p.add_argument("--root", default=os.environ.get("LTZOO_CIFAR10_JPEG"))
            p.add_argument("--device", default="auto")
            p.set_defaults(func=_cmd_fit)
        elif name in ("report", "publish"):
            p.add_argument("--work-dir", default="runs/cifar10_lt")
            p.set_defaults(func=_cmd_report if name == "report" else _cmd_publish)
            if name == "publish":
                p.add_argument("--rows", nargs="+", choices=[*ROWS, *BTM_ROWS], default=[*ROWS, *BTM_ROWS])
        elif name == "run":
            p.add_argument("--rows", nargs="+", choices=[*ROWS, *BTM_ROWS], default=[*ROWS, *BTM_ROWS],
                           help="default: every row (a BTM row after its stage-1 row)")
            p.add_argument("--seeds", nargs="+", type=int, default=None, help="default: the schedule's")
            p.add_argument("--root", default=os.environ.get("LTZOO_CIFAR10_JPEG"))
            p.add_argument("--work-dir", default="runs/cifar10_lt", help="run folders (keep outside the repository)")
            p.add_argument("--threads", type=int, default=2)
            p.add_argument("--device", default="auto")
            p.add_argument("--rerun-kept", action="store_true",
                           help="train runs whose record is kept but whose folder is gone (default: skip them)")
            p.set_defaults(func=_cmd_run)
        else:
            p.add_argument("--row", choices=list(ROWS), required=True)
            p.add_argument("--seed", type=int, default=0)
            p.set_defaults(func=_cmd_config)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
