"""Built lexical indexes on disk, one folder per store fingerprint, beside the store.

A folder is written under a temporary name and renamed into place, so a reader (another API
process, a restart) sees a whole index or none; what cannot be read is removed and rebuilt.
Only the newest few are kept: an index is as large as the text of every paragraph.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

from rag.bm25 import FORMAT, Bm25

log = logging.getLogger(__name__)
KEEP = 2  # another process may still be loading the one before the newest


class LexicalCache:
    def __init__(self, folder: Path):
        self.folder = folder

    def _path(self, fingerprint: str) -> Path:
        return self.folder / f"{FORMAT}-{fingerprint}"

    def load(self, fingerprint: str) -> tuple[Bm25, dict[str, str]] | None:
        path = self._path(fingerprint)
        if not path.is_dir():
            return None
        try:
            index = Bm25.load(path)
            with (path / "words.json").open(encoding="utf-8") as f:
                display = json.load(f)
            if not isinstance(display, dict):
                raise ValueError("words.json is not an object")
        except (OSError, ValueError) as e:
            log.warning("lexical index at %s cannot be read (%s); rebuilding it", path, e)
            shutil.rmtree(path, ignore_errors=True)
            return None
        os.utime(path)  # most recently used: pruned last
        return index, display

    def save(self, fingerprint: str, index: Bm25, display: dict[str, str]) -> None:
        """Best effort: a folder that cannot be written (read-only, full) costs the next start
        a rebuild, never an answer."""
        path = self._path(fingerprint)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=".writing-", dir=self.folder))
            try:
                index.save(tmp)
                with (tmp / "words.json").open("w", encoding="utf-8") as f:
                    json.dump(display, f, ensure_ascii=False, separators=(",", ":"))
                if path.exists():  # another process wrote the same index meanwhile
                    return
                os.replace(tmp, path)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            self._prune()
        except OSError as e:
            log.warning("lexical index not saved to %s (%s); the next start rebuilds it", path, e)

    def _prune(self) -> None:
        built = [p for p in self.folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
        built.sort(key=lambda p: p.stat().st_mtime, reverse=True)
        for old in built[KEEP:]:
            shutil.rmtree(old, ignore_errors=True)
        for stale in self.folder.glob(".writing-*"):  # a writer killed mid-way, long ago
            try:
                if stale.stat().st_mtime < built[0].stat().st_mtime - 3600:
                    shutil.rmtree(stale, ignore_errors=True)
            except (OSError, IndexError):
                pass
