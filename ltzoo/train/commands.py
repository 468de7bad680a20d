"""The ``ltzoo demo``, ``ltzoo train`` and ``ltzoo eval`` subcommands (registered by ``ltzoo.cli``).

``ltzoo train`` reads an optional config file (JSON, or YAML), then applies the flags, then any
``--set key=value`` (value parsed as JSON, else taken as a string); the run folder defaults to
``runs/<tag>``. Under ``torchrun --nproc_per_node=N -m ltzoo.cli train ...`` it trains with
DistributedDataParallel; only rank 0 prints and writes.
"""
from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["add_subcommands", "config_from_args"]

# flag -> (TrainConfig field, type, help)
_FLAGS: dict[str, tuple[str, Any, str]] = {
    "--data": ("data", str, "digits | cifar10 | cifar100 | imagefolder"),
    "--root": ("data_root", str, "data folder (CIFAR-10 JPEG tree, torchvision CIFAR folder, ImageFolder root)"),
    "--imb-ratio": ("imb_ratio", float, "imbalance ratio n_max / n_min of the training split"),
    "--model": ("model", str, "backbone (ltzoo list models)"),
    "--head": ("head", str, "head (ltzoo list heads)"),
    "--loss": ("loss", str, "loss (ltzoo list losses; default: the head's)"),
    "--sampler": ("sampler", str, "sampler (ltzoo list samplers)"),
    "--mixer": ("mixer", str, "mixer (ltzoo list mixers)"),
    "--loss-args": ("loss_args", json.loads, "loss keyword arguments as JSON"),
    "--sampler-args": ("sampler_args", json.loads, "sampler keyword arguments as JSON"),
    "--mixer-args": ("mixer_args", json.loads, "mixer keyword arguments as JSON"),
    "--model-args": ("model_args", json.loads, "LTModel keyword arguments as JSON"),
    "--data-args": ("data_args", json.loads, "dataset options as JSON, e.g. '{\"image_size\": 16}'"),
    "--epochs": ("epochs", int, "training epochs"),
    "--batch-size": ("batch_size", int, "global batch size"),
    "--lr": ("lr", float, "peak learning rate"),
    "--momentum": ("momentum", float, "SGD momentum"),
    "--weight-decay": ("weight_decay", float, "weight decay"),
    "--warmup-epochs": ("warmup_epochs", float, "linear warm-up epochs"),
    "--warmup-mode": ("warmup_mode", str, "epoch (LDAM-DRW: lr x (epoch + 1) / W) | iteration"),
    "--schedule": ("schedule", str, "cosine | step | constant | fixmatch"),
    "--milestones": ("milestones", lambda s: [int(v) for v in s.split(",") if v], "step epochs, e.g. 160,180"),
    "--ema-decay": ("ema_decay", float, "EMA of the weights (off by default)"),
    "--eval-every": ("eval_every", int, "evaluate every n epochs"),
    "--logit-adjust-tau": ("logit_adjust_tau", float, "also report post-hoc logit adjustment with this tau"),
    "--group-ranges": ("group_ranges", json.loads, "many/medium/few class-index ranges as JSON, e.g. "
                       "'{\"many\": [0, 2], \"medium\": [3, 6], \"few\": [7, 9]}' (default: the dataset's split)"),
    "--many-threshold": ("many_threshold", float, "many-shot: more than this many training images"),
    "--few-threshold": ("few_threshold", float, "few-shot: fewer than this many training images"),
    "--crt-epochs": ("crt_epochs", int, "decoupled classifier retraining epochs (0: none)"),
    "--max-steps-per-epoch": ("max_steps_per_epoch", int, "cut every epoch to this many iterations"),
    "--seed": ("seed", int, "random seed"),
    "--num-workers": ("num_workers", int, "data loader workers"),
    "--device": ("device", str, "auto | cpu | cuda | cuda:N"),
    "--num-threads": ("num_threads", int, "torch CPU threads"),
    "--output-dir": ("output_dir", str, "run folder (default runs/<tag>)"),
    "--tag": ("tag", str, "tag of the saved model"),
}


