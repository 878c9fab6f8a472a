"""Hybrid retrieval: BM25 (names and numbers) + dense (paraphrase), fused by reciprocal rank.

llama-index's ``QueryFusionRetriever`` does the fusion too, but it returns only the fused score;
the trace and the eval need each retriever's rank, and windows of one paragraph must collapse to
that paragraph before fusion, so the twenty lines of fusion live here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from rag.embed import Embedder
from rag.injection import addresses_the_model
from rag.lexical import LexicalIndex
from rag.lexical_cache import LexicalCache
from rag.store import ParagraphStore
from rag.types import Paragraph, Retrieved

_SPARE = 3  # extra paragraphs retrieved, so dropping a few still leaves top_k


def _by_paragraph(hits: Iterable[tuple[Paragraph, float]]) -> list[tuple[Paragraph, float]]:
    """Windows of one paragraph count once, at their best rank."""
    seen: dict[str, tuple[Paragraph, float]] = {}
    for p, score in hits:
        if p.id not in seen:
            seen[p.id] = (p, score)
    return list(seen.values())


class HybridRetriever:
    def __init__(
        self,
        store: ParagraphStore,
        embedder: Embedder,
        candidates: int,
        rrf_k: int,
        lexical_cache: LexicalCache | None = None,
    ):
        self.store = store
        self.embedder = embedder
        self.candidates = candidates
        self.rrf_k = rrf_k
        self.lexical = LexicalIndex(store, lexical_cache)

    def warm_in_background(self, then: Callable[[], object] | None = None) -> threading.Thread:
        """Start-up: the lexical index loaded (or built), then one dense search, which makes
        Chroma read its vector index from disk, so neither waits for the first question; then
        ``then``."""

        def dense_then() -> None:
            self.dense("warm-up", 1)
            if then is not None:
                then()

        return self.lexical.build_in_background(then=dense_then)

    def dense(self, question: str, k: int) -> list[tuple[Paragraph, float]]:
        """The ``k`` nearest nodes as paragraphs. Chroma is asked for ids and distances only;
        the paragraphs come from the lexical index's table, which holds every node already.
        Through llama-index's ``ChromaVectorStore.query`` Chroma also read each hit's document
        and metadata and llama-index rebuilt a node from JSON per hit: measured at 100k
        paragraphs, that was most of the dense search's time (docs/performance.md)."""
        hits = self.store.nearest(self.embedder.query(question), k)
        known = self.lexical.paragraphs_of([node_id for node_id, _ in hits])
        missing = [node_id for node_id, _ in hits if node_id not in known]
        if missing:  # written by another process since the index was refreshed
            known.update(self.store.node_paragraphs(missing))
        return _by_paragraph((known[i], s) for i, s in hits if i in known)

    def retrieve(self, question: str, top_k: int) -> list[Retrieved]:
        lexical = _by_paragraph(self.lexical.search(question, self.candidates))
        dense = self.dense(question, self.candidates)
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

    def evidence(self, question: str, top_k: int) -> list[Retrieved]:
        """The top ``top_k`` paragraphs that do not address the model. The fused ranking does
        not depend on how many are asked for, so without such paragraphs this is exactly
        ``retrieve(question, top_k)``."""
        found = self.retrieve(question, top_k + _SPARE)
        return [r for r in found if not addresses_the_model(r.paragraph.text)][:top_k]
