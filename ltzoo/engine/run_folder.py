"""The run folder of ``ltzoo train``: refused when it holds another run, unless resuming or overwriting.

A run writes ``last.pt``, ``log.json``, ``metrics.json`` and ``model/`` (a :func:`ltzoo.save_pretrained`
folder) into its ``output_dir``. Training into a folder that already holds a run would silently
replace it (or, interrupted, leave a new ``last.pt`` beside the old ``model/``), so
:func:`prepare_output_dir` refuses it unless the caller resumes that run or asks to overwrite it;
overwriting removes only the files ltzoo wrote there and refuses a folder holding anything else.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from ltzoo.files import TEMP_PREFIX
from ltzoo.folder_manifest import MANIFEST_NAME, SAVING_MARKER, manifest_files

__all__ = ["RUN_FILES", "MODEL_FOLDER", "prepare_output_dir", "check_writable_folder"]

RUN_FILES = ("last.pt", "log.json", "metrics.json")
MODEL_FOLDER = "model"


def check_writable_folder(path: str | os.PathLike, name: str = "output_dir") -> Path:
    """Check, before any training, that ``path`` is (or can be created as) a folder this process can write.

    Nothing is created: the folder itself when it exists, else its nearest existing parent, must be
    a writable folder.

    Raises:
        ValueError: If ``path`` or a parent is a file, or the folder cannot be written or created.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{name} {str(path)!r} is a file, not a folder")
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise ValueError(f"{name} {str(path)!r} is not writable: {str(probe)!r} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ValueError(f"{name} {str(path)!r} is not writable (no write permission on {str(probe)!r})")
    return path


def _ltzoo_entries(folder: Path) -> tuple[list[Path], list[str]]:
    """(entries ltzoo wrote, names of anything else) in a run folder."""
    ours, other = [], []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(TEMP_PREFIX) or (entry.is_file() and entry.name in RUN_FILES):
            ours.append(entry)
        elif entry.name == MODEL_FOLDER and entry.is_dir():
            try:
                known = set(manifest_files(entry)) | {MANIFEST_NAME, SAVING_MARKER}
            except ValueError:
                known = {MANIFEST_NAME, SAVING_MARKER}
            extra = [f"{MODEL_FOLDER}/{p.name}" for p in entry.iterdir()
                     if p.name not in known and not p.name.startswith(TEMP_PREFIX)]
            if (entry / MANIFEST_NAME).is_file() or (entry / SAVING_MARKER).exists():
                other += extra
                ours.append(entry)
            else:
                other.append(f"{MODEL_FOLDER}/ (no {MANIFEST_NAME}: not written by this ltzoo)")
        else:
            other.append(entry.name)
    return ours, other


def prepare_output_dir(path: str | os.PathLike, resume: bool = False, overwrite: bool = False,
                       remove: bool = True) -> Path:
    """Check (and, with ``overwrite``, empty) a run folder before training starts.

    Args:
        path: The run folder (``output_dir``); created when missing.
        resume: The run continues from ``path/last.pt``: an existing run there is expected.
        overwrite: Replace the run there: remove the files ltzoo wrote (``last.pt``, ``log.json``,
            ``metrics.json``, ``model/``, its temporary files); refused when the folder holds anything else.
        remove: Actually remove them (False on the non-zero ranks of a distributed run).

    Returns:
        The folder.

    Raises:
        ValueError: If the folder is a file or not writable, holds a run and neither flag is given,
            both flags are given, or ``overwrite`` finds files ltzoo did not write.
    """
    if resume and overwrite:
        raise ValueError("resume and overwrite exclude each other: resume continues the run in output_dir, "
                         "overwrite replaces it")
    folder = Path(path)
    if folder.is_dir() and any(folder.iterdir()) and not resume:
        ours, other = _ltzoo_entries(folder)
        if not overwrite:
            held = ", ".join(sorted(p.name for p in ours) + other)
            raise ValueError(f"output_dir {str(folder)!r} is not empty (it holds {held}); pass --resume to continue "
                             "that run, --overwrite to replace it, or choose another --output-dir")
        if other:
            raise ValueError(f"output_dir {str(folder)!r} holds files ltzoo did not write ({', '.join(other)}); "
                             "--overwrite removes only a run's own files: move them or choose another --output-dir")
        if remove:
            for entry in ours:
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink(missing_ok=True)
    return check_writable_folder(folder)
