"""Upload checkpoints to the Hugging Face Hub with huggingface_hub's HfApi (create_repo, upload_folder).

A folder is checked before upload: it must hold ``config.json`` and a valid ``model.safetensors``,
and no pickle weight file (``.bin``, ``.pt``, ``.pth``, ...). When its config names another
repository, config.json and the card are regenerated for the target repository in a staging copy
(the folder itself is never modified).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from torch import nn

from ltzoo.files import CONFIG_NAME, PICKLE_SUFFIXES, PLOT_NAME, TEMP_PREFIX, WEIGHTS_NAME, check_safetensors_file
from ltzoo.folder_manifest import MANIFEST_NAME, SAVING_MARKER, check_folder

__all__ = ["push_to_hub", "push_folder"]


def _check_folder(folder: Path) -> dict[str, Any]:
    if not folder.is_dir():
        raise FileNotFoundError(f"not a folder: {folder}")
    for required in (CONFIG_NAME, WEIGHTS_NAME):
        if not (folder / required).is_file():
            raise FileNotFoundError(f"{folder} has no {required}; write it with ltzoo.save_pretrained(model, folder)")
    pickles = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise ValueError(f"refusing to push pickle weight files {pickles} from {folder}; ltzoo publishes safetensors only")
    check_safetensors_file(folder / WEIGHTS_NAME)
    check_folder(folder)  # never publish an interrupted or altered save
    from ltzoo.hub.resolve import parse_config

    config = json.loads((folder / CONFIG_NAME).read_text(encoding="utf-8"))
    parse_config(config, str(folder))  # an ltzoo config naming a known architecture
    return config


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _staged(folder: Path, config: dict[str, Any], repo_id: str, tmp: str) -> Path:
    """``folder`` itself, or a staging copy whose config.json and card name ``repo_id``."""
    if config.get("pretrained_cfg", {}).get("hf_hub_id") == repo_id:
        return folder
    from ltzoo.files import write_bytes_atomic
    from ltzoo.hub.cards import render_card

    staged = Path(tmp) / "staged"
    shutil.copytree(folder, staged, copy_function=_link_or_copy)
    config = {**config, "pretrained_cfg": {**config.get("pretrained_cfg", {}), "hf_hub_id": repo_id}}
    for name in (CONFIG_NAME, PLOT_NAME, "README.md"):
        (staged / name).unlink(missing_ok=True)
    write_bytes_atomic(staged / CONFIG_NAME, (json.dumps(config, indent=2) + "\n").encode("utf-8"))
    for name, data in render_card(config, plot=(folder / PLOT_NAME).is_file()).items():
        write_bytes_atomic(staged / name, data)
    return staged


def push_folder(directory: str | os.PathLike, repo_id: str, *, token: str | bool | None = None,
                revision: str | None = None, private: bool | None = None, commit_message: str | None = None,
                create_pr: bool = False, endpoint: str | None = None):
    """Upload a folder written by :func:`ltzoo.save_pretrained` to Hub repository ``repo_id``.

    Args:
        directory: The folder (config.json, model.safetensors, README.md, plot).
        repo_id: "org/name"; created if missing (``exist_ok``).
        token: Hub token (default: huggingface_hub's login / ``HF_TOKEN``).
        revision: Branch to commit to; created from main if missing.
        private: Create the repository as private.
        commit_message: Commit message.
        create_pr: Open a pull request instead of committing to the branch.
        endpoint: Hub endpoint (default: ``HF_ENDPOINT`` or huggingface.co).

    Returns:
        huggingface_hub's ``CommitInfo`` (``.commit_url``, ``.oid``).
    """
    from huggingface_hub import HfApi

    from ltzoo import __version__

    folder = Path(directory)
    config = _check_folder(folder)
    api = HfApi(endpoint=endpoint, token=token, library_name="ltzoo", library_version=__version__)
    api.create_repo(repo_id, token=token, private=private, repo_type="model", exist_ok=True)
    if revision and revision != "main":
        api.create_branch(repo_id, branch=revision, token=token, repo_type="model", exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ltzoo-push-") as tmp:
        return api.upload_folder(
            repo_id=repo_id, folder_path=_staged(folder, config, repo_id, tmp), token=token, revision=revision,
            repo_type="model", create_pr=create_pr, commit_message=commit_message or f"Upload {repo_id} with ltzoo",
            ignore_patterns=[MANIFEST_NAME, SAVING_MARKER, f"{TEMP_PREFIX}*"],  # local bookkeeping stays local
        )


def push_to_hub(model: nn.Module | str | os.PathLike, repo_id: str, *, token: str | bool | None = None,
                revision: str | None = None, private: bool | None = None, commit_message: str | None = None,
                create_pr: bool = False, endpoint: str | None = None, **save_kwargs: Any):
    """Save ``model`` with :func:`ltzoo.save_pretrained` and upload it to ``repo_id``.

    Args:
        model: An ltzoo model, or a folder already written by ``save_pretrained``.
        repo_id: "org/name".
        token, revision, private, commit_message, create_pr, endpoint: See :func:`push_folder`.
        **save_kwargs: ``save_pretrained`` arguments (``tag``, ``metrics``, ``per_class``,
            ``class_counts``, ``recipe``, ``paper``, ``license``, ...).

    Returns:
        huggingface_hub's ``CommitInfo``.
    """
    hub = dict(token=token, revision=revision, private=private, commit_message=commit_message,
               create_pr=create_pr, endpoint=endpoint)
    if isinstance(model, (str, os.PathLike)):
        if save_kwargs:
            raise TypeError(f"save arguments {sorted(save_kwargs)} apply to a model, not to an existing folder")
        return push_folder(model, repo_id, **hub)
    from ltzoo.hub.save import save_pretrained

    with tempfile.TemporaryDirectory(prefix="ltzoo-save-") as tmp:
        save_pretrained(model, tmp, repo_id=repo_id, **save_kwargs)
        return push_folder(tmp, repo_id, **hub)
