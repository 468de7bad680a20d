"""bf16 against fp32 on the CIFAR-10-LT CPU schedule: does mixed precision keep the accuracy?

Reads the finished runs of ``benchmarks/cifar10_lt.py`` (rows CE and BMLS + MS, seeds 0-2, each
trained once in fp32 and once with bf16 autocast, both channels-last; 30 epochs, lr x0.1 at 24 and
x0.01 at 27, 5 warm-up epochs) and checks the parity criterion: the seed-mean top-1 within 1 point
and the seed-mean H-mean within 2 points, for both rows. Also reports the training seconds of each
run (evaluation at the end only), i.e. the 30-epoch CPU schedule's wall time, and each run's
final-epoch training loss. With ``--root`` (or ``LTZOO_CIFAR10_JPEG``) it also probes one step:
bf16 against fp32 logits, loss and gradient on a fixed batch at the fp32 CE model's weights.

    python -m benchmarks.cifar10_lt run --schedule cpu --rows ce bmls_ms --precision bf16 fp32 \\
        --work-dir /path/to/runs
    python -m benchmarks.bench_precision_parity --work-dir /path/to/runs --root /path/to/cifar10
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from benchmarks._common import write_result
from benchmarks.cifar10_lt import LABELS, load_runs, run_dir
from benchmarks.cifar10_lt_report import group_runs, paired_difference, summarize_group

ROWS = ("ce", "bmls_ms")
LIMITS = {"top1": 1.0, "hmean": 2.0}  # largest allowed |mean bf16 - mean fp32|, in points


def final_train_loss(work_dir: str, run: dict) -> float | None:
    """The last epoch's mean training loss from the run folder's ``log.json`` (None when absent)."""
    log = run_dir(work_dir, "cpu", run["row"], run["seed"], run["precision"], run.get("variant")) / "log.json"
    if not log.exists():
        return None
    entries = json.loads(Path(log).read_text())
    return round(float(entries[-1]["train_loss"]), 4) if entries else None


def step_agreement(model_dir: str | Path, root: str | Path, images: int = 512, seed: int = 0) -> dict[str, Any]:
    """How far one bf16 step is from the fp32 step on a fixed batch, at a trained model's weights.

    Takes ``images`` training images (a seeded uniform draw, no augmentation), runs the model in train
    mode (batch statistics, as in training) in fp32, under bf16 autocast (the recipes' ``TrainForward``),
    and under bf16 autocast with the classifier in fp32, and compares the logits, the CE loss and the
    gradient of every parameter with the fp32 ones.

    Args:
        model_dir: A saved model folder (``ltzoo eval`` loads the same).
        root: The CIFAR-10 JPEG tree (its ``train`` folder is read).
        images: Batch size of the probe.
        seed: Seed of the image draw.

    Returns:
        Per variant: max and mean |logit difference|, the losses, the gradient cosine and norm ratio.
    """
    import torch
    import torch.nn.functional as F
    from torchvision import datasets, transforms

    from ltzoo.engine.eval_checkpoint import load_for_eval
    from ltzoo.engine.objective import TrainForward

    model = load_for_eval(model_dir)[0].train()
    pc = model.pretrained_cfg
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize(pc["mean"], pc["std"])])
    ds = datasets.ImageFolder(str(Path(root) / "train"), tf)
    idx = np.random.default_rng(seed).choice(len(ds), size=images, replace=False)
    x = torch.stack([ds[int(i)][0] for i in idx])
    y = torch.tensor([ds[int(i)][1] for i in idx])

    def fp32_head(inp: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            feats = model.forward_features(inp)
        return model.forward_head(feats.float())

    variants = {"fp32": TrainForward(model, "fp32"), "bf16": TrainForward(model, "bf16"),
                "bf16_fp32_classifier": fp32_head}
    out = {}
    for name, fwd in variants.items():
        model.zero_grad(set_to_none=True)
        logits = fwd(x)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        grad = torch.cat([q.grad.flatten() for q in model.parameters() if q.grad is not None])
        out[name] = (logits.detach(), float(loss.detach()), grad)
    z0, l0, g0 = out.pop("fp32")
    result: dict[str, Any] = {"images": images, "fp32_loss": round(l0, 5), "max_abs_logit": round(float(z0.abs().max()), 3)}
    for name, (z, loss_value, g) in out.items():
        result[name] = {"max_abs_logit_difference": round(float((z - z0).abs().max()), 4),
                        "mean_abs_logit_difference": round(float((z - z0).abs().mean()), 4),
                        "loss": round(loss_value, 5),
                        "gradient_cosine": round(float(F.cosine_similarity(g, g0, dim=0)), 5),
                        "gradient_norm_ratio": round(float(g.norm() / g0.norm()), 5)}
    return result


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Check parity on the finished runs under ``--work-dir``; returns (and writes) the result payload."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work-dir", default="runs/cifar10_lt")
    p.add_argument("--seeds", type=int, default=3, help="seeds each row and precision must have")
    p.add_argument("--root", default=os.environ.get("LTZOO_CIFAR10_JPEG"),
                   help="CIFAR-10 JPEG tree: also probe one step's bf16 / fp32 agreement at the fp32 CE model")
    args = p.parse_args(argv)
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
                                      "fp32": round(float(np.mean([r["train_s"] for r in fp32])), 1)},
                     "final_train_loss": {"bf16": [final_train_loss(args.work_dir, r) for r in bf16],
                                          "fp32": [final_train_loss(args.work_dir, r) for r in fp32]}}
        print(f"{LABELS[row]}: top-1 bf16 - fp32 {diffs['top1']['mean_difference']:+.2f}, "
              f"H-mean {diffs['hmean']['mean_difference']:+.2f} -> {'parity' if passed else 'NO parity'}; "
              f"seconds bf16 {rows[row]['train_s_mean']['bf16']:.0f}, fp32 {rows[row]['train_s_mean']['fp32']:.0f}")
    payload = {"schedule": "cpu: 30 epochs, lr x0.1 at 24 and x0.01 at 27, 5 warm-up, evaluation at the end",
               "criterion": {"abs_mean_difference_at_most": LIMITS, "rows": list(ROWS)},
               "parity": ok, "rows": rows}
    if args.root:
        probe_model = run_dir(args.work_dir, "cpu", "ce", 0, "fp32") / "model"
        payload["step_agreement_at_ce_seed0_fp32"] = step_agreement(probe_model, args.root)
        print(f"one step at the CE fp32 model: {payload['step_agreement_at_ce_seed0_fp32']}")
    print(f"wrote {write_result('precision_parity', payload)}; parity {'holds' if ok else 'fails'}")
    return payload


if __name__ == "__main__":
    main()
