"""How much each delta mapping of BEM Eq. 7 re-balances: tail/head ratio of s_hat, no training.

BEM samples mix-bank partners from s_hat = delta(alpha s + (1 - alpha) s') (Eq. 7) and weights
the unsupervised loss by s_hat^u (Eq. 11). This script builds the ``BEMState`` of the CIFAR-10
LTSSL split N1 = 500, M1 = 4000, gamma_l = 100 (and gamma_u = 100 / 1 / reversed) as the
estimators would hold it once converged, and reads s_hat and s_hat^u under each mapping:

* labeled effective numbers E^x from the exact labeled counts (Eq. 2);
* d^u (Eq. 3) set to the true class shares of the unlabeled split (what the EMA of exact
  pseudo-labels converges to), so E^u = E(M d^u);
* class entropies e^x = e^u equal for every class (a flat s' = 1 / K): without training there
  is no entropy profile to assume, so alpha = 0 isolates what the entropy term does when it
  carries no class information, and alpha = 1 is the quantity term alone.

The reported number is s_hat[tail] / s_hat[head], tail = the class with the fewest labeled
images (class 9), head = class 0; "none" is x = alpha s + (1 - alpha) s' itself (normalised),
the ratio before any mapping. A pure computation (milliseconds); which mapping trains best is
a separate, training measurement.

    python -m benchmarks.bench_bem_mapping        (or: python benchmarks/bench_bem_mapping.py)
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SPLITS = {"consistent": 100.0, "uniform": 1.0, "reversed": 0.01}  # gamma_u (< 1: the flipped profile)
MAPPINGS = {  # name: (delta, temperature); None: no mapping (the ratio before delta)
    "none": None,
    "softmax": ("softmax", 1.0),  # the paper's Appendix B, ltzoo's default
    "softmax_t0.1": ("softmax", 0.1),
    "softmax_t0.05": ("softmax", 0.05),
    "convex": ("convex", 1.0),  # FlexMatch's x / (2 - x) after x / max(x)
}
ALPHAS = (0.0, 0.5, 1.0)


def converged_state(gamma_u: float, alpha: float, delta: str, temperature: float, n1: int = 500, m1: int = 4000,
                    gamma_l: float = 100.0):
    """A ``BEMState`` of the split with d^u = the true unlabeled shares and flat class entropies."""
    import torch

    from ltzoo.data import ltssl_counts
    from ltzoo.losses.bem_state import BEMState

    labeled, unlabeled = ltssl_counts(n1, m1, 10, gamma_l, gamma_u)
    state = BEMState(labeled, sum(unlabeled), alpha=alpha, delta=delta, temperature=temperature)  # beta 0.999
    state.unlabeled_dist.copy_(torch.tensor(unlabeled, dtype=torch.float32) / sum(unlabeled))
    for value, seen in ((state.entropy_labeled, state.entropy_labeled_seen),
                        (state.entropy_unlabeled, state.entropy_unlabeled_seen)):
        value.fill_(1.0)  # any equal value: s' = e / sum(e) = 1 / K
        seen.fill_(True)
    return state, labeled, unlabeled


def ratios(gamma_u: float, mapping: str, alpha: float) -> dict[str, float]:
    """Tail/head ratios of s_hat and s_hat^u (and the quantity term s) for one configuration."""
    delta, temperature = MAPPINGS[mapping] or ("softmax", 1.0)
    state, _, _ = converged_state(gamma_u, alpha, delta, temperature)
    if MAPPINGS[mapping] is None:  # the argument of delta, normalised: the "before" ratio
        state.delta_map = lambda x: x / x.sum()  # type: ignore[method-assign]
    s_hat, s_hat_u = state.s_hat().double(), state.s_hat_unlabeled().double()
    tail = 9
    return {"s_hat_tail_over_head": float(s_hat[tail] / s_hat[0]),
            "s_hat_u_tail_over_head": float(s_hat_u[tail] / s_hat_u[0]),
            "s_hat_max_over_min": float(s_hat.max() / s_hat.min()),
            "s_hat": [round(float(v), 6) for v in s_hat],
            "quantity_s_tail_over_head": float(state.s()[tail] / state.s()[0])}


def main(argv: list[str] | None = None) -> int:
    from benchmarks._common import write_result
    from ltzoo.data import ltssl_counts

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="bem_mapping", help="result file name (benchmarks/results/<name>.json)")
    args = parser.parse_args(argv)
    rows = []
    for split, gamma_u in SPLITS.items():
        for mapping in MAPPINGS:
            for alpha in ALPHAS:
                r = ratios(gamma_u, mapping, alpha)
                rows.append({"split": split, "gamma_u": gamma_u, "mapping": mapping,
                             "temperature": None if MAPPINGS[mapping] is None else MAPPINGS[mapping][1],
                             "alpha": alpha, **r})
    table = {f"{r['mapping']}@alpha={r['alpha']}": round(r["s_hat_tail_over_head"], 3)
             for r in rows if r["split"] == "consistent"}
    labeled, unlabeled = ltssl_counts(500, 4000, 10, 100.0, 100.0)
    path = write_result(args.name, {
        "setting": {"dataset": "CIFAR-10 LTSSL", "n1": 500, "m1": 4000, "gamma_l": 100, "beta": 0.999,
                    "labeled_counts": labeled, "unlabeled_counts_consistent": unlabeled,
                    "unlabeled_dist": "true class shares of the unlabeled split (converged Eq. 3)",
                    "class_entropies": "equal for every class (s' uniform)", "tail_class": 9, "head_class": 0},
        "consistent_s_hat_tail_over_head": table,
        "rows": rows,
    })
    print(f"wrote {path}")
    for key, value in table.items():
        print(f"{key:>24}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
