"""Cost of planning one BMLS epoch (balanced mixed-label index pairs) at three dataset scales.

Scales: CIFAR-10-LT (K = 10, N = 12,406), CIFAR-100-LT (K = 100, N = 10,847) and iNaturalist
(K = 8142, N = 437,513; a synthetic exponential long-tailed profile with that K and N, every
class non-empty). For each scale, the "bmls" epoch plan is timed (``time_call``) and its peak
memory measured, against the "class_balanced" sampler's epoch at the same N (the baseline,
ratio BMLS / baseline) and, at the CIFAR scales only, a naive planner that lists all
K(K-1)/2 pairs. Each configuration runs in a fresh process (``run_isolated``), so its peak
RSS is its own; memory is reported as the peak-RSS delta over the post-import baseline, and
as the exact peak of numpy allocations (tracemalloc) during one plan. Target: the
iNaturalist-scale epoch planned in under 2 s and 100 MB.

    python -m benchmarks.bench_bmls        (or: python benchmarks/bench_bmls.py)
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SCALES = {  # name: (K, N, n_max, imbalance ratio); CIFAR counts follow LDAM-DRW's profile
    "cifar10_lt": (10, 12_406, 5000, 100.0),
    "cifar100_lt": (100, 10_847, 500, 100.0),
    "inaturalist": (8142, 437_513, None, 500.0),
}
METHODS = ("bmls", "class_balanced", "naive_pairs")
NAIVE_SCALES = ("cifar10_lt", "cifar100_lt")
TARGET = {"scale": "inaturalist", "max_seconds": 2.0, "max_memory_mb": 100.0}


def synthetic_counts(k: int, n: int, imb_ratio: float) -> list[int]:
    """Exponential long-tailed counts, largest first, summing to exactly n, each >= 1."""
    import numpy as np

    w = imb_ratio ** (-np.arange(k) / max(k - 1, 1))
    counts = 1 + np.floor((n - k) * w / w.sum()).astype(np.int64)
    counts[: n - int(counts.sum())] += 1  # the rounding remainder goes to the head classes
    return counts.tolist()


def scale_labels(scale: str):
    """Shuffled int64 labels of one scale."""
    import numpy as np

    from ltzoo.data.profiles import long_tailed_counts

    k, n, n_max, imb = SCALES[scale]
    counts = long_tailed_counts(n_max, k, imb) if n_max else synthetic_counts(k, n, imb)
    assert sum(counts) == n and min(counts) >= 1, (scale, sum(counts), min(counts))
    return np.random.default_rng(0).permutation(np.repeat(np.arange(k), counts))


def naive_plan(sampler, epoch: int):
    """Balanced pairs by listing all K(K-1)/2 label pairs: O(K^2 + N) time and memory."""
    import numpy as np

    rng = sampler.epoch_rng(epoch)
    a, b = np.triu_indices(sampler.num_classes, k=1)
    p = len(a)
    reps, rem = divmod(sampler.num_samples, p)
    chosen = np.concatenate([np.tile(np.arange(p), reps), rng.choice(p, rem, replace=False)])
    rng.shuffle(chosen)
    return np.stack([sampler.draw_from_classes(a[chosen], rng), sampler.draw_from_classes(b[chosen], rng)], 1)


def worker(method: str, scale: str, repeats: int = 5) -> dict:
    """Measure one (method, scale) configuration; runs inside a fresh process."""
    import time
    import tracemalloc

    import numpy as np  # noqa: F401
    import torch  # noqa: F401

    import ltzoo  # noqa: F401
    import ltzoo.samplers.bmls  # noqa: F401  (registers "bmls")
    import ltzoo.samplers.class_aware  # noqa: F401  (registers "class_balanced")
    from benchmarks._common import peak_rss_mb, time_call
    from ltzoo.registry import SAMPLERS

    baseline = peak_rss_mb()
    labels = scale_labels(scale)
    start = time.perf_counter()
    sampler = SAMPLERS.create("class_balanced" if method == "naive_pairs" else method, labels=labels, seed=0)
    construct_s = time.perf_counter() - start
    plan = (lambda e: naive_plan(sampler, e)) if method == "naive_pairs" else sampler.plan
    epochs = iter(range(10**9))
    timing = time_call(lambda: plan(next(epochs)), repeats=repeats, warmup=1)
    rss_delta = peak_rss_mb() - baseline
    tracemalloc.start()
    plan(10**6)
    traced = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    k, n = SCALES[scale][:2]
    return {
        "method": method, "scale": scale, "num_classes": k, "num_samples": n,
        "num_mixed_labels": k * (k - 1) // 2, "construct_s": construct_s, "plan_time": timing,
        "rss_baseline_mb": baseline, "rss_delta_mb": rss_delta, "plan_alloc_peak_mb": traced,
    }


def main() -> None:
    """Run every configuration in its own process and write benchmarks/results/bmls_plan.json."""
    from benchmarks._common import run_isolated, write_result

    results: dict[str, dict] = {}
    for scale in SCALES:
        entry = {}
        for method in METHODS:
            if method == "naive_pairs" and scale not in NAIVE_SCALES:
                continue
            entry[method] = run_isolated("benchmarks.bench_bmls", ["--worker", method, scale])
        bm, base = entry["bmls"], entry["class_balanced"]
        if "error" not in bm and "error" not in base:
            entry["ratio_bmls_over_class_balanced"] = _ratios(bm, base)
            naive = entry.get("naive_pairs")
            if naive and "error" not in naive:
                entry["ratio_bmls_over_naive_pairs"] = _ratios(bm, naive)
        results[scale] = entry
    inat = results[TARGET["scale"]]["bmls"]
    verdict = None
    if "error" not in inat:
        verdict = {
            "plan_median_s": inat["plan_time"]["median_s"], "rss_delta_mb": inat["rss_delta_mb"],
            "plan_alloc_peak_mb": inat["plan_alloc_peak_mb"],
            "meets_time": inat["plan_time"]["median_s"] < TARGET["max_seconds"],
            "meets_memory": max(inat["rss_delta_mb"], inat["plan_alloc_peak_mb"]) < TARGET["max_memory_mb"],
        }
    path = write_result("bmls_plan", {
        "description": __doc__.strip().splitlines()[0], "target": TARGET, "target_result": verdict,
        "memory_note": "rss_delta_mb: peak RSS after construction + timed plans minus the post-import "
                       "peak (includes the labels); plan_alloc_peak_mb: tracemalloc peak of one plan",
        "results": results,
    })
    for scale, entry in results.items():
        for method in METHODS:
            r = entry.get(method)
            if r is None:
                continue
            if "error" in r:
                print(f"{scale:12s} {method:15s} ERROR {r['error']}")
                continue
            print(f"{scale:12s} {method:15s} plan {1e3 * r['plan_time']['median_s']:9.2f} ms  "
                  f"rss +{r['rss_delta_mb']:7.1f} MB  alloc peak {r['plan_alloc_peak_mb']:7.1f} MB")
    print("target:", json.dumps(verdict))
    print("wrote", path)


def _ratios(num: dict, den: dict) -> dict:
    """Time and memory ratios num / den."""
    return {
        "time": num["plan_time"]["median_s"] / den["plan_time"]["median_s"],
        "alloc_peak": num["plan_alloc_peak_mb"] / max(den["plan_alloc_peak_mb"], 1e-9),
        "rss_delta": num["rss_delta_mb"] / den["rss_delta_mb"] if den["rss_delta_mb"] > 0 else None,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--worker", nargs=2, metavar=("METHOD", "SCALE"), help="measure one configuration")
    args = parser.parse_args()
    if args.worker:
        method, scale = args.worker
        if method not in METHODS or scale not in SCALES:
            parser.error(f"--worker takes METHOD in {METHODS} and SCALE in {tuple(SCALES)}")
        print(json.dumps(worker(method, scale)))
    else:
        main()
