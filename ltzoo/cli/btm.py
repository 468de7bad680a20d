"""``ltzoo btm``: the BTM recipe (:func:`ltzoo.recipes.btm.train_btm`) from a stage-1 run."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ['add_parser']


def _cmd_btm(args: argparse.Namespace) -> int:
    from ltzoo.data.in_memory import held_dataset
    from ltzoo.engine.data import build_datasets
    from ltzoo.engine.eval_checkpoint import load_for_eval
    from ltzoo.recipes.btm import BTMConfig, describe_fc_stage, report_table, train_btm
    from ltzoo.recipes.btm_save import save_btm_model

    model, cfg, counts = load_for_eval(args.stage1, device=args.device)
    if cfg is None:
        raise ValueError(f"{args.stage1} records no training recipe, so its data cannot be rebuilt")
    train_set, test_set, name = build_datasets(cfg)
    # image folders decoded once and held in memory (BTM reads the training set many times); same augmentation
    train_set, test_set = held_dataset(train_set) or train_set, held_dataset(test_set) or test_set
    las = {k: v for k, v in (("eps_head", args.eps_head), ("eps_tail", args.eps_tail), ("shape", args.las_shape))
           if v is not None}
    btm = BTMConfig(num_subsets=args.subsets, per_class=args.per_class, finetune_epochs=args.epochs,
                    finetune_lr=args.lr, posttrain_epochs=args.posttrain_epochs, posttrain_lr=args.posttrain_lr,
                    recalibrate_bn=args.recalibrate_bn, batch_size=args.batch_size, seed=args.seed,
                    group_ranges=cfg.group_ranges, fc_stage=args.fc_stage, fc_epochs=args.fc_epochs,
                    posttrain=args.posttrain, posttrain_batch_size=args.posttrain_batch_size,
                    posttrain_shift_bn=not args.no_shift_bn, posttrain_lws=not args.no_lws,
                    posttrain_reinit=args.posttrain_reinit, posttrain_loss_args=las,
                    mixer=None if args.mixer == "none" else args.mixer, precision=args.precision)
    result = train_btm(model.train(), train_set, test_set, counts, btm, output_dir=args.out,
                       stage1_recipe=cfg.to_dict())
    report = result["report"]
    save_btm_model(result, Path(args.out) / "model", cfg.to_dict(), counts, name)
    print(describe_fc_stage(report["fc_stage"]))
    print(report_table(report))
    print(f"BTM model: {Path(args.out) / 'model'}")
    return 0


def add_parser(sub: Any) -> None:
    """Add ``btm`` to the ``ltzoo`` subparsers."""
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
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32",
                   help="autocast dtype of the fine-tunes and the post-training (bf16: CPUs with bf16 and GPUs)")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=_cmd_btm)