_SSL_FLAGS: dict[str, tuple[str, Any, str]] = {
    "--plugin": ("plugin", str, "none | la | udal | bem"),
    "--ltssl": ("ltssl", json.loads, 'labeled/unlabeled split as JSON, e.g. \'{"n1": 1500, "m1": 3000, "gamma_l": 100, '
                                      '"gamma_u": 100}\' (gamma_u < 1: reversed)'),
    "--unlabeled-ratio": ("unlabeled_ratio", int, "mu, unlabeled images per labeled one in a batch"),
    "--threshold": ("threshold", float, "pseudo-label confidence threshold tau"),
    "--iters-per-epoch": ("iters_per_epoch", int, "iterations per epoch (default: the plugin's paper length, "
                                                   "500 x 500 for bem, else 64 x 1024)"),
}


def _cmd_train_ssl(args: argparse.Namespace) -> int:
    from ltzoo.train.data import build_datasets
    from ltzoo.train.distributed import init_distributed, teardown
    from ltzoo.train.fixmatch import train_fixmatch
    from ltzoo.train.ssl_config import SSLConfig
    from ltzoo.train.ssl_data import make_ltssl_split

    cfg = config_from_args(args, SSLConfig)
    if not cfg.ltssl:
        raise ValueError('train-ssl needs --ltssl \'{"n1": ..., "m1": ..., "gamma_l": ..., "gamma_u": ...}\'')
    info = init_distributed(cfg.device)
    try:
        full_train, test_set, name = build_datasets(cfg)
        labeled, unlabeled = make_ltssl_split(full_train, seed=cfg.seed, **cfg.ltssl)
        result = train_fixmatch(cfg, labeled, unlabeled, test_set, resume=args.resume, dataset_name=name)
        _print_run(cfg, result, info.rank)
    finally:
        teardown()
    return 0


def _print_run(cfg: Any, result: dict[str, Any], rank: int) -> None:
    """On rank 0, the final metrics table and where the run folder is."""
    from ltzoo.train.evaluation import format_table

    if rank == 0 and result["metrics"] is not None:
        print(format_table([{"run": cfg.output_dir, **result["metrics"]}], name_key="run"))
        if result["metrics"].get("groups"):
            from ltzoo.metrics.groups import describe_split

            print(describe_split(result["metrics"]["groups"]))
        print(f"run folder: {cfg.output_dir} (last.pt, log.json, metrics.json, model/)")


def _parse_set(item: str) -> tuple[str, Any]:
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--set takes key=value, got {item!r}")
    try:
        return key.strip().replace("-", "_"), json.loads(raw)
    except json.JSONDecodeError:
        return key.strip().replace("-", "_"), raw


def config_from_args(args: argparse.Namespace, cls: type | None = None):
    """The config of ``ltzoo train`` / ``train-ssl``: config file, then flags, then ``--set``.

    Args:
        args: Parsed arguments.
        cls: Config class (default :class:`~ltzoo.train.TrainConfig`).
    """
    from ltzoo.train.config import TrainConfig, load_config
    from ltzoo.train.supervised import default_tag

    cls = cls or TrainConfig
    values = {}
    if args.config:
        loaded = load_config(args.config, cls)
        values = loaded.to_dict()
        for name in getattr(loaded, "_derived", ()):  # SSLConfig: lengths the file left to the plugin
            values[name] = None
    flags = dict(_FLAGS, **(_SSL_FLAGS if cls is not TrainConfig else {}))
    for flag, (name, _, _) in flags.items():
        value = getattr(args, flag[2:].replace("-", "_"))
        if value is not None:
            values[name] = value
    values.update(dict(args.set or []))
    if args.no_progress:
        values["progress"] = False
    cfg = cls.from_dict(values)
    if cfg.output_dir is None:
        cfg = cfg.replace(output_dir=f"runs/{cfg.tag or default_tag(cfg)}")
    return cfg


