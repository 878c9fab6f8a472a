"""Paragraphs -> llama-index nodes -> embeddings -> store, idempotently.

Node ids are derived from the paragraph id (itself from source + content), so writing the same
file twice writes the same ids: an ingest killed half-way and run again converges on the same
state, with no duplicates. Changed files are embedded in groups of about ``GROUP_NODES`` nodes
(one embedding call, texts sorted by length, instead of one small call per file), then written
in the order: upsert new nodes, delete stale ones, record the source last (sources new to the
store together, the others file by file); a source whose record is missing or stale is simply
redone, and with ``prune`` the nodes of a source that never got its record and whose file is
gone are removed.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode

from rag.embed import Embedder
from rag.ingest import ParsedFile
from rag.reading import read_folder
from rag.sentences import windows
from rag.store import ParagraphStore, StoredSource
from rag.types import IngestReport, Paragraph, Source


@dataclass(frozen=True)
class IngestProgress:
    """Where a sync is: files written (or found unchanged) and paragraphs with their vectors,
    each out of the whole run. A 5 MB file is one file but ten thousand paragraphs, so the
    paragraphs move while a big file is embedded."""

    files_done: int
    files: int
    paragraphs_done: int
    paragraphs: int
    current: str  # the file last finished, or being embedded


Progress = Callable[[IngestProgress], None]
FileNodes = tuple[ParsedFile, list[TextNode]]

# all-MiniLM-L6-v2 reads 256 word pieces; English runs ~1.3 pieces a word, so stay under ~180.
WORDS_PER_TOKEN = 0.7
# Nodes embedded together: the embedder sorts them by length, so a batch pads little.
GROUP_NODES = 512


def paragraph_nodes(p: Paragraph, max_words: int) -> list[TextNode]:
    """One node per paragraph; a paragraph too long for the embedder becomes sentence windows
    that all keep the paragraph's id and offsets (and their own, for highlighting)."""
    spans = windows(p.text, p.start, max_words) if len(p.text.split()) > max_words else []
    base = {
        "paragraph_id": p.id,
        "source": p.source,
        "title": p.title,
        "index": p.index,
        "start": p.start,
        "end": p.end,
        "hash": p.hash,
    }
    if len(spans) <= 1:
        node = TextNode(id_=f"{p.id}:0", text=p.text, metadata={**base, "window": 0})
        nodes = [node]
    else:
        nodes = [
            TextNode(
                id_=f"{p.id}:{w}",
                text=s.text,
                metadata={
                    **base,
                    "window": w,
                    "window_start": s.start,
                    "window_end": s.end,
                    "paragraph_text": p.text,
                },
            )
            for w, s in enumerate(spans)
        ]
    for node in nodes:
        # Keep bookkeeping out of what the embedder and the LLM see.
        node.excluded_embed_metadata_keys = list(node.metadata)
        node.excluded_llm_metadata_keys = list(node.metadata)
        node.relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id=p.source)
    return nodes


