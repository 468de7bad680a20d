"""A saved model folder is consistent or refused: a manifest of the files' hashes, written last.

Low-level (imports only :mod:`ltzoo.files`). A folder write goes:

1. :func:`begin_folder_write` reads the previous manifest (the files ltzoo wrote there before),
   writes the marker ``.ltzoo-saving`` and removes the old manifest;
2. the caller writes its files (each atomically);
3. :func:`finish_folder_write` removes files of the previous save that this save did not write
   (only names the old manifest lists: files ltzoo did not write are never touched), writes
   ``ltzoo_manifest.json`` (name -> sha256 of every written file) and removes the marker.

:func:`check_folder` (called on load) refuses a folder holding the marker (a save was
interrupted: new weights may sit beside an old config) or whose files differ from the manifest.
A folder without a manifest (written by hand or by an older ltzoo) loads as before.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable, Iterable, Mapping

from ltzoo.files import check_safetensors_file, clean_stale_temps, seal_file, temp_path_for, write_bytes_atomic

__all__ = ["MANIFEST_NAME", "SAVING_MARKER", "file_sha256", "write_folder", "begin_folder_write", "finish_folder_write",
           "check_folder", "check_not_interrupted", "manifest_files"]

MANIFEST_NAME = "ltzoo_manifest.json"
SAVING_MARKER = ".ltzoo-saving"


def file_sha256(path: str | os.PathLike) -> str:
    """The sha256 hex digest of a file's bytes (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def manifest_files(directory: str | os.PathLike) -> dict[str, str]:
    """``{file name: sha256}`` of the folder's manifest ({} when there is none).

    Raises:
        ValueError: If the manifest is not a JSON object of file names to hex digests.
    """
    path = Path(directory) / MANIFEST_NAME
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path} is not valid JSON ({e}); the folder is corrupted") from None
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
        raise ValueError(f"{path} has no 'files' object of name -> sha256; the folder is corrupted")
    bad = [k for k in files if k != Path(k).name or k in ("", ".", "..")]
    if bad:
        raise ValueError(f"{path} names files outside its folder: {bad}")
    return files


def begin_folder_write(directory: str | os.PathLike) -> dict[str, str]:
    """Mark ``directory`` as being written; return the previous manifest's files (to clean up later).

    Args:
        directory: The model folder (created if needed).

    Returns:
        The previous manifest's ``{name: sha256}`` ({} for a fresh folder).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    try:
        old = manifest_files(directory)
    except ValueError:
        old = {}
    write_bytes_atomic(directory / SAVING_MARKER, b"an ltzoo save into this folder has not finished\n")
    (directory / MANIFEST_NAME).unlink(missing_ok=True)
    return old


def finish_folder_write(directory: str | os.PathLike, written: Iterable[str], previous: dict[str, str]) -> Path:
    """Remove the previous save's files this save did not write, write the manifest, drop the marker.

    Args:
        directory: The model folder.
        written: Names of the files this save wrote.
        previous: What :func:`begin_folder_write` returned.

    Returns:
        The manifest path.
    """
    directory, written = Path(directory), sorted(set(written))
    for name in sorted(set(previous) - set(written)):
        (directory / name).unlink(missing_ok=True)  # a stale file of the earlier save (e.g. a per-class plot)
    files = {name: file_sha256(directory / name) for name in written}
    text = json.dumps({"format": "ltzoo-folder-1", "files": files}, indent=2) + "\n"
    write_bytes_atomic(directory / MANIFEST_NAME, text.encode("utf-8"))
    (directory / SAVING_MARKER).unlink(missing_ok=True)
    return directory / MANIFEST_NAME


def write_folder(directory: str | os.PathLike, writers: Mapping[str, Callable[[Path], None]]) -> Path:
    """Write a set of files into ``directory`` so that it is consistent or refused on load.

    Every file is first written to ltzoo's temporary file in the folder (``writers[name](tmp_path)``),
    fsynced and given the umask mode; a failure there leaves the folder exactly as it was. Then the
    marker is set, the files are renamed into place, files of the previous save not written now
    are removed, the manifest is written and the marker removed (:func:`begin_folder_write`,
    :func:`finish_folder_write`).

    Args:
        directory: The folder (created if needed).
        writers: File name -> function writing that file's content to the path it is given.

    Returns:
        The folder.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(directory)
    staged: dict[str, Path] = {}
    try:
        for name, write in writers.items():
            staged[name] = temp_path_for(directory / name)
            write(staged[name])
            seal_file(staged[name])
        previous = begin_folder_write(directory)
        for name, tmp in staged.items():
            os.replace(tmp, directory / name)
        finish_folder_write(directory, list(staged), previous)
    finally:
        for tmp in staged.values():
            tmp.unlink(missing_ok=True)
    return directory


def check_not_interrupted(directory: str | os.PathLike) -> None:
    """Refuse a folder whose last ltzoo save did not finish (the marker is still there).

    Raises:
        ValueError: Naming the folder.
    """
    directory = Path(directory)
    if (directory / SAVING_MARKER).exists():
        raise ValueError(f"{directory}: an ltzoo save into this folder was interrupted ({SAVING_MARKER} is there), "
                         "so its files may come from two different saves; save the model again")


def check_folder(directory: str | os.PathLike, names: Iterable[str] | None = None) -> None:
    """Refuse a folder whose last save was interrupted or whose files differ from its manifest.

    Args:
        directory: The model folder.
        names: Files to verify (default: every file the manifest lists).

    Raises:
        ValueError: Naming the folder and the file that changed.
    """
    directory = Path(directory)
    check_not_interrupted(directory)
    files = manifest_files(directory)
    for name in (files if names is None else [n for n in names if n in files]):
        path = directory / name
        if not path.is_file():
            continue  # the loader names a missing weights / config file itself; a missing card is harmless
        if name.endswith(".safetensors"):
            check_safetensors_file(path)  # a truncated / corrupted file says so, before the hash does
        if file_sha256(path) != files[name]:
            raise ValueError(f"{directory}: {name} does not match {MANIFEST_NAME} (changed or corrupted after "
                             "the save); save the model again")
