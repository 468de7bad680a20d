"""Does ``torch.compile`` speed up the ResNet-32 CIFAR training step? Eager vs compiled, in one run.

The pure step (forward + backward + SGD on a synthetic batch of 128 already in memory, 10 classes)
of ResNet-32 with bf16 autocast + channels_last and in fp32 + channels_last, eager and under
``torch.compile`` (inductor, default mode). Each measurement runs in a fresh process; the compiled
one records its compile time (the first two steps) separately from the timed steps. ltzoo's
training recipes run eagerly unless ``TrainConfig.compile`` (``ltzoo train --compile``) is set; this
measures whether setting it pays on this machine.

    python -m benchmarks.bench_compile [--steps 30]
"""
from __future__ import annotations

import argparse
import json
import sys
import time


def measure(precision: str, compiled: bool, steps: int) -> dict:
    import torch

    import ltzoo
    from benchmarks._common import peak_rss_mb, time_call
    from ltzoo.engine.objective import TrainForward

    torch.manual_seed(0)
    model = ltzoo.create_model("resnet32", num_classes=10).to(memory_format=torch.channels_last)
    forward = TrainForward(model, precision, channels_last=True)
    run = torch.compile(forward) if compiled else forward
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=2e-4)
    x, y = torch.randn(128, 3, 32, 32), torch.randint(0, 10, (128,))

    def step():
        loss = torch.nn.functional.cross_entropy(run(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    t0 = time.perf_counter()
    step()
    step()
    warmup = time.perf_counter() - t0
    timed = time_call(step, repeats=steps, warmup=0)
    return {"precision": precision, "channels_last": True, "compiled": compiled, "first_two_steps_s": warmup,
            "step_s": timed["median_s"], "min_step_s": timed["min_s"], "steps": steps, "peak_rss_mb": peak_rss_mb()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: "precision,compiled"
    args = p.parse_args()
    if args.one:
        precision, compiled = args.one.split(",")
        print(json.dumps(measure(precision, compiled == "1", args.steps)))
        return
    from benchmarks._common import run_isolated, write_result

    rows = [run_isolated("benchmarks.bench_compile", ["--one", f"{prec},{c}", "--steps", str(args.steps)])
            for prec in ("bf16", "fp32") for c in (0, 1)]
    for r in rows:
        if "error" in r:
            sys.exit(f"a measurement failed: {r['error']}")
        print(r)
    ratios = {}
    for prec in ("bf16", "fp32"):
        eager, comp = (next(r for r in rows if r["precision"] == prec and r["compiled"] == c) for c in (False, True))
        ratios[f"{prec}_compiled_over_eager"] = comp["step_s"] / eager["step_s"]
    payload = {"settings": {"arch": "resnet32", "batch": 128, "channels_last": True, "steps": args.steps},
               "rows": rows, "ratios": ratios}
    print(ratios)
    print(f"wrote {write_result('compile', payload)}")


if __name__ == "__main__":
    main()
