"""Seed statistics, the markdown table and the per-class plot of the CIFAR-10-LT runs."""
from __future__ import annotations

import io
from typing import Any, Iterable, Sequence

import numpy as np

METRICS = ("top1", "many", "medium", "few", "hmean", "gmean", "lowest")
HEADERS = ("top-1", "many", "medium", "few", "H-mean", "G-mean", "lowest")


def seed_stats(values: Sequence[float]) -> dict[str, Any]:
    """Mean, sample standard deviation (0 for one seed), min and max of one metric over seeds."""
    arr = np.asarray(values, dtype=float)
    std = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    return {"mean": round(float(arr.mean()), 2), "std": round(std, 2), "min": round(float(arr.min()), 2),
            "max": round(float(arr.max()), 2), "n": int(arr.size)}


def group_runs(runs: Iterable[dict[str, Any]]) -> dict[tuple[str, str | None, str], list[dict[str, Any]]]:
    """Runs keyed by (row, variant, precision), each list sorted by seed."""
    out: dict[tuple[str, str | None, str], list[dict[str, Any]]] = {}
    for run in runs:
        out.setdefault((run["row"], run.get("variant"), run["precision"]), []).append(run)
    return {k: sorted(v, key=lambda r: r["seed"]) for k, v in out.items()}


def summarize_group(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Every metric per seed, its seed statistics, and the seconds per run."""
    return {
        "seeds": [r["seed"] for r in runs],
        "per_seed": [{"seed": r["seed"], **{k: round(r["metrics"][k], 2) for k in METRICS}} for r in runs],
        "stats": {k: seed_stats([r["metrics"][k] for r in runs]) for k in METRICS},
        "train_s": [r["train_s"] for r in runs],
        # the CPU / GPU each seed trained on (fp32 sums differ across CPU kinds), None where not recorded
        "trained_on": [(r.get("machine") or {}).get("gpu") or (r.get("machine") or {}).get("cpu") for r in runs],
        "per_class_mean": [round(float(v), 2) for v in np.mean([r["per_class"] for r in runs], axis=0)],
    }


def paired_difference(a: Sequence[dict[str, Any]], b: Sequence[dict[str, Any]], metric: str) -> dict[str, Any]:
    """``a - b`` on the seeds both have: per-seed differences, their mean and the two means."""
    by_seed = {r["seed"]: r["metrics"][metric] for r in b}
    pairs = [(r["seed"], r["metrics"][metric], by_seed[r["seed"]]) for r in a if r["seed"] in by_seed]
    if not pairs:
        raise ValueError(f"no seed is shared by the two groups of runs (metric {metric!r})")
    diffs = [x - y for _, x, y in pairs]
    return {"seeds": [s for s, _, _ in pairs], "differences": [round(d, 2) for d in diffs],
            "mean_difference": round(float(np.mean(diffs)), 2),
            "mean_a": round(float(np.mean([x for _, x, _ in pairs])), 2),
            "mean_b": round(float(np.mean([y for _, _, y in pairs])), 2)}


def markdown_table(rows: Sequence[tuple[str, dict[str, Any], str]], paper_header: str = "paper top-1") -> str:
    """A markdown table: one line per (label, summary, paper cell); cells are seed mean ± std."""
    lines = ["| method | " + " | ".join(HEADERS) + f" | seeds | {paper_header} |",
             "|---|" + "---:|" * len(HEADERS) + "---:|---:|"]
    for label, summary, paper in rows:
        stats = summary["stats"]
        cells = [f"{stats[k]['mean']:.1f} ± {stats[k]['std']:.1f}" if stats[k]["n"] > 1 else f"{stats[k]['mean']:.1f}"
                 for k in METRICS]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {len(summary['seeds'])} | {paper} |")
    return "\n".join(lines) + "\n"


def per_class_figure(rows: Sequence[tuple[str, list[float]]], class_counts: Sequence[int], title: str) -> bytes:
    """A PNG: per-class test accuracy (seed mean) of every row, classes by training frequency."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = np.argsort(-np.asarray(class_counts), kind="stable")
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for label, per_class in rows:
        ax.plot(range(len(order)), np.asarray(per_class)[order], marker="o", label=label)
    ax.set_xticks(range(len(order)))
    ax.set_xticklabels([f"{c}\n({class_counts[c]})" for c in order], fontsize=8)
    ax.set_xlabel("class (training images)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()
