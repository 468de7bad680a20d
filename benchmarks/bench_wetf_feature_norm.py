"""MS-WETF with and without feature normalisation, BMLS + MS on the CIFAR-10-LT CPU schedule.

The BMLS paper's Appendix F defines W_WETF = s * W_ETF but does not say whether the features are
normalised (BatchNorm1d + L2, as the ETF paper's head does) before it. ``feature_norm=False`` is the
literal reading and the default; this measures both (seeds 0 and 1, bf16, 30 epochs) from the runs
of ``benchmarks/cifar10_lt.py`` (row bmls_ms_wetf and its feature_norm variant). The default changes
only if the difference of the seed means exceeds the spread (max - min) over seeds of both readings.

    python -m benchmarks.cifar10_lt run --schedule cpu --rows bmls_ms_wetf --seeds 0 1 [--variant feature_norm]
    python -m benchmarks.bench_wetf_feature_norm --work-dir /path/to/runs
"""
from __future__ import annotations

import argparse

from benchmarks._common import write_result
from benchmarks.cifar10_lt import load_runs
from benchmarks.cifar10_lt_report import group_runs, paired_difference, summarize_group

KEYS = ("top1", "few", "hmean", "lowest")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work-dir", default="runs/cifar10_lt")
    p.add_argument("--precision", default="bf16")
    p.add_argument("--seeds", type=int, default=2)
    args = p.parse_args()
    groups = group_runs(load_runs(args.work_dir, "cpu"))
    literal = groups.get(("bmls_ms_wetf", None, args.precision), [])
    normed = groups.get(("bmls_ms_wetf", "feature_norm", args.precision), [])
    if len(literal) < args.seeds or len(normed) < args.seeds:
        raise SystemExit(f"{len(literal)} literal and {len(normed)} feature_norm runs finished; need {args.seeds} each")
    literal, normed = literal[:args.seeds], normed[:args.seeds]
    diffs = {k: paired_difference(normed, literal, k) for k in KEYS}
    verdict = {}
    for k in KEYS:
        spread = max(max(r["metrics"][k] for r in g) - min(r["metrics"][k] for r in g) for g in (literal, normed))
        verdict[k] = {"mean_difference": diffs[k]["mean_difference"], "seed_spread": round(spread, 2),
                      "beyond_spread": abs(diffs[k]["mean_difference"]) > spread}
        print(f"{k}: feature_norm - literal {diffs[k]['mean_difference']:+.2f} (seed spread {spread:.2f})")
    change = verdict["top1"]["beyond_spread"] and verdict["top1"]["mean_difference"] > 0
    payload = {"schedule": "cpu: 30 epochs, lr x0.1 at 24 and x0.01 at 27, 5 warm-up", "precision": args.precision,
               "literal": summarize_group(literal), "feature_norm": summarize_group(normed),
               "feature_norm_minus_literal": diffs, "verdict": verdict,
               "default": "feature_norm=True" if change else "feature_norm=False (literal)"}
    print(f"wrote {write_result('wetf_feature_norm', payload)}; default: {payload['default']}")


if __name__ == "__main__":
    main()
