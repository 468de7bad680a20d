"""One file of a Hugging Face Hub repository, downloaded or found in the cache, with errors that name it.

Low-level (imports nothing of ltzoo): the timm-backed backbones fetch timm's weights with it and
the Hub layer fetches ltzoo checkpoints with it. Cache, revision, offline mode (``HF_HUB_OFFLINE``)
and endpoint (``HF_ENDPOINT``) are huggingface_hub's.
"""
from __future__ import annotations

from pathlib import Path

from ltzoo.files import WEIGHTS_NAME

__all__ = ["hub_file", "hub_errors"]


def hub_errors():
    """huggingface_hub's (not cached offline, file missing, repository missing, revision missing) errors."""
    from huggingface_hub.errors import (
        LocalEntryNotFoundError,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )
    return LocalEntryNotFoundError, RemoteEntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError


def hub_file(repo_id: str, filename: str, revision: str | None = None, cache_dir: str | Path | None = None,
             token: str | bool | None = None) -> Path:
    """Download (or find in the cache) one file of a Hub repository with ``hf_hub_download``.

    Cache, revision, offline mode (``HF_HUB_OFFLINE``) and endpoint (``HF_ENDPOINT``) are huggingface_hub's.

    Returns:
        The local path of the file.

    Raises:
        RepositoryNotFoundError, RevisionNotFoundError, RemoteEntryNotFoundError: huggingface_hub's errors,
            with the repository named; LocalEntryNotFoundError when the Hub cannot be reached and the
            file is not cached.
    """
    from importlib.metadata import PackageNotFoundError, version

    from huggingface_hub import hf_hub_download

    try:
        ltzoo_version = version("ltzoo")
    except PackageNotFoundError:  # a source tree without an install
        ltzoo_version = "unknown"
    not_cached, remote_missing, repo_missing, rev_missing = hub_errors()
    where = f"{repo_id!r}" + (f" at revision {revision!r}" if revision else "")
    try:
        return Path(hf_hub_download(repo_id, filename, revision=revision, cache_dir=cache_dir, token=token,
                                    library_name="ltzoo", library_version=ltzoo_version))
    except not_cached as e:
        raise not_cached(
            f"{e}\nltzoo: {filename!r} of Hugging Face Hub repository {where} is not in the local Hub cache and the Hub "
            "cannot be reached (HF_HUB_OFFLINE=1 is set, or there is no network). Download it once with network "
            f"access (unset HF_HUB_OFFLINE), or copy the model folder here and load it as 'local-dir:/path/to/folder'.") from e
    except repo_missing as e:
        e.append_to_message(f"\nltzoo: no Hugging Face Hub repository {repo_id!r} (or it is private/gated "
                            "and no valid token was given).")
        raise
    except rev_missing as e:
        e.append_to_message(f"\nltzoo: repository {repo_id!r} has no revision {revision!r}.")
        raise
    except remote_missing as e:
        extra = (" ltzoo loads weights only from model.safetensors and never unpickles pytorch_model.bin"
                 if filename == WEIGHTS_NAME else "")
        e.append_to_message(f"\nltzoo: repository {where} has no file {filename!r}.{extra}")
        raise
