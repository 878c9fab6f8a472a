"""Where ingest time goes: ``python -m rag.bench.ingest_profile [--paragraphs 2000]``.

Ingests the synthetic bench corpus into a fresh data folder in a temporary directory, with the
embedder's and the store's calls timed (wall time, summed per method; the writes run on their
own thread, so the embedding and writing totals overlap). Prints the rate and one line a method.
"""

from __future__ import annotations

import argparse
import functools
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rag.bench.corpus import write_corpus
from rag.config import Settings

# put_source is put_sources of one: a per-file record write counts under both.
_STORE_CALLS = (
    "upsert_nodes",
    "delete_nodes",
    "node_ids",
    "put_source",
    "put_sources",
    "embeddings",
    "sources_with_nodes",
    "list_sources",
)


def _timed(obj: Any, name: str, seconds: Counter[str], calls: Counter[str]) -> None:
    real: Callable[..., Any] = getattr(obj, name)
    lock = threading.Lock()

    @functools.wraps(real)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return real(*args, **kwargs)
        finally:
            with lock:
                seconds[name] += time.perf_counter() - started
                calls[name] += 1

    object.__setattr__(obj, name, wrapper)  # Embedder is a frozen dataclass


def main() -> None:
    from rag.wiring import build_pipeline

    ap = argparse.ArgumentParser(prog="python -m rag.bench.ingest_profile")
    ap.add_argument("--paragraphs", type=int, default=2000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="rag-ingest-profile-") as tmp:
        made = write_corpus(Path(tmp) / "corpus", args.paragraphs)
        pipeline = build_pipeline(Settings(data_dir=Path(tmp) / "data", sources_dir=made.folder))
        seconds: Counter[str] = Counter()
        calls: Counter[str] = Counter()
        for name in _STORE_CALLS:
            _timed(pipeline.store, name, seconds, calls)
        _timed(pipeline.embedder, "texts", seconds, calls)
        started = time.perf_counter()
        report = pipeline.ingest(made.folder)
        total = time.perf_counter() - started
    print(
        f"{report.paragraphs} paragraphs in {made.files} files: {total:.1f} s, "
        f"{report.paragraphs / total:.1f} paragraphs/s"
    )
    for name, s in seconds.most_common():
        print(f"  {name:20s} {s:7.2f} s in {calls[name]} calls")


if __name__ == "__main__":
    main()