class Indexer:
    def __init__(self, store: ParagraphStore, embedder: Embedder, max_tokens: int):
        self.store = store
        self.embedder = embedder
        self.max_words = max(16, int(max_tokens * WORDS_PER_TOKEN))

    def parse_folder(self, root: Path) -> list[ParsedFile]:
        """The files of ``root`` that can be read (``rag.reading.read_folder`` says why the
        others cannot)."""
        return read_folder(root)[0]

    def sync(
        self,
        files: Sequence[ParsedFile],
        folder: str = "",
        prune: bool = False,
        progress: Progress | None = None,
        unreadable: Collection[str] = (),
    ) -> IngestReport:
        """Write what changed in ``files``. ``unreadable`` names files that are there but could
        not be read this time: whatever is stored for them stays as it is, even with ``prune``.
        """
        started = time.perf_counter()
        report = IngestReport()
        known = {s.source.id: s for s in self.store.list_sources()}
        tally = _Tally(len(files), sum(len(f.paragraphs) for f in files), progress)

        changed: list[FileNodes] = []
        for parsed in files:
            report.paragraphs += len(parsed.paragraphs)
            stored = known.get(parsed.source)
            if stored and stored.source.hash == parsed.hash:
                report.unchanged.append(parsed.source)
                tally.file_done(parsed, unchanged=True)
                continue
            (report.updated if stored else report.added).append(parsed.source)
            nodes = [n for p in parsed.paragraphs for n in paragraph_nodes(p, self.max_words)]
            changed.append((parsed, nodes))
        report.embedded = self._write_groups(_groups(changed), folder, set(known), tally)
        if prune:
            present = {f.source for f in files} | set(unreadable)
            for source_id, stored in known.items():
                if stored.folder == folder and source_id not in present:
                    self.store.delete_source(source_id)
                    report.removed.append(source_id)
            # Nodes of a source that never got its record: an ingest killed mid-source whose
            # file is gone since. Without a record nothing else would ever remove them.
            for source_id in sorted(self.store.node_sources() - set(known) - present):
                self.store.delete_source(source_id)
                report.removed.append(source_id)
        report.seconds = time.perf_counter() - started
        return report

    def _write_groups(
        self,
        groups: Iterable[list[FileNodes]],
        folder: str,
        recorded: Collection[str],
        tally: _Tally,
    ) -> int:
        """Group N is written on a second thread while group N+1 is embedded; groups are
        written in order, one at a time, as ``_store`` says. Chroma's embedded writes are CPU
        and hold the GIL, but ONNX Runtime's ``run`` releases it, so a write overlaps with the
        model's computing; ``_store`` keeps the number of writes down."""
        embedded = 0
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-write") as writer:
            pending: Future[None] | None = None
            for group in groups:
                embedded += self._embed(group, tally)
                if pending is not None:
                    pending.result()  # a failed write stops the ingest here, in order
                pending = writer.submit(self._store_group, group, folder, recorded, tally)
            if pending is not None:
                pending.result()
        return embedded

    def _store_group(
        self, group: list[FileNodes], folder: str, recorded: Collection[str], tally: _Tally
    ) -> None:
        self._store(group, folder, recorded)
        for parsed, _ in group:
            tally.file_done(parsed)

    def _embed(self, group: list[FileNodes], tally: _Tally) -> int:
        """Vectors on every node of the group: stored ones reused, the rest embedded."""
        nodes = [n for _, file_nodes in group for n in file_nodes]
        tally.expect(nodes, group[-1][0].source)
        reuse = self.store.embeddings([n.node_id for n in nodes])
        todo = [n for n in nodes if n.node_id not in reuse]
        tally.nodes_done([n for n in nodes if n.node_id in reuse])
        vectors = self.embedder.texts(
            [n.get_content() for n in todo],
            done=lambda indices: tally.nodes_done([todo[i] for i in indices]),
        )
        for node, vec in zip(todo, vectors, strict=True):
            node.embedding = vec
        for node in nodes:
            if node.embedding is None:
                node.embedding = reuse[node.node_id]
        return len(todo)

    def _store(self, group: list[FileNodes], folder: str, recorded: Collection[str]) -> None:
        """Sources new to the store together, the others file by file (``_store_file``).

        A source is new when it has no record and no node stored (``recorded`` holds the ids
        with a record when the sync began). Its nodes go in with the other new sources' in one
        upsert, then their records in one more: two Chroma writes a group instead of two a
        file. A write costs ~5-15 ms of CPU whatever its size, and holds the GIL, so per-file
        writes took CPU from the embedder: ingest of 2,000 bench paragraphs (101 files) spent
        9.9 s writing beside 13.4 s of embedding, 132 paragraphs/s; written this way, 2.1 s
        and 173 paragraphs/s (168 at 10k). Only ids that are not stored yet are upserted so: a
        SIGKILL inside the large write can at worst leave nodes without a record, which the
        next sync redoes file by file like any unrecorded source.
        """
        candidates = {parsed.source for parsed, _ in group if parsed.source not in recorded}
        fresh = candidates - self.store.sources_with_nodes(candidates)
        new = [(parsed, nodes) for parsed, nodes in group if parsed.source in fresh]
        if new:
            self.store.upsert_nodes([n for _, nodes in new for n in nodes])
            self.store.put_sources([_stored(parsed, folder) for parsed, _ in new])
        for parsed, nodes in group:
            if parsed.source not in fresh:
                self._store_file(parsed, nodes, folder)

    def _store_file(self, parsed: ParsedFile, nodes: list[TextNode], folder: str) -> None:
        """Nodes first, then stale nodes out, then the source record, so a source is recorded
        only once everything it has in the store is current.

        Sources already in the store are written one at a time: one upsert, one delete and
        one record write for a whole group of them was tried, and in one of seven runs of the
        SIGKILL test a recorded source then kept a stale node. A SIGKILL inside a large upsert
        of ids already stored can leave rows in Chroma's write-ahead log that are applied again
        later (chroma-core/chroma#7678 describes it), and a 512-node upsert makes that window
        large; the per-file writes have passed that test in every run so far.
        """
        self.store.upsert_nodes(nodes)
        keep = {n.node_id for n in nodes}
        stored = self.store.node_ids(parsed.source)
        self.store.delete_nodes([i for i in stored if i not in keep])
        self.store.put_source(_stored(parsed, folder))


