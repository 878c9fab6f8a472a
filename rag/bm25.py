"""BM25 over the stored nodes: built page by page with bm25s, searched with numpy, and written
to / read from a folder so a restart does not rebuild it (``LexicalIndex`` decides when)."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rag.types import Paragraph

# bm25s' default token pattern (scikit-learn's): what llama-index's BM25Retriever used.
_TOKEN = re.compile(r"(?u)\b\w\w+\b")
_stemmers = threading.local()  # a PyStemmer object must not be used by two threads at once
# What a saved index holds, and how; a folder written by another version is rebuilt, not read.
FORMAT = "bm25-v1"
_PARAGRAPH_FIELDS = ("id", "source", "title", "index", "start", "end", "text", "hash")


def _stemmer() -> Any:
    stemmer = getattr(_stemmers, "english", None)
    if stemmer is None:
        import Stemmer

        stemmer = _stemmers.english = Stemmer.Stemmer("english")
    return stemmer


@dataclass(frozen=True)
class Bm25:
    """A built BM25 index: bm25s' score matrix (one column of precomputed per-node scores per
    stem, CSC), the stem vocabulary, and per node (row) its id and the paragraph a hit becomes.

    Tokenisation is llama-index's ``BM25Retriever``'s, so every score is the same as before:
    lower-case, bm25s' token pattern, bm25s' English stopwords removed, PyStemmer's English
    Snowball stemmer, for the nodes and for the question alike (a repeated question word counts
    twice, as it did); k1, b and the Lucene variant are bm25s' defaults. The ranking is the
    same but for the order of equal scores (see ``search``).

    Hits keep their paragraph in memory rather than only node ids whose records are fetched
    from Chroma per query. Measured at 100k paragraphs on the 2-core machine (embedded Chroma;
    a server adds a round trip): BM25 search p50/p95 0.5/0.7 ms with the paragraphs in memory,
    3.6/7.1 ms with ``collection.get(ids=<the 30 hits>)``; the paragraphs cost ~50 MiB of RSS
    (679 against 627 MiB after the build; windows of one paragraph share one object). The same
    table turns the dense search's node ids into paragraphs (``paragraph_of``).
    """

    data: np.ndarray  # float32 score of each (node, stem) pair, grouped by stem
    indices: np.ndarray  # the node (row) of each entry
    indptr: np.ndarray  # stem s owns entries indptr[s]:indptr[s + 1]
    vocab: dict[str, int]  # stem -> column
    stopwords: frozenset[str]  # bm25s' English stopwords: never indexed, dropped from questions
    paragraphs: list[Paragraph]  # per node
    node_ids: list[str]  # per node
    _rows: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._rows.update((node_id, row) for row, node_id in enumerate(self.node_ids))

    def paragraph_of(self, node_id: str) -> Paragraph | None:
        row = self._rows.get(node_id)
        return self.paragraphs[row] if row is not None else None

    def search(self, question: str, k: int) -> list[tuple[Paragraph, float]]:
        words = [w for w in _TOKEN.findall(question.lower()) if w not in self.stopwords]
        columns = [self.vocab[s] for s in _stemmer().stemWords(words) if s in self.vocab]
        if not columns or k < 1:  # no word the sources use: nothing to rank by
            return []
        scores = np.zeros(len(self.paragraphs), dtype=self.data.dtype)
        for c in columns:  # bm25s' get_scores_from_ids: the sum of the stems' columns, in order
            lo, hi = self.indptr[c], self.indptr[c + 1]
            scores[self.indices[lo:hi]] += self.data[lo:hi]  # no row twice in a column: no add.at
        # Top k among the nodes that score at all. bm25s (and so llama-index) ran argpartition
        # over every node: with most scores 0 that is numpy's slow case (~14 ms at 100k nodes,
        # against 0.3 ms here), and which of several equal scores came first was whatever the
        # partition left; here equal scores keep storage order.
        rows = np.flatnonzero(scores > 0.0)
        if len(rows) > k:  # only nodes at or above the k-th best score can be in the top k
            cut = len(rows) - k
            rows = rows[scores[rows] >= np.partition(scores[rows], cut)[cut]]
        rows = rows[np.lexsort((rows, -scores[rows]))][:k]
        return [(self.paragraphs[i], float(scores[i])) for i in rows]

    # -- on disk ---------------------------------------------------------------------------

    def save(self, folder: Path) -> None:
        """Write into ``folder`` (which must exist and be empty): the matrix as .npy files,
        the rest as JSON; a paragraph shared by several windows is written once."""
        np.save(folder / "data.npy", self.data, allow_pickle=False)
        np.save(folder / "indices.npy", self.indices, allow_pickle=False)
        np.save(folder / "indptr.npy", self.indptr, allow_pickle=False)
        unique: dict[int, int] = {}  # id(paragraph) -> its position among the written ones
        rows = [unique.setdefault(id(p), len(unique)) for p in self.paragraphs]
        written = list({id(p): p for p in self.paragraphs}.values())
        columns = {f: [getattr(p, f) for p in written] for f in _PARAGRAPH_FIELDS}
        meta = {
            "format": FORMAT,
            "stems": sorted(self.vocab, key=self.vocab.__getitem__),
            "stopwords": sorted(self.stopwords),
            "node_ids": self.node_ids,
            "rows": rows,
            "paragraphs": columns,
        }
        with (folder / "index.json").open("w", encoding="utf-8") as f:
            json.dump(meta, f, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def load(cls, folder: Path) -> Bm25:
        """What ``save`` wrote. The score matrix is memory-mapped: a restart reads the pages a
        question touches, not the whole matrix. Raises ValueError for anything unreadable."""
        try:
            with (folder / "index.json").open(encoding="utf-8") as f:
                meta = json.load(f)
            if meta.get("format") != FORMAT:
                raise ValueError(f"format {meta.get('format')!r}, not {FORMAT!r}")
            arrays = {
                name: np.load(folder / f"{name}.npy", mmap_mode="r", allow_pickle=False)
                for name in ("data", "indices", "indptr")
            }
            columns = meta["paragraphs"]
            strings: dict[str, str] = {}  # one object per distinct source name and title
            written = [
                Paragraph(
                    id=pid,
                    source=strings.setdefault(source, source),
                    title=strings.setdefault(title, title),
                    index=index,
                    start=start,
                    end=end,
                    text=text,
                    hash=digest,
                )
                for pid, source, title, index, start, end, text, digest in zip(
                    *(columns[f] for f in _PARAGRAPH_FIELDS), strict=True
                )
            ]
            paragraphs = [written[r] for r in meta["rows"]]
            stems: list[str] = meta["stems"]
            node_ids: list[str] = meta["node_ids"]
            if not (len(paragraphs) == len(node_ids) and len(arrays["indptr"]) == len(stems) + 1):
                raise ValueError("inconsistent sizes")
        except (OSError, KeyError, IndexError, TypeError, json.JSONDecodeError) as e:
            raise ValueError(f"{type(e).__name__}: {e}") from e
        return cls(
            arrays["data"],
            arrays["indices"],
            arrays["indptr"],
            {s: i for i, s in enumerate(stems)},
            frozenset(meta["stopwords"]),
            paragraphs,
            node_ids,
        )


class Bm25Builder:
    """Nodes added page by page (token ids into one shared vocabulary), then ``build``."""

    def __init__(self) -> None:
        import Stemmer
        from bm25s.tokenization import Tokenizer

        # Its own stemmer: a refresh thread may build while queries stem with theirs.
        self._tokenizer = Tokenizer(
            splitter=_TOKEN.pattern, stopwords="english", stemmer=Stemmer.Stemmer("english")
        )
        self._tokens: list[list[int]] = []
        self._paragraphs: list[Paragraph] = []
        self._node_ids: list[str] = []
        self._by_id: dict[str, Paragraph] = {}
        self._strings: dict[str, str] = {}  # one object per distinct source name and title

    def add(self, ids: list[str], texts: list[str], metadatas: Iterable[dict[str, Any]]) -> None:
        # allow_empty=False: a node without tokens stays empty (length 0), as in bm25s.tokenize.
        self._tokens.extend(
            self._tokenizer.streaming_tokenize(texts, update_vocab=True, allow_empty=False)
        )
        self._node_ids.extend(ids)
        for text, meta in zip(texts, metadatas, strict=True):
            pid = str(meta["paragraph_id"])
            p = self._by_id.get(pid)
            if p is None:
                p = self._by_id[pid] = self._paragraph(meta, text)
            self._paragraphs.append(p)

    def _paragraph(self, m: dict[str, Any], text: str) -> Paragraph:
        """``node_to_paragraph`` from a stored record."""
        strings = self._strings
        source, title = str(m["source"]), str(m["title"])
        return Paragraph(
            id=str(m["paragraph_id"]),
            source=strings.setdefault(source, source),
            title=strings.setdefault(title, title),
            index=int(m["index"]),
            start=int(m["start"]),
            end=int(m["end"]),
            text=m.get("paragraph_text") or text,
            hash=str(m["hash"]),
        )

    def build(self) -> Bm25 | None:
        import bm25s

        vocab = self._tokenizer.get_vocab_dict()  # stem -> column, in order of first use
        if not self._paragraphs or not vocab:
            return None
        model = bm25s.BM25()  # k1=1.5, b=0.75, Lucene: bm25s' defaults, as llama-index used
        model.index((self._tokens, vocab), create_empty_token=False, show_progress=False)
        self._tokens = []
        s = model.scores
        stopwords = frozenset(self._tokenizer.stopwords)
        return Bm25(
            s["data"], s["indices"], s["indptr"], vocab, stopwords, self._paragraphs, self._node_ids
        )
