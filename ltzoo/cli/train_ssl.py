"""``ltzoo train-ssl``: FixMatch with the LA / UDAL / BEM plug-ins on a labeled / unlabeled split.

Takes the flags of ``ltzoo train`` plus the semi-supervised ones; the split (``--ltssl``) is cut
from the training data with :func:`ltzoo.engine.ssl_data.make_ltssl_split`.
"""
from __future__ import annotations

import argparse
import json
from typing import Any

from ltzoo.cli.train import FLAGS, add_train_parser, check_run_folder, config_from_args, print_run

__all__ = ['add_parser', 'SSL_FLAGS']


SSL_FLAGS: dict[str, tuple[str, Any, str]] = {
    "--plugin": ("plugin", str, "none | la | udal | bem"),
    "--ltssl": ("ltssl", json.loads, 'labeled/unlabeled split as JSON, e.g. \'{"n1": 1500, "m1": 3000, "gamma_l": 100, '
                                      '"gamma_u": 100}\' (gamma_u < 1: reversed)'),
    "--unlabeled-ratio": ("unlabeled_ratio", int, "mu, unlabeled images per labeled one in a batch"),
    "--threshold": ("threshold", float, "pseudo-label confidence threshold tau"),
    "--iters-per-epoch": ("iters_per_epoch", int, "iterations per epoch (default: the plugin's paper length, "
                                                   "500 x 500 for bem, else 64 x 1024)"),
}


def _cmd_train_ssl(args: argparse.Namespace) -> int:
    from ltzoo.engine.data import build_datasets
    from ltzoo.engine.distributed import init_distributed, teardown
    from ltzoo.engine.ssl_config import SSLConfig
    from ltzoo.engine.ssl_data import make_ltssl_split
    from ltzoo.recipes.fixmatch import train_fixmatch

    cfg = config_from_args(args, SSLConfig)
    check_run_folder(args, cfg)
    if not cfg.ltssl:
        raise ValueError('train-ssl needs --ltssl \'{"n1": ..., "m1": ..., "gamma_l": ..., "gamma_u": ...}\'')
    info = init_distributed(cfg.device)
    try:
        full_train, test_set, name = build_datasets(cfg)
        labeled, unlabeled = make_ltssl_split(full_train, seed=cfg.seed, **cfg.ltssl)
        result = train_fixmatch(cfg, labeled, unlabeled, test_set, resume=args.resume, dataset_name=name)
        print_run(cfg, result, info.rank)
    finally:
        teardown()
    return 0


def add_parser(sub: Any) -> None:
    """Add ``train-ssl`` to the ``ltzoo`` subparsers."""
    add_train_parser(sub, "train-ssl", "semi-supervised long-tailed training: FixMatch (+ LA / UDAL / BEM)",
                     {**FLAGS, **SSL_FLAGS}, "SSLConfig", _cmd_train_ssl)
