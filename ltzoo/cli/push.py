"""``ltzoo push``: upload a folder written by ``ltzoo.save_pretrained`` to the Hugging Face Hub."""
from __future__ import annotations

import argparse
from typing import Any

__all__ = ['add_parser']


def _cmd_push(args: argparse.Namespace) -> int:
    from ltzoo.hub import push_folder

    info = push_folder(args.directory, args.repo_id, token=args.token, revision=args.revision,
                       private=True if args.private else None, commit_message=args.commit_message,
                       create_pr=args.create_pr)
    print(f"pushed {args.directory} to {args.repo_id}: {getattr(info, 'commit_url', info)}")
    return 0


def add_parser(sub: Any) -> None:
    """Add ``push`` to the ``ltzoo`` subparsers."""
    p = sub.add_parser("push", help="upload a folder written by ltzoo.save_pretrained to the Hugging Face Hub")
    p.add_argument("directory", help="folder with model.safetensors, config.json and README.md")
    p.add_argument("repo_id", help="Hub repository, 'org/name' (created if missing)")
    p.add_argument("--token", default=None, help="Hub token (default: huggingface_hub login / HF_TOKEN)")
    p.add_argument("--revision", default=None, help="branch to commit to (created if missing)")
    p.add_argument("--private", action="store_true", help="create the repository as private")
    p.add_argument("--commit-message", default=None, help="commit message")
    p.add_argument("--create-pr", action="store_true", help="open a pull request instead of committing")
    p.set_defaults(func=_cmd_push)
