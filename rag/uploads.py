"""Uploaded files are kept as files in the sources folder, where `rag ingest` finds them again.

A source that lived only inside the store would be lost by a re-index (a new embedding model, a
deleted data folder, ``--prune``). So an upload is written to ``<sources>/<name>`` first and then
indexed like any other file of the folder: a re-index reproduces the same source id, paragraph
ids and offsets.

Names: the name the user gave, in Unicode NFC (so "é" typed two ways is one file), spaces at the
ends trimmed, runs of spaces made one, and characters some file systems refuse (``<>"|?*``)
replaced by ``_``. Anything that could leave the folder or hide from ingest (folders, ``..``,
a leading dot, a drive, control characters) is refused, never rewritten into something else.
Collisions: a name already in the folder is *replaced*, file and index, as re-saving a file
would; the same bytes again change nothing.
"""

from __future__ import annotations

import os
import re
import unicodedata
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from rag.errors import InputError
from rag.ingest import SUPPORTED_SUFFIXES

MAX_NAME_CHARS = 255
_REPLACED = re.compile(r'[<>"|?*]')


def safe_name(name: str) -> str:
    """The name an upload is stored under (see the module docstring); InputError if refused."""
    nfc = unicodedata.normalize("NFC", name or "")
    if len(nfc) > MAX_NAME_CHARS or any(unicodedata.category(ch) == "Cc" for ch in nfc):
        raise InputError("file name is too long or has control characters")
    clean = re.sub(r" {2,}", " ", nfc).strip()
    if not clean:
        raise InputError("the upload has no file name")
    if "/" in clean or "\\" in clean or ":" in clean or clean.startswith("."):
        raise InputError(
            f"file name {clean!r} must be a plain name: no folders, '..', drive or leading dot"
        )
    if PurePosixPath(clean).suffix.lower() not in SUPPORTED_SUFFIXES:
        kinds = ", ".join(SUPPORTED_SUFFIXES)
        raise InputError(f"{clean}: unsupported file type; use one of {kinds}")
    return _REPLACED.sub("_", clean)


def _inside(folder: Path, name: str) -> Path:
    """``folder / name``, checked to be directly inside the folder once links are resolved."""
    root = folder.resolve()
    path = root / name
    if path.parent.resolve() != root:
        raise InputError(f"{name}: would be stored outside the sources folder")
    return path


@contextmanager
def kept_file(folder: Path, name: str, data: bytes) -> Iterator[Path]:
    """Write ``data`` to ``folder/name`` for the body of the ``with``; if the body fails (the
    store is down, say), put back what was there before, so file and index still agree.

    Written to a hidden temporary file (ingest skips hidden files) and renamed into place, so a
    crash never leaves half a file under the real name.
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = _inside(folder, name)
    token = uuid.uuid4().hex[:12]
    part = path.with_name(f".{name}.{token}.part")
    backup = path.with_name(f".{name}.{token}.previous")
    part.write_bytes(data)
    had_previous = path.exists() or path.is_symlink()
    if had_previous:
        os.replace(path, backup)  # a link is moved as a link: nothing outside is touched
    os.replace(part, path)
    try:
        yield path
    except BaseException:
        _restore(path, backup if had_previous else None)
        raise
    if had_previous:
        backup.unlink(missing_ok=True)


def _restore(path: Path, backup: Path | None) -> None:
    if backup is None:
        path.unlink(missing_ok=True)
    else:
        os.replace(backup, path)


def remove_file(folder: Path, source_id: str) -> bool:
    """Delete the file of ``source_id`` from the sources folder; False when there is none."""
    root = folder.resolve()
    path = root / source_id
    if not path.parent.resolve().is_relative_to(root):
        return False
    if not (path.is_file() or path.is_symlink()):
        return False
    path.unlink()
    return True
