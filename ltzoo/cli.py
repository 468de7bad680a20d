"""The ``ltzoo`` command line: ``list``, ``push``, ``demo`` / ``train`` / ``eval`` (ltzoo.train.commands),
``merge`` / ``btm`` (ltzoo.train.btm_commands) and ``dlsa`` (ltzoo.train.dlsa_commands)."""
from __future__ import annotations

import argparse
import sys
from typing import Sequence


def _cmd_list(args: argparse.Namespace) -> int:
    import ltzoo

    roles = {
        "models": lambda: ltzoo.list_models(args.filter, pretrained=args.pretrained),
        "backbones": lambda: ltzoo.list_backbones(args.filter),
        "heads": lambda: ltzoo.list_heads(args.filter),
        "losses": lambda: ltzoo.list_losses(args.filter),
        "samplers": lambda: ltzoo.list_samplers(args.filter),
        "mixers": lambda: ltzoo.list_mixers(args.filter),
    }
    chosen = [args.role] if args.role else (["models"] if args.pretrained else list(roles))
    for role in chosen:
        names = roles[role]()
        if role == "models" and args.pretrained:
            from ltzoo.hub import get_pretrained_config

            print(f"pretrained models ({len(names)}):")
            for name in names:
                print(f"  {name:<44} {get_pretrained_config(name).repo_id}")
            continue
        print(f"{role} ({len(names)}):")
        for name in names:
            print(f"  {name}")
    return 0


def _cmd_push(args: argparse.Namespace) -> int:
    from ltzoo.hub import push_folder

    info = push_folder(args.directory, args.repo_id, token=args.token, revision=args.revision,
                       private=True if args.private else None, commit_message=args.commit_message,
                       create_pr=args.create_pr)
    print(f"pushed {args.directory} to {args.repo_id}: {getattr(info, 'commit_url', info)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``ltzoo`` command."""
    from ltzoo import __version__

    parser = argparse.ArgumentParser(prog="ltzoo", description="Long-tailed image classification zoo.")
    parser.add_argument("--version", action="version", version=f"ltzoo {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p_list = sub.add_parser("list", help="list registered components")
    p_list.add_argument("role", nargs="?", choices=["models", "backbones", "heads", "losses", "samplers", "mixers"])
    p_list.add_argument("--filter", default="*", help="fnmatch pattern, e.g. 'resnet*'")
    p_list.add_argument("--pretrained", action="store_true", help="list pretrained 'arch.tag' weights")
    p_list.set_defaults(func=_cmd_list)
    p_push = sub.add_parser("push", help="upload a folder written by ltzoo.save_pretrained to the Hugging Face Hub")
    p_push.add_argument("directory", help="folder with model.safetensors, config.json and README.md")
    p_push.add_argument("repo_id", help="Hub repository, 'org/name' (created if missing)")
    p_push.add_argument("--token", default=None, help="Hub token (default: huggingface_hub login / HF_TOKEN)")
    p_push.add_argument("--revision", default=None, help="branch to commit to (created if missing)")
    p_push.add_argument("--private", action="store_true", help="create the repository as private")
    p_push.add_argument("--commit-message", default=None, help="commit message")
    p_push.add_argument("--create-pr", action="store_true", help="open a pull request instead of committing")
    p_push.set_defaults(func=_cmd_push)
    from ltzoo.train.btm_commands import add_btm_subcommands
    from ltzoo.train.commands import add_subcommands
    from ltzoo.train.dlsa_commands import add_dlsa_subcommand

    add_subcommands(sub)  # demo, train, eval
    add_btm_subcommands(sub)  # merge, btm
    add_dlsa_subcommand(sub)  # dlsa
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ltzoo`` console script."""
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
