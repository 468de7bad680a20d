"""``ltzoo train``: a supervised long-tailed run from a config file and/or flags.

The config file (JSON, or YAML) is read first, then the flags, then any ``--set key=value``
(value parsed as JSON, else taken as a string); the run folder defaults to ``runs/<tag>``. Under
``torchrun --nproc_per_node=N -m ltzoo.cli train ...`` it trains with DistributedDataParallel;
only rank 0 prints and writes.
"""
from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ['add_parser', 'add_train_parser', 'config_from_args', 'check_run_folder', 'print_run', 'FLAGS', 'DIGITS_IMB_RATIO', 'DEFAULT_IMB_RATIOS']

DIGITS_IMB_RATIO = 20.0  # default imbalance of --data digits, the demo's
# default --imb-ratio per data set where 100 does not fit: digits as `ltzoo demo` (at most ~180 images per
# class); the split-list sets as released (their lists are already long-tailed)
DEFAULT_IMB_RATIOS = {"digits": DIGITS_IMB_RATIO, "digits_lt": DIGITS_IMB_RATIO, "imagenet_lt": 1.0,
                      "places_lt": 1.0, "inaturalist2018": 1.0, "split_list": 1.0}


FLAGS: dict[str, tuple[str, Any, str]] = {
    "--data": ("data", str, "digits | cifar10 | cifar100 | imagefolder, or any registered data set "
               "(ltzoo list datasets: imagenet_lt, places_lt, inaturalist2018, ...)"),
    "--root": ("data_root", str, "data folder (CIFAR-10 JPEG tree, torchvision CIFAR folder, ImageFolder root)"),
    "--imb-ratio": ("imb_ratio", float, "imbalance ratio n_max / n_min of the training split (default 100; "
                    "20 for digits, as the demo)"),
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
    "--precision": ("precision", str, "fp32 | bf16 (autocast; CPUs with bf16 and GPUs) | fp16 (GPUs, grad scaler)"),
    "--data-path": ("data_path", str, "auto | tensor (in-memory images, batched augmentation) | per_sample"),
    "--output-dir": ("output_dir", str, "run folder (default runs/<tag>)"),
    "--tag": ("tag", str, "tag of the saved model"),
}


def print_run(cfg: Any, result: dict[str, Any], rank: int) -> None:
    """On rank 0, the final metrics table and where the run folder is."""
    from ltzoo.engine.evaluation import format_table

    if rank == 0:
        from ltzoo.recipes.supervised import default_tag

        print(f"data: {cfg.data}, imbalance ratio {cfg.imb_ratio:g}, recipe tag: {cfg.tag or default_tag(cfg)}")
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
        cls: Config class (default :class:`~ltzoo.engine.config.TrainConfig`).
    """
    from ltzoo.engine.config import TrainConfig, load_config
    from ltzoo.recipes.supervised import default_tag

    cls = cls or TrainConfig
    values = {}
    if args.config:
        loaded = load_config(args.config, cls)
        values = loaded.to_dict()
        for name in getattr(loaded, "_derived", ()):  # SSLConfig: lengths the file left to the plugin
            values[name] = None
    flags = getattr(args, "flag_table", FLAGS)  # set by add_train_parser: this command's flags
    for flag, (name, _, _) in flags.items():
        value = getattr(args, flag[2:].replace("-", "_"))
        if value is not None:
            values[name] = value
    values.update(dict(args.set or []))
    if args.no_progress:
        values["progress"] = False
    if getattr(args, "compile", False):
        values["compile"] = True
    if cls is TrainConfig and values.get("data") in DEFAULT_IMB_RATIOS and "imb_ratio" not in values:
        values["imb_ratio"] = DEFAULT_IMB_RATIOS[values["data"]]
    cfg = cls.from_dict(values)
    if cfg.output_dir is None:
        cfg = cfg.replace(output_dir=f"runs/{cfg.tag or default_tag(cfg)}")
    return cfg


def check_run_folder(args: argparse.Namespace, cfg: Any) -> None:
    """Refuse an output folder holding another run unless --resume / --overwrite (before any data is read)."""
    import os

    from ltzoo.engine.run_folder import prepare_output_dir

    prepare_output_dir(cfg.output_dir, resume=args.resume, overwrite=args.overwrite,
                       remove=os.environ.get("RANK", "0") == "0")


def _cmd_train(args: argparse.Namespace) -> int:
    from ltzoo.engine.data import build_datasets
    from ltzoo.engine.distributed import init_distributed, teardown
    from ltzoo.recipes.supervised import train_supervised

    cfg = config_from_args(args)
    check_run_folder(args, cfg)
    info = init_distributed(cfg.device)
    try:
        train_set, test_set, name = build_datasets(cfg)
        result = train_supervised(cfg, train_set, test_set, resume=args.resume, dataset_name=name)
        print_run(cfg, result, info.rank)
    finally:
        teardown()
    return 0


def add_train_parser(sub: Any, name: str, text: str, flags: dict[str, tuple[str, Any, str]], config_name: str,
                      func: Any) -> None:
    p = sub.add_parser(name, help=text)
    p.add_argument("--config", default=None, help=f"JSON or YAML file of {config_name} fields")
    for flag, (_, kind, help_text) in flags.items():
        p.add_argument(flag, type=kind, default=None, help=help_text)
    p.add_argument("--set", type=_parse_set, action="append", metavar="KEY=VALUE",
                   help=f"any {config_name} field, value as JSON (repeatable)")
    p.add_argument("--resume", action="store_true", help="continue from OUTPUT_DIR/last.pt")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run in OUTPUT_DIR (removes only the files ltzoo wrote there)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--compile", action="store_true", help="run the training step through torch.compile")
    p.set_defaults(func=func, flag_table=flags)


def add_parser(sub: Any) -> None:
    """Add ``train`` to the ``ltzoo`` subparsers."""
    add_train_parser(sub, "train", "train a long-tailed classifier (config file and/or flags)", FLAGS, "TrainConfig",
                     _cmd_train)
