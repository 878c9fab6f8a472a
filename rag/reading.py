"""Which files of a sources folder are read, and why one is skipped.

Each file is read and parsed on its own: a file that cannot be (empty, not UTF-8, NUL bytes, a
link out of the folder, unreadable) is reported with its reason and the others go on, so one
broken file among 10,000 articles costs that file, not the run. What a good file's text becomes
is ``rag.ingest``'s business; this module only decides which files get there.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rag.errors import IngestError
from rag.ingest import ParsedFile, find_files, parse_file
from rag.types import SkippedFile

# (files read so far, files found, the file just read)
ReadProgress = Callable[[int, int, str], None]


def read_folder(
    root: Path, progress: ReadProgress | None = None
) -> tuple[list[ParsedFile], list[SkippedFile]]:
    """Every supported file under ``root`` parsed, and every file that could not be, with why.

    Raises IngestError only when ``root`` itself is missing: then there is nothing to report on.
    """
    found = list(find_files(root))
    folder = root.resolve() if root.is_dir() else None
    parsed: list[ParsedFile] = []
    skipped: list[SkippedFile] = []
    for done, (source, path) in enumerate(found, 1):
        try:
            parsed.append(read_file(source, path, folder))
        except IngestError as e:
            skipped.append(SkippedFile(file=source, reason=e.reason))
        if progress:
            progress(done, len(found), source)
    return parsed, skipped


def read_file(source: str, path: Path, folder: Path | None) -> ParsedFile:
    """One file, checked then parsed; IngestError names it and says why it cannot be used.

    A link inside ``folder`` that leads outside it is refused: the sources folder is the
    boundary of what may be read and served back as source text.
    """
    if folder is not None and not path.resolve().is_relative_to(folder):
        raise IngestError(source, f"links outside the sources folder {folder}; not read")
    try:
        data = path.read_bytes()
    except OSError as e:  # permissions, a dangling link, a file removed while we listed
        raise IngestError(source, f"cannot be read: {e.strerror or e}") from None
    return parse_file(source, data)
