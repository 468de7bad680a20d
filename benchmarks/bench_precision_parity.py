"""bf16 against fp32 on the CIFAR-10-LT CPU schedule: does mixed precision keep the accuracy?

Reads the finished runs of ``benchmarks/cifar10_lt.py`` (rows CE and BMLS + MS, seeds 0-2, each
trained once in fp32 and once with bf16 autocast, both channels-last; 30 epochs, lr x0.1 at 24 and
x0.01 at 27, 5 warm-up epochs) and checks the parity criterion: the seed-mean top-1 within 1 point
and the seed-mean H-mean within 2 points, for both rows. Also reports the training seconds of each
run (evaluation at the end only), i.e. the 30-epoch CPU schedule's wall time.

    python -m benchmarks.cifar10_lt run --schedule cpu --rows ce bmls_ms --precision bf16 fp32 \\
        --work-dir /path/to/runs
    python -m benchmarks.bench_precision_parity --work-dir /path/to/runs
"""
from __future__ import annotations

import argparse

import numpy as np

from benchmarks._common import write_result
from benchmarks.cifar10_lt import LABELS, load_runs
from benchmarks.cifar10_lt_report import group_runs, paired_difference, summarize_group

ROWS = ("ce", "bmls_ms")
LIMITS = {"top1": 1.0, "hmean": 2.0}  # largest allowed |mean bf16 - mean fp32|, in points


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work-dir", default="runs/cifar10_lt")
    p.add_argument("--seeds", type=int, default=3, help="seeds each row and precision must have")
    args = p.parse_args()
    groups = group_runs(load_runs(args.work_dir, "cpu"))
    rows, ok = {}, True
    for row in ROWS:
        bf16, fp32 = groups.get((row, None, "bf16"), []), groups.get((row, None, "fp32"), [])
        if len(bf16) < args.seeds or len(fp32) < args.seeds:
            raise SystemExit(f"{row}: {len(bf16)} bf16 and {len(fp32)} fp32 runs finished; need {args.seeds} each")
        diffs = {k: paired_difference(bf16, fp32, k) for k in ("top1", "hmean", "few", "lowest")}
        passed = all(abs(diffs[k]["mean_difference"]) <= limit for k, limit in LIMITS.items())
        ok &= passed
        rows[row] = {"label": LABELS[row], "bf16": summarize_group(bf16), "fp32": summarize_group(fp32),
                     "bf16_minus_fp32": diffs, "parity": passed,
                     "train_s_mean": {"bf16": round(float(np.mean([r["train_s"] for r in bf16])), 1),
                                      "fp32": round(float(np.mean([r["train_s"] for r in fp32])), 1)}}
        print(f"{LABELS[row]}: top-1 bf16 - fp32 {diffs['top1']['mean_difference']:+.2f}, "
              f"H-mean {diffs['hmean']['mean_difference']:+.2f} -> {'parity' if passed else 'NO parity'}; "
              f"seconds bf16 {rows[row]['train_s_mean']['bf16']:.0f}, fp32 {rows[row]['train_s_mean']['fp32']:.0f}")
    payload = {"schedule": "cpu: 30 epochs, lr x0.1 at 24 and x0.01 at 27, 5 warm-up, evaluation at the end",
               "criterion": {"abs_mean_difference_at_most": LIMITS, "rows": list(ROWS)},
               "parity": ok, "rows": rows}
    print(f"wrote {write_result('precision_parity', payload)}; parity {'holds' if ok else 'fails'}")


if __name__ == "__main__":
    main()
