"""The ``ltzoo demo`` table as a result file: CE vs logit adjustment vs BMLS+MS on digits-LT.

Runs :func:`ltzoo.recipes.demo.run_demo` with its defaults (digits-LT imbalance 20, small_cnn,
20 epochs, seeds 0, 1, 2) and records every run and the seed means, with the wall time of the
whole demo against its 3-minute budget.

    python -m benchmarks.bench_demo
"""
from __future__ import annotations

import time

from benchmarks._common import write_result
from ltzoo.recipes.demo import demo_config, run_demo, summarize_demo

if __name__ == "__main__":
    start = time.perf_counter()
    rows = run_demo()
    wall = time.perf_counter() - start
    cfg = demo_config()
    path = write_result("demo", {
        "setup": {"data": f"digits_lt, imbalance {cfg.imb_ratio:g}, images resampled to 16x16",
                  "model": cfg.model, "epochs": cfg.epochs, "batch_size": cfg.batch_size, "lr": cfg.lr,
                  "seeds": [0, 1, 2], "groups": "many > 100, few < 20 training images"},
        "wall_time_s": wall,
        "budget_s": 180.0,
        "ratio_to_budget": wall / 180.0,
        "means": summarize_demo(rows),
        "runs": [{k: v for k, v in r.items() if k != "per_class"} for r in rows],
    })
    print(f"wrote {path}")
