"""``ltzoo merge`` (average checkpoints) and ``ltzoo btm`` (the BTM recipe from a stage-1 run)."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["add_btm_subcommands", "merge_checkpoints"]


def merge_checkpoints(paths: list[str], out: str | Path, weights: list[float] | None = None,
                      evaluate: bool = True, device: str = "cpu") -> dict[str, Any]:
    """Average the weights of compatible checkpoints and save the merge with ``save_pretrained``.

    Args:
        paths: Training checkpoints (``last.pt``), run folders or saved model folders.
        out: Folder for the merged model (``model.safetensors``, ``config.json``, card).
        weights: One weight per checkpoint (default uniform).
        evaluate: Measure the merge on the first checkpoint's recorded test set and store the
            metrics with it (otherwise the merged model is saved without metrics).
        device: Evaluation device.

    Returns:
        The evaluation summary (empty when ``evaluate`` is False).
    """
    from ltzoo.hub import metrics_block
    from ltzoo.hub.save import save_pretrained
    from ltzoo.merge import merge_state_dicts
    from ltzoo.train.eval_checkpoint import load_for_eval

    if len(paths) < 2:
        raise ValueError(f"paths must name at least two checkpoints to merge, got {len(paths)}")
    loaded = [load_for_eval(p, device=device) for p in paths]
    model, cfg, counts = loaded[0]
    merged = merge_state_dicts([m.state_dict() for m, _, _ in loaded], weights)
    model.load_state_dict(merged)
    summary: dict[str, Any] = {}
    fields: dict[str, Any] = {"class_counts": counts,
                              "recipe": {"merge": "uniform" if weights is None else list(weights),
                                         "sources": [str(p) for p in paths]}}
    if evaluate and cfg is not None:
        summary = _evaluate(model, cfg, counts)
        fields.update(metrics=metrics_block(summary, summary.pop("dataset"), "test"), per_class=summary["per_class"])
    save_pretrained(model, out, **fields)
    return summary


def _evaluate(model: Any, cfg: Any, counts: list) -> dict[str, Any]:
    from ltzoo.train.builders import build_eval_loader
    from ltzoo.train.data import build_datasets
    from ltzoo.train.evaluation import evaluate_model, group_kwargs

    _, test_set, name = build_datasets(cfg)
    loader = build_eval_loader(test_set, num_workers=cfg.num_workers)
    groups = group_kwargs(cfg.group_ranges, cfg.many_threshold, cfg.few_threshold)
    return {"dataset": name, **evaluate_model(model, loader, counts, groups, None, False)}


def _cmd_merge(args: argparse.Namespace) -> int:
    from ltzoo.train.evaluation import format_table

    summary = merge_checkpoints(args.checkpoints, args.out, args.weights, evaluate=not args.no_eval, device=args.device)
    if summary:
        print(format_table([{"model": "merged", **summary}], name_key="model"))
    print(f"merged model: {args.out}")
    return 0


def _cmd_btm(args: argparse.Namespace) -> int:
    from ltzoo.hub import metrics_block
    from ltzoo.hub.save import save_pretrained
    from ltzoo.train.btm import BTMConfig, describe_fc_stage, report_table, train_btm
    from ltzoo.train.data import build_datasets
    from ltzoo.train.eval_checkpoint import load_for_eval

    model, cfg, counts = load_for_eval(args.stage1, device=args.device)
    if cfg is None:
        raise ValueError(f"{args.stage1} records no training recipe, so its data cannot be rebuilt")
    train_set, test_set, name = build_datasets(cfg)
    las = {k: v for k, v in (("eps_head", args.eps_head), ("eps_tail", args.eps_tail), ("shape", args.las_shape))
           if v is not None}
    btm = BTMConfig(num_subsets=args.subsets, per_class=args.per_class, finetune_epochs=args.epochs,
                    finetune_lr=args.lr, posttrain_epochs=args.posttrain_epochs, posttrain_lr=args.posttrain_lr,
                    recalibrate_bn=args.recalibrate_bn, batch_size=args.batch_size, seed=args.seed,
                    group_ranges=cfg.group_ranges, fc_stage=args.fc_stage, fc_epochs=args.fc_epochs,
                    posttrain=args.posttrain, posttrain_batch_size=args.posttrain_batch_size,
                    posttrain_shift_bn=not args.no_shift_bn, posttrain_lws=not args.no_lws,
                    posttrain_reinit=args.posttrain_reinit, posttrain_loss_args=las,
                    mixer=None if args.mixer == "none" else args.mixer)
    result = train_btm(model.train(), train_set, test_set, counts, btm, output_dir=args.out,
                       stage1_recipe=cfg.to_dict())
    report = result["report"]
    final = report.get("posttrained", report["merged"])
    save_pretrained(result["model"], Path(args.out) / "model", metrics=metrics_block(final, name, "test"),
                    per_class=final["per_class"], class_counts=counts, extra_metrics={"stage1": {
                        k: report["stage1"][k] for k in ("top1", "many", "medium", "few", "hmean", "gmean", "lowest")}},
                    recipe={"stage1": cfg.to_dict(), "btm": report["config"], "fc_stage": report["fc_stage"],
                            "posttrain": report.get("posttrain")})
    print(describe_fc_stage(report["fc_stage"]))
    print(report_table(report))
    print(f"BTM model: {Path(args.out) / 'model'}")
    return 0


def add_btm_subcommands(sub: Any) -> None:
    """Add ``merge`` and ``btm`` to the ``ltzoo`` subparsers."""
    p = sub.add_parser("merge", help="average the weights of compatible checkpoints (BTM merge)")
    p.add_argument("checkpoints", nargs="+", help="last.pt files, run folders or saved model folders")
    p.add_argument("--out", required=True, help="folder for the merged model")
    p.add_argument("--weights", type=float, nargs="+", default=None, help="one weight per checkpoint")
    p.add_argument("--no-eval", action="store_true", help="do not measure the merge on the recorded test set")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=_cmd_merge)

    p = sub.add_parser("btm", help="BTM: balanced fine-tuning, merging and post-training of a stage-1 model")
    p.add_argument("stage1", help="stage-1 last.pt, run folder or saved model folder (with its recipe)")
    p.add_argument("--out", required=True, help="output folder (fine-tuned weights, report, model/)")
    p.add_argument("--subsets", type=int, default=10, help="N_D balanced subsets (default 10)")
    p.add_argument("--per-class", type=int, default=10, help="N_C images per class (default 10)")
    p.add_argument("--epochs", type=int, default=30, help="fine-tuning epochs (default 30)")
    p.add_argument("--lr", type=float, default=5e-3, help="fine-tuning learning rate (default 5e-3)")
    p.add_argument("--batch-size", type=int, default=256, help="fine-tuning and FC-stage batch size (default 256)")
    p.add_argument("--mixer", default="stage1",
                   help="fine-tuning mixer: 'stage1' (the stage-1 run's, default), a registered name, or 'none'")
    p.add_argument("--fc-stage", choices=("auto", "on", "off"), default="auto",
                   help="retrain the classifier with plain CE on all data first (auto: when stage 1 handles imbalance)")
    p.add_argument("--fc-epochs", type=int, default=10, help="FC-stage epochs (default 10)")
    p.add_argument("--posttrain", choices=("mislas", "cached_crt"), default="mislas",
                   help="post-training: MiSLAS-style stage 2 (default) or the fast cached-feature cRT option")
    p.add_argument("--posttrain-epochs", type=int, default=10, help="classifier post-training epochs (default 10)")
    p.add_argument("--posttrain-lr", type=float, default=0.1,
                   help="post-training lr (default 0.1; the kept classifier gets 0.05 x this)")
    p.add_argument("--posttrain-batch-size", type=int, default=256)
    p.add_argument("--no-shift-bn", action="store_true", help="keep the backbone's BatchNorm statistics in post-training")
    p.add_argument("--no-lws", action="store_true", help="post-train without learnable weight scaling")
    p.add_argument("--posttrain-reinit", action="store_true", help="re-initialise the merged classifier first")
    p.add_argument("--eps-head", type=float, default=None, help="label-aware smoothing of the largest class (0.3)")
    p.add_argument("--eps-tail", type=float, default=None, help="label-aware smoothing of the smallest class (0.0)")
    p.add_argument("--las-shape", choices=("concave", "linear", "convex"), default=None,
                   help="label-aware smoothing shape (default concave)")
    p.add_argument("--recalibrate-bn", action="store_true", help="re-estimate BatchNorm statistics of the merge")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=_cmd_btm)
