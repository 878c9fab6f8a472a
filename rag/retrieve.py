"""Hybrid retrieval: BM25 (names and numbers) + dense (paraphrase), fused by reciprocal rank.

llama-index's ``QueryFusionRetriever`` does the fusion too, but it returns only the fused score;
the trace and the eval need each retriever's rank, and windows of one paragraph must collapse to
that paragraph before fusion, so the twenty lines of fusion live here.
"""

from __future__ import annotations

import difflib
import re
import threading
import time
from typing import Any

from llama_index.core.schema import TextNode

from rag.embed import Embedder
from rag.store import ParagraphStore, node_to_paragraph
from rag.text import STOPWORDS, fold
from rag.types import Paragraph, Retrieved


class LexicalIndex:
    """BM25 over every stored node, rebuilt when the store's sources change (in any process)."""

    def __init__(self, store: ParagraphStore, recheck_seconds: float = 1.0):
        self.store = store
        self.recheck_seconds = recheck_seconds
        self._lock = threading.Lock()
        self._fingerprint: str | None = None
        self._checked = 0.0
        self._retriever: Any = None
        self._size = 0
        self._vocab: set[str] = set()
        self._vocab_list: list[str] = []
        self._display: dict[str, str] = {}

    def correct(self, question: str) -> str:
        """Misspelt words replaced by the closest word the sources use ('prosecuters' ->
        'prosecutors'); words the sources know, and short words, are left alone."""
        self._current()
        vocab = self._vocab
        if not vocab:
            return question

        def fix(m: re.Match[str]) -> str:
            word = m.group(0)
            folded = fold(word)
            if len(folded) < 5 or folded in vocab or folded in STOPWORDS or folded.isdigit():
                return word
            close = difflib.get_close_matches(folded, self._vocab_list, n=1, cutoff=0.82)
            return self._display.get(close[0], close[0]) if close else word

        return re.sub(r"[^\W\d_]+(?:['’][^\W\d_]+)?", fix, question)

    def invalidate(self) -> None:
        with self._lock:
            self._checked = 0.0

    def _current(self) -> tuple[Any, int]:
        with self._lock:
            now = time.monotonic()
            if now - self._checked >= self.recheck_seconds:
                fingerprint = self.store.fingerprint()
                self._checked = now
                if fingerprint != self._fingerprint:
                    nodes = self.store.all_nodes()
                    self._retriever, self._size = self._build(nodes)
                    self._display = {}
                    for n in nodes:
                        for w in re.findall(r"[^\W\d_]+", n.get_content()):
                            self._display.setdefault(fold(w), w)
                    self._vocab = set(self._display)
                    self._vocab_list = sorted(self._vocab)
                    self._fingerprint = fingerprint
            return self._retriever, self._size

    @staticmethod
    def _build(nodes: list[TextNode]) -> tuple[Any, int]:
        if not nodes:
            return None, 0
        import Stemmer
        from llama_index.retrievers.bm25 import BM25Retriever

        retriever = BM25Retriever.from_defaults(
            nodes=nodes,
            similarity_top_k=min(50, len(nodes)),
            stemmer=Stemmer.Stemmer("english"),
            language="english",
        )
        return retriever, len(nodes)

    def search(self, question: str, k: int) -> list[tuple[TextNode, float]]:
        retriever, size = self._current()
        if retriever is None:
            return []
        retriever.similarity_top_k = min(k, size)
        hits = retriever.retrieve(question)
        return [(h.node, float(h.score or 0.0)) for h in hits if (h.score or 0.0) > 0.0]


def _by_paragraph(hits: list[tuple[TextNode, float]]) -> list[tuple[Paragraph, float]]:
    """Windows of one paragraph count once, at their best rank."""
    seen: dict[str, tuple[Paragraph, float]] = {}
    for node, score in hits:
        p = node_to_paragraph(node)
        if p.id not in seen:
            seen[p.id] = (p, score)
    return list(seen.values())


class HybridRetriever:
    def __init__(self, store: ParagraphStore, embedder: Embedder, candidates: int, rrf_k: int):
        self.store = store
        self.embedder = embedder
        self.candidates = candidates
        self.rrf_k = rrf_k
        self.lexical = LexicalIndex(store)

    def dense(self, question: str, k: int) -> list[tuple[Paragraph, float]]:
        vec = self.embedder.query(question)
        return _by_paragraph(self.store.query(vec, k))

    def retrieve(self, question: str, top_k: int) -> list[Retrieved]:
        dense = self.dense(question, self.candidates)
        lexical = _by_paragraph(self.lexical.search(question, self.candidates))
        fused: dict[str, Retrieved] = {}
        for rank, (p, score) in enumerate(dense, 1):
            r = fused.setdefault(p.id, Retrieved(paragraph=p, score=0.0))
            r.dense_rank, r.dense_score = rank, score
            r.score += 1.0 / (self.rrf_k + rank)
        for rank, (p, score) in enumerate(lexical, 1):
            r = fused.setdefault(p.id, Retrieved(paragraph=p, score=0.0))
            r.lexical_rank, r.lexical_score = rank, score
            r.score += 1.0 / (self.rrf_k + rank)
        ranked = sorted(
            fused.values(), key=lambda r: (-r.score, r.paragraph.source, r.paragraph.index)
        )
        return ranked[:top_k]