def _stored(parsed: ParsedFile, folder: str) -> StoredSource:
    source = Source(
        id=parsed.source,
        title=parsed.title,
        paragraphs=len(parsed.paragraphs),
        hash=parsed.hash,
        chars=len(parsed.text),
    )
    return StoredSource(source=source, text=parsed.text, folder=folder)


class _Tally:
    """Counts for ``IngestProgress``: a paragraph is done when every node (window) it has has
    a vector; an unchanged file's paragraphs are done when the file is."""

    def __init__(self, files: int, paragraphs: int, report: Progress | None) -> None:
        self._files, self._paragraphs, self._report = files, paragraphs, report
        self._lock = threading.Lock()  # the embedding and the writing thread both report
        self._files_done = self._paragraphs_done = 0
        self._pending: Counter[str] = Counter()  # nodes still without a vector, per paragraph
        self._current = ""

    def expect(self, nodes: Sequence[TextNode], current: str) -> None:
        with self._lock:
            self._pending.update(str(n.metadata["paragraph_id"]) for n in nodes)
            self._current = current

    def nodes_done(self, nodes: Sequence[TextNode]) -> None:
        with self._lock:
            for node in nodes:
                pid = str(node.metadata["paragraph_id"])
                self._pending[pid] -= 1
                if self._pending[pid] <= 0:
                    del self._pending[pid]
                    self._paragraphs_done += 1
            if nodes:
                self._send()

    def file_done(self, parsed: ParsedFile, unchanged: bool = False) -> None:
        with self._lock:
            self._files_done += 1
            if unchanged:
                self._paragraphs_done += len(parsed.paragraphs)
            self._current = parsed.source
            self._send()

    def _send(self) -> None:
        if self._report:
            self._report(
                IngestProgress(
                    self._files_done,
                    self._files,
                    self._paragraphs_done,
                    self._paragraphs,
                    self._current,
                )
            )


def _groups(changed: list[FileNodes]) -> Iterator[list[FileNodes]]:
    """Whole files, about ``GROUP_NODES`` nodes a group."""
    group: list[FileNodes] = []
    size = 0
    for item in changed:
        group.append(item)
        size += len(item[1])
        if size >= GROUP_NODES:
            yield group
            group, size = [], 0
    if group:
        yield group
