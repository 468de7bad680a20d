"""Training throughput: the model's own step against the full step through each data path, CPU or GPU.

For ResNet-32 on CIFAR-10-LT (imbalance 100, batch 128) and the FixMatch step of WRN-28-2
(batch 64, mu 7: one forward of 64 + 2 x 448 images), in one run:

* ``pure``: forward + backward + SGD on synthetic tensors already in memory (fp32, fp32 +
  channels_last, bf16 autocast + channels_last);
* ``full``: the same step fed by the real data path: the in-memory tensor path (``data_path="tensor"``,
  batched augmentation) and the per-sample torchvision path that the recipes used before
  (``data_path="per_sample"``, fp32, no channels_last), and the ratio full / pure;
* a whole training epoch (seconds, images per second) on each path.

Each measurement runs in a fresh process (its peak memory is its own). With ``--schedule`` it also
trains the 30-epoch CPU schedule of CE (evaluation at the end only) and records its wall time; on
a GPU, ``--schedule full`` times the 200-epoch schedule.

    python -m benchmarks.bench_throughput --root /path/to/cifar10 [--schedule cpu]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

RESNET_BATCH, FIXMATCH_BATCH, MU = 128, 64, 7


def _data(root: str, data_path: str):
    from ltzoo.engine.config import TrainConfig
    from ltzoo.engine.data import build_datasets

    cfg = TrainConfig(data="cifar10", data_root=root, imb_ratio=100, data_path=data_path)
    train, test, _ = build_datasets(cfg)
    return train, test


def _time_steps(step, n: int, warmup: int = 2) -> list[float]:
    import torch

    for _ in range(warmup):
        step()
    times = []
    for _ in range(n):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        step()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return sorted(times)


def measure(kind: str, precision: str, channels_last: bool, root: str, steps: int, device: str) -> dict:
    """One measurement in this process: ``kind`` is pure_resnet, full_resnet_tensor, full_resnet_per_sample,
    epoch_resnet_tensor, epoch_resnet_per_sample, pure_fixmatch, full_fixmatch."""
    import torch

    import ltzoo
    from benchmarks._common import peak_rss_mb
    from ltzoo.engine.builders import build_loss, build_train_loader, epoch_generator
    from ltzoo.engine.epoch import to_device, train_one_epoch
    from ltzoo.engine.objective import TrainForward, compute_loss

    torch.manual_seed(0)
    dev = torch.device(device)
    arch = "wrn_28_2" if "fixmatch" in kind else "resnet32"
    model = ltzoo.create_model(arch, num_classes=10).to(dev)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    forward = TrainForward(model, precision, channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    loss_fn = build_loss("ce", model, [10] * 10)
    out: dict = {"kind": kind, "precision": precision, "channels_last": channels_last, "arch": arch, "device": device}

    def sgd(batch):
        loss = compute_loss(forward, loss_fn, batch).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    if kind.startswith("pure"):
        n = RESNET_BATCH if arch == "resnet32" else FIXMATCH_BATCH * (1 + 2 * MU)
        batch = (torch.randn(n, 3, 32, 32, device=dev), torch.randint(0, 10, (n,), device=dev))
        times = _time_steps(lambda: sgd(batch), steps)
        out.update(step_s=times[len(times) // 2], images_per_step=n)
    elif kind.startswith(("full_resnet", "epoch_resnet")):
        path = "tensor" if kind.endswith("tensor") else "per_sample"
        train, _ = _data(root, path)
        sampler = ltzoo.create_sampler("random", labels=train.targets, seed=0)
        workers = 0 if path == "tensor" else None
        loader = build_train_loader(train, sampler, RESNET_BATCH, workers, True, data_path=path, device=dev)
        loader.generator = epoch_generator(0, 0)
        if kind.startswith("full"):
            it = iter(loader)
            times = _time_steps(lambda: sgd(to_device(next(it), dev)), min(steps, len(loader) - 3))
            out.update(step_s=times[len(times) // 2], images_per_step=RESNET_BATCH)
        else:
            t0 = time.perf_counter()
            stats = train_one_epoch(forward, loss_fn, loader, opt, None, dev)
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            seconds = time.perf_counter() - t0
            out.update(epoch_s=seconds, steps=stats["steps"], images_per_s=stats["steps"] * RESNET_BATCH / seconds)
    elif kind == "full_fixmatch":
        from ltzoo.engine.ssl_config import SSLConfig
        from ltzoo.engine.ssl_data import make_ltssl_split
        from ltzoo.recipes.fixmatch import _build

        full, _ = _data(root, "per_sample")
        labeled, unlabeled = make_ltssl_split(full, n1=500, m1=4000, gamma_l=100, gamma_u=100, seed=0)
        cfg = SSLConfig(model="wrn_28_2", data="cifar10", precision=precision, channels_last=channels_last,
                        iters_per_epoch=steps + 3, epochs=1, device=device, num_workers=None)
        from ltzoo.engine.distributed import DistInfo
        run = _build(cfg, labeled, unlabeled, labeled.class_counts, DistInfo(0, 1, 0, dev))
        from ltzoo.recipes.fixmatch import _fixmatch_loss
        fwd = run.parts.train_forward()
        pairs = zip(run.labeled_loader, run.unlabeled_loader)

        def step():
            lab, unl = next(pairs)
            loss, _ = _fixmatch_loss(run, fwd, to_device(lab, dev), to_device(unl, dev))
            run.parts.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            run.parts.optimizer.step()

        times = _time_steps(step, steps)
        out.update(step_s=times[len(times) // 2], images_per_step=FIXMATCH_BATCH * (1 + 2 * MU),
                   loader_workers=run.labeled_loader.num_workers)
    else:
        raise ValueError(f"unknown kind {kind!r}")
    out["peak_rss_mb"] = peak_rss_mb()
    if torch.cuda.is_available():
        out["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def _schedule(root: str, schedule: str, device: str, precision: str) -> dict:
    from ltzoo.engine.config import TrainConfig
    from ltzoo.engine.data import build_datasets
    from ltzoo.recipes.supervised import train_supervised

    epochs, milestones = (30, [24, 27]) if schedule == "cpu" else (200, [160, 180])
    cfg = TrainConfig(model="resnet32", data="cifar10", data_root=root, imb_ratio=100, epochs=epochs,
                      milestones=milestones, eval_every=epochs, precision=precision, device=device, save_model=False,
                      progress=False, seed=0)
    train, test, _ = build_datasets(cfg)
    t0 = time.perf_counter()
    result = train_supervised(cfg, train, test)
    return {"schedule": schedule, "epochs": epochs, "precision": precision, "wall_s": time.perf_counter() - t0,
            "top1": result["metrics"]["top1"], "hmean": result["metrics"]["hmean"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--root", default=os.environ.get("LTZOO_CIFAR10_JPEG"), help="CIFAR-10 JPEG tree (train/, test/)")
    p.add_argument("--steps", type=int, default=10, help="timed steps per measurement (after 2 warm-up steps)")
    p.add_argument("--schedule", choices=("none", "cpu", "full"), default="none")
    p.add_argument("--schedule-precision", choices=("fp32", "bf16", "fp16"), default="bf16")
    p.add_argument("--device", default="cuda" if _has_cuda() else "cpu")
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: one measurement, JSON on stdout
    args = p.parse_args()
    if args.one:
        kind, precision, cl = args.one.split(":")
        print(json.dumps(measure(kind, precision, cl == "1", args.root, args.steps, args.device)))
        return
    if not args.root:
        sys.exit("--root (or LTZOO_CIFAR10_JPEG) must name the CIFAR-10 JPEG tree")
    from benchmarks._common import run_isolated, write_result

    bf16 = "bf16"
    plan = [("pure_resnet", "fp32", 0), ("pure_resnet", "fp32", 1), ("pure_resnet", bf16, 1),
            ("full_resnet_per_sample", "fp32", 0), ("full_resnet_tensor", "fp32", 1), ("full_resnet_tensor", bf16, 1),
            ("epoch_resnet_per_sample", "fp32", 0), ("epoch_resnet_tensor", "fp32", 1),
            ("epoch_resnet_tensor", bf16, 1),
            ("pure_fixmatch", "fp32", 0), ("pure_fixmatch", bf16, 1),
            ("full_fixmatch", "fp32", 0), ("full_fixmatch", bf16, 1)]
    rows = []
    for kind, precision, cl in plan:
        extra = ["--steps", str(max(3, args.steps // 3) if "fixmatch" in kind else args.steps)]
        row = run_isolated("benchmarks.bench_throughput", ["--root", args.root, "--device", args.device,
                                                             "--one", f"{kind}:{precision}:{cl}", *extra])
        print(json.dumps(row), flush=True)
        rows.append(row)
    key = {(r.get("kind"), r.get("precision"), r.get("channels_last")): r for r in rows}

    def get(kind, precision, cl, field):
        return key.get((kind, precision, bool(cl)), {}).get(field)

    summary = {
        "resnet32_pure_step_s": {"fp32": get("pure_resnet", "fp32", 0, "step_s"),
                                 "fp32_channels_last": get("pure_resnet", "fp32", 1, "step_s"),
                                 "bf16_channels_last": get("pure_resnet", bf16, 1, "step_s")},
        "resnet32_full_step_s": {"per_sample_fp32": get("full_resnet_per_sample", "fp32", 0, "step_s"),
                                 "tensor_fp32_channels_last": get("full_resnet_tensor", "fp32", 1, "step_s"),
                                 "tensor_bf16_channels_last": get("full_resnet_tensor", bf16, 1, "step_s")},
        "resnet32_epoch_s": {"per_sample_fp32": get("epoch_resnet_per_sample", "fp32", 0, "epoch_s"),
                             "tensor_fp32_channels_last": get("epoch_resnet_tensor", "fp32", 1, "epoch_s"),
                             "tensor_bf16_channels_last": get("epoch_resnet_tensor", bf16, 1, "epoch_s")},
        "fixmatch_wrn28_2_step_s": {"pure_fp32": get("pure_fixmatch", "fp32", 0, "step_s"),
                                    "pure_bf16_channels_last": get("pure_fixmatch", bf16, 1, "step_s"),
                                    "per_sample_fp32": get("full_fixmatch", "fp32", 0, "step_s"),
                                    "per_sample_bf16_channels_last": get("full_fixmatch", bf16, 1, "step_s")},
    }
    ratios = {}
    for prec, cl in (("fp32", 1), (bf16, 1)):
        full, pure = get("full_resnet_tensor", prec, cl, "step_s"), get("pure_resnet", prec, cl, "step_s")
        if full and pure:
            ratios[f"resnet32_full_over_pure_{prec}_channels_last"] = full / pure
    old, new = get("full_fixmatch", "fp32", 0, "step_s"), get("full_fixmatch", bf16, 1, "step_s")
    if old and new:
        ratios["fixmatch_speedup_bf16_channels_last_over_per_sample_fp32"] = old / new
    old, new = get("epoch_resnet_per_sample", "fp32", 0, "epoch_s"), get("epoch_resnet_tensor", bf16, 1, "epoch_s")
    if old and new:
        ratios["resnet32_epoch_speedup_tensor_bf16_over_per_sample_fp32"] = old / new
    payload = {"settings": {"resnet_batch": RESNET_BATCH, "fixmatch_batch": FIXMATCH_BATCH, "mu": MU,
                            "data": "CIFAR-10-LT imbalance 100 (JPEG tree)", "steps": args.steps},
               "summary": summary, "ratios": ratios,
               "targets_cpu": {"resnet32_epoch_s_bf16": 15, "full_over_pure": 1.10, "cpu_schedule_minutes": 8,
                               "fixmatch_speedup": 1.7},
               "rows": rows}
    if args.schedule != "none":
        payload["schedule_run"] = _schedule(args.root, args.schedule, args.device, args.schedule_precision)
    path = write_result("throughput" + ("_gpu" if args.device.startswith("cuda") else ""), payload)
    print(json.dumps({"summary": summary, "ratios": ratios}, indent=2))
    print(f"written {path}")


def _has_cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


if __name__ == "__main__":
    main()