def _cmd_train(args: argparse.Namespace) -> int:
    from ltzoo.train.data import build_datasets
    from ltzoo.train.distributed import init_distributed, teardown
    from ltzoo.train.supervised import train_supervised

    cfg = config_from_args(args)
    info = init_distributed(cfg.device)
    try:
        train_set, test_set, name = build_datasets(cfg)
        result = train_supervised(cfg, train_set, test_set, resume=args.resume, dataset_name=name)
        _print_run(cfg, result, info.rank)
    finally:
        teardown()
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ltzoo.train.eval_checkpoint import evaluate_checkpoint
    from ltzoo.train.evaluation import format_table

    path = Path(args.checkpoint)
    folder = path if path.is_dir() else path.parent
    out = args.out or folder / "eval_metrics.json"
    plot = None if args.no_plot else (args.plot or folder / "eval_per_class.png")
    groups = None
    if args.group_ranges is not None:
        groups = {"ranges": args.group_ranges}
    elif args.many_threshold is not None or args.few_threshold is not None:
        groups = {k: v for k, v in (("many_threshold", args.many_threshold), ("few_threshold", args.few_threshold))
                  if v is not None}
    summary = evaluate_checkpoint(path, data=args.data, data_root=args.root, imb_ratio=args.imb_ratio, out=out,
                                  plot=plot, ema=args.ema, logit_adjust_tau=args.logit_adjust_tau, device=args.device,
                                  max_samples=args.max_samples, groups=groups)
    rows = [{"model": path.name, **summary}]
    if "posthoc" in summary:
        rows.append({"model": f"{path.name} + post-hoc LA", **summary["posthoc"]})
    print(format_table(rows, name_key="model"))
    from ltzoo.metrics.groups import describe_split

    print(describe_split(summary["groups"]))
    print(f"metrics: {out}" + (f"\nper-class plot: {plot}" if plot else ""))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from ltzoo.train.demo import run_demo

    run_demo(epochs=args.epochs, seeds=args.seeds, quick=args.quick)
    return 0


def _add_train_parser(sub: Any, name: str, text: str, flags: dict[str, tuple[str, Any, str]], config_name: str,
                      func: Any) -> None:
    p = sub.add_parser(name, help=text)
    p.add_argument("--config", default=None, help=f"JSON or YAML file of {config_name} fields")
    for flag, (_, kind, help_text) in flags.items():
        p.add_argument(flag, type=kind, default=None, help=help_text)
    p.add_argument("--set", type=_parse_set, action="append", metavar="KEY=VALUE",
                   help=f"any {config_name} field, value as JSON (repeatable)")
    p.add_argument("--resume", action="store_true", help="continue from OUTPUT_DIR/last.pt")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=func)


def add_subcommands(sub: Any) -> None:
    """Add ``demo``, ``train`` and ``eval`` to the ``ltzoo`` subparsers."""
    p = sub.add_parser("demo", help="train CE, logit adjustment and BMLS+MS on digits-LT (no download) "
                                    "and print one table")
    p.add_argument("--epochs", type=int, default=20, help="epochs per run (default 20)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds to average (default 0 1 2)")
    p.add_argument("--quick", action="store_true", help="half the epochs")
    p.set_defaults(func=_cmd_demo)

    _add_train_parser(sub, "train", "train a long-tailed classifier (config file and/or flags)", _FLAGS,
                      "TrainConfig", _cmd_train)
    _add_train_parser(sub, "train-ssl", "semi-supervised long-tailed training: FixMatch (+ LA / UDAL / BEM)",
                      {**_FLAGS, **_SSL_FLAGS}, "SSLConfig", _cmd_train_ssl)

    p = sub.add_parser("eval", help="evaluate a checkpoint, run folder or saved model folder")
    p.add_argument("checkpoint", help="last.pt, a run folder, or a save_pretrained folder")
    p.add_argument("--data", default=None, help="test data (default: the recorded one)")
    p.add_argument("--root", default=None, help="data folder (default: the recorded one)")
    p.add_argument("--imb-ratio", type=float, default=None, help="imbalance ratio (names the data set)")
    p.add_argument("--out", default=None, help="metrics JSON (default: eval_metrics.json beside the checkpoint)")
    p.add_argument("--plot", default=None, help="per-class accuracy PNG (default: eval_per_class.png beside it)")
    p.add_argument("--no-plot", action="store_true", help="do not draw the plot")
    p.add_argument("--ema", action="store_true", help="evaluate the EMA weights of a last.pt")
    p.add_argument("--logit-adjust-tau", type=float, default=None, help="also report post-hoc logit adjustment")
    p.add_argument("--device", default="cpu", help="evaluation device")
    p.add_argument("--max-samples", type=int, default=None, help="evaluate on a class-stratified part of this size")
    p.add_argument("--group-ranges", type=json.loads, default=None,
                   help="many/medium/few class-index ranges as JSON (default: the split recorded with the model)")
    p.add_argument("--many-threshold", type=float, default=None, help="group by training images instead: many > this")
    p.add_argument("--few-threshold", type=float, default=None, help="few < this")
    p.set_defaults(func=_cmd_eval)
