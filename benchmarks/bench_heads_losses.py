"""Cost of each head/loss pairing and of the O(K) mixed-label loss.

Part 1: time and peak memory of one SGD training step of ResNet-32 (batch 128, 32x32, 10
classes) with every registered head/loss pairing, against FC + cross-entropy measured in the
same run (ratio). Part 2: the mixed-singleton loss alone (forward + backward on (B, K) logits)
at K = 10, 100, 1000, 8142 against the brute-force form that builds all K(K-1)/2 mixed logits,
where that still fits in memory.

Each measurement runs in a fresh process so its peak resident memory is its own.

    python -m benchmarks.bench_heads_losses
"""
from __future__ import annotations

import argparse
import json
import sys

STEP_CONFIGS = [
    ("fc", "ce"), ("fc", "logit_adjusted"), ("fc", "balanced_softmax"), ("fc", "class_balanced"),
    ("fc", "udal"), ("fc", "ecb"), ("etf", "dot_regression"), ("wetf", "ce"),
    ("ms", "mixed_singleton"), ("ms_wetf", "mixed_singleton"),
]
LOSS_KS = [10, 100, 1000, 8142]
BRUTE_FORCE_LIMIT_BYTES = 4 * 2**30  # skip brute force when its (B, K(K-1)/2) tensors exceed this


def _build_loss(name: str, model, counts):
    import ltzoo
    from ltzoo.losses.bem_state import BEMState

    if name == "dot_regression":
        return ltzoo.create_loss(name, head=model.get_classifier())
    if name == "udal":
        return ltzoo.create_loss(name, class_counts=counts, total_steps=100)
    if name == "ecb":
        return ltzoo.create_loss(name, state=BEMState(counts, num_unlabeled=10 * int(counts.sum())))
    if name == "mixed_singleton":
        return ltzoo.create_loss(name)
    if name == "ce":
        return ltzoo.create_loss(name)
    return ltzoo.create_loss(name, class_counts=counts)


def worker_step(head: str, loss_name: str, batch: int = 128, repeats: int = 5) -> dict:
    """One measured training step configuration (runs inside a fresh process)."""
    import torch

    import ltzoo
    from benchmarks._common import peak_rss_mb, time_call

    torch.manual_seed(0)
    counts = torch.tensor(ltzoo.data.long_tailed_counts(5000, 10, 100), dtype=torch.float32)
    model = ltzoo.create_model("resnet32", head=head, num_classes=10)
    loss_fn = _build_loss(loss_name, model, counts)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, 3, 32, 32)
    y = torch.randint(0, 10, (batch,))
    y2 = (y + torch.randint(1, 10, (batch,))) % 10
    lam = torch.rand(batch)
    base_rss = peak_rss_mb()

    def step():
        opt.zero_grad(set_to_none=True)
        if loss_name == "dot_regression":
            loss = loss_fn(model.forward_head(model.forward_features(x), pre_logits=True), y)
        elif loss_name == "mixed_singleton":
            loss = loss_fn(model(x), y, y2, lam)
        else:
            loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    timing = time_call(step, repeats=repeats, warmup=1)
    return {**timing, "peak_rss_mb": peak_rss_mb(), "rss_over_baseline_mb": peak_rss_mb() - base_rss}


def _brute_force_mixed_loss(logits, y_a, y_b, lam):
    import torch

    k = logits.shape[1]
    a, b = torch.triu_indices(k, k, offset=1)
    lo, hi = torch.minimum(y_a, y_b), torch.maximum(y_a, y_b)
    lam = torch.where(y_a <= y_b, lam, 1 - lam)[:, None]  # lam is the weight of the smaller label
    mixed = lam * logits[:, a] + (1 - lam) * logits[:, b]  # (B, K(K-1)/2), BMLS Eq. 3
    target = lo * k - lo * (lo + 1) // 2 + (hi - lo - 1)
    return torch.nn.functional.cross_entropy(mixed, target)


def worker_loss(form: str, k: int, batch: int = 128, repeats: int = 5) -> dict:
    """Mixed-label loss forward + backward at K classes (runs inside a fresh process)."""
    import torch

    import ltzoo
    from benchmarks._common import peak_rss_mb, time_call

    torch.manual_seed(0)
    logits = torch.randn(batch, k, requires_grad=True)
    y_a = torch.randint(0, k, (batch,))
    y_b = (y_a + torch.randint(1, k, (batch,))) % k
    lam = torch.rand(batch)
    loss_fn = ltzoo.create_loss("mixed_singleton")
    fn = loss_fn if form == "factorised" else _brute_force_mixed_loss
    base_rss = peak_rss_mb()

    def step():
        logits.grad = None
        fn(logits, y_a, y_b, lam).backward()

    timing = time_call(step, repeats=repeats, warmup=1)
    return {**timing, "peak_rss_mb": peak_rss_mb(), "rss_over_baseline_mb": peak_rss_mb() - base_rss}


def main() -> None:
    from benchmarks._common import run_isolated, write_result

    steps = {}
    for head, loss in STEP_CONFIGS:
        steps[f"{head}+{loss}"] = run_isolated("benchmarks.bench_heads_losses", ["--worker", "step", head, loss])
        print(f"{head}+{loss}: {steps[f'{head}+{loss}']}", flush=True)
    base = steps["fc+ce"]
    for key, rec in steps.items():
        if "median_s" in rec and "median_s" in base:
            rec["time_ratio_vs_fc_ce"] = rec["min_s"] / base["min_s"]  # min: least disturbed by other load
            rec["peak_rss_ratio_vs_fc_ce"] = rec["peak_rss_mb"] / base["peak_rss_mb"]

    losses = {}
    for k in LOSS_KS:
        entry = {"factorised": run_isolated("benchmarks.bench_heads_losses", ["--worker", "loss", "factorised", str(k)])}
        brute_bytes = 128 * (k * (k - 1) // 2) * 4 * 3  # mixed logits, softmax and grad, float32
        if brute_bytes <= BRUTE_FORCE_LIMIT_BYTES:
            entry["brute_force"] = run_isolated("benchmarks.bench_heads_losses", ["--worker", "loss", "brute", str(k)])
            if "median_s" in entry["brute_force"] and "median_s" in entry["factorised"]:
                entry["time_ratio_factorised_vs_brute"] = entry["factorised"]["min_s"] / entry["brute_force"]["min_s"]
                entry["rss_over_baseline_ratio_factorised_vs_brute"] = (
                    entry["factorised"]["rss_over_baseline_mb"] / max(entry["brute_force"]["rss_over_baseline_mb"], 1e-3))
        else:
            entry["brute_force"] = {"skipped": f"needs about {brute_bytes / 2**30:.1f} GiB for its (B, K(K-1)/2) tensors"}
        losses[str(k)] = entry
        print(f"K={k}: {entry}", flush=True)

    path = write_result("heads_losses", {
        "setup": {"step": "ResNet-32, batch 128, 32x32, 10 classes, SGD momentum; median of 5 steps after 1 warm-up",
                  "mixed_loss": "batch 128, forward + backward on (B, K) logits; median of 5 after 1 warm-up",
                  "baseline": "fc+ce (training step); brute-force K(K-1)/2 mixed logits (mixed loss)",
                  "ratios": "of the minimum times (least disturbed by other load on the machine)"},
        "training_step": steps,
        "mixed_singleton_loss": losses,
    })
    print(f"wrote {path}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, *rest = args.worker
        result = worker_step(*rest) if kind == "step" else worker_loss(rest[0], int(rest[1]))
        print(json.dumps(result))
        sys.exit(0)
    main()
