"""Cost per batch of the box mixers, against CutMix measured in the same run (ratios).

Part 1 (batch 64, 32x32, ResNet-32 with an FC head): CutMix, Mixup, SaliencyMix and CamMix.
CamMix is timed (a) with ``partner_features`` given, i.e. its cost beyond the partner forward
that BEM's recipe already makes for pseudo-labels (Algorithm 2 line 2), with and without the
pseudo-labels (without them it reruns the pooling + head in eval mode); (b) without features,
so it runs that forward itself (no_grad, eval mode); the forward alone is timed too. Also:
CamMix's two stages (the CAM itself; the scipy connected-region search) and Grad-CAM variants
(on the backbone output, and on stage 2, which needs a backward through stage 3).
Part 2 (batch 64, 224x224): SaliencyMix (saliency at 64 px, and at full size) vs CutMix.

    python -m benchmarks.bench_mixers [--repeats 10] [--rounds 3] [--device cpu]
"""
from __future__ import annotations

import argparse
from typing import Any, Callable

import torch

import ltzoo
from benchmarks._common import time_call, write_result
from ltzoo.mixers.cam import class_activation_map, largest_region_boxes
from ltzoo.mixers.cammix import CamMix
from ltzoo.mixers.cutmix import CutMix
from ltzoo.mixers.mixup import Mixup
from ltzoo.mixers.saliencymix import SaliencyMix

BATCH = 64


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _timed_cases(cases: dict[str, Callable[[], Any]], device: torch.device, repeats: int,
                 rounds: int) -> dict[str, dict[str, float]]:
    """``time_call`` each case in ``rounds`` interleaved rounds (so that load from other processes
    on a shared machine hits every case alike); median of the round medians, overall minimum."""
    def synced(fn: Callable[[], Any]) -> Callable[[], None]:
        def call() -> None:
            fn()
            _sync(device)
        return call

    per_round: dict[str, list[dict[str, float]]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, fn in cases.items():
            per_round[name].append(time_call(synced(fn), repeats=repeats, warmup=1))
    out = {}
    for name, runs in per_round.items():
        medians = sorted(r["median_s"] for r in runs)
        out[name] = {"median_s": medians[len(medians) // 2], "min_s": min(r["min_s"] for r in runs),
                     "repeats": repeats * rounds}
    return out


def _with_ratios(results: dict[str, dict[str, float]], baseline: str) -> dict[str, dict[str, float]]:
    """Each case's median and minimum time divided by the baseline's."""
    base = results[baseline]
    return {name: {stat: r[stat] / base[stat] for stat in ("median_s", "min_s")}
            for name, r in results.items() if name != baseline}


def bench_cifar(device: torch.device, repeats: int, rounds: int) -> dict[str, Any]:
    torch.manual_seed(0)
    model = ltzoo.create_model("resnet32", num_classes=10).to(device).train()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(BATCH, 3, 32, 32, generator=g).to(device)
    px = torch.randn(BATCH, 3, 32, 32, generator=g).to(device)
    y, py = torch.randint(0, 10, (BATCH,)).to(device), torch.randint(0, 10, (BATCH,)).to(device)
    model.eval()
    with torch.no_grad():
        feats = model.forward_features(px)
        pseudo = model.forward_head(feats).argmax(1)
    model.train()
    weights = model.get_classifier().cam_weights()
    cam = class_activation_map(feats, weights, pseudo, size=(32, 32))
    cammix = CamMix()

    def partner_forward() -> None:
        with torch.no_grad():
            model.forward_head(model.forward_features(px)).argmax(1)

    cases: dict[str, Callable[[], Any]] = {
        "cutmix": lambda: CutMix()(x, y, partner_x=px, partner_y=py),
        "mixup": lambda: Mixup()(x, y, partner_x=px, partner_y=py),
        "saliencymix": lambda: SaliencyMix()(x, y, partner_x=px, partner_y=py),
        "cammix_given_features": lambda: cammix(x, y, partner_x=px, model=model, partner_features=feats),
        "cammix_given_features_and_labels": lambda: cammix(x, y, partner_x=px, partner_y=pseudo, model=model,
                                                           partner_features=feats),
        "cammix_with_forward": lambda: cammix(x, y, partner_x=px, model=model),
        "partner_forward_only": partner_forward,
        "cammix_stage_cam": lambda: class_activation_map(feats, weights, pseudo, size=(32, 32)),
        "cammix_stage_regions": lambda: largest_region_boxes(cam, 0.8),
        "cammix_gradcam_backbone_output": lambda: CamMix(target_layer="backbone.stages")(
            x, y, partner_x=px, model=model),
        "cammix_gradcam_stage2": lambda: CamMix(target_layer="backbone.stages.1")(x, y, partner_x=px, model=model),
    }
    results = _timed_cases(cases, device, repeats, rounds)
    return {"batch": BATCH, "image_size": 32, "model": "resnet32 (fc head, 10 classes, 64x8x8 feature map)",
            "timings": results, "ratio_to_cutmix": _with_ratios(results, "cutmix")}


def bench_imagenet_size(device: torch.device, repeats: int, rounds: int) -> dict[str, Any]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(BATCH, 3, 224, 224, generator=g).to(device)
    px = torch.randn(BATCH, 3, 224, 224, generator=g).to(device)
    y, py = torch.zeros(BATCH, dtype=torch.long, device=device), torch.ones(BATCH, dtype=torch.long, device=device)
    cases: dict[str, Callable[[], Any]] = {
        "cutmix": lambda: CutMix()(x, y, partner_x=px, partner_y=py),
        "saliencymix": lambda: SaliencyMix()(x, y, partner_x=px, partner_y=py),
        "saliencymix_full_resolution": lambda: SaliencyMix(max_size=None, blur_sigma=3.0 * 224 / 64)(
            x, y, partner_x=px, partner_y=py),
    }
    results = _timed_cases(cases, device, repeats, rounds)
    return {"batch": BATCH, "image_size": 224, "timings": results, "ratio_to_cutmix": _with_ratios(results, "cutmix")}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10, help="time_call repeats per round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds over all cases")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--name", default="mixers", help="result file name under benchmarks/results/")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    payload = {
        "description": __doc__.split("\n\n")[0].replace("\n", " "),
        "device": str(device),
        "cifar_resnet32": bench_cifar(device, args.repeats, args.rounds),
        "imagenet_size": bench_imagenet_size(device, args.repeats, args.rounds),
    }
    path = write_result(args.name, payload)
    for part in ("cifar_resnet32", "imagenet_size"):
        print(part)
        for name, r in payload[part]["timings"].items():
            ratio = payload[part]["ratio_to_cutmix"].get(name, {"median_s": 1.0, "min_s": 1.0})
            print(f"  {name:34s} median {r['median_s'] * 1e3:9.3f} ms (x{ratio['median_s']:7.2f} cutmix)"
                  f"  min {r['min_s'] * 1e3:9.3f} ms (x{ratio['min_s']:7.2f})")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
