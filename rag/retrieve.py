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

import numpy as np
from llama_index.core.schema import TextNode

from rag.embed import Embedder
from rag.store import ParagraphStore, node_to_paragraph
from rag.text import STOPWORDS, fold, is_english_word
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
        self._letters: Letters | None = None
        self._closest_cache: dict[tuple[str, float], str | None] = {}
        self._must_block = True  # first use, or this process changed the store: wait for it
        self._refreshing = False  # a background re-check is running
        self._generation = 0  # bumped by invalidate(): a slower background build is dropped

    def correct(self, question: str) -> str:
        """Misspelt words replaced by the closest word the sources use ('prosecuters' ->
        'prosecutors'); words the sources know, and short words, are left alone."""
        self._current()
        vocab = self._vocab
        if not vocab:
            return question

        def fix(m: re.Match[str]) -> str:
            word, possessive = re.subn(r"['’]s$", "", m.group(0))
            folded = fold(word)
            if len(folded) < 5 or folded in vocab or folded in STOPWORDS or folded.isdigit():
                return m.group(0)
            english = is_english_word(folded)
            close = self._closest(folded, 0.88 if english else 0.82)
            if close is None:
                return m.group(0)
            fixed = self._display.get(close, close)
            if english and not fixed[:1].isupper():
                return m.group(0)  # 'reaction' is no misspelt 'relations'; 'Betsy' is 'Betssy'
            return fixed + ("'s" if possessive else "")

        return re.sub(r"[^\W\d_]+(?:['’][^\W\d_]+)?", fix, question)

    def _closest(self, word: str, cutoff: float) -> str | None:
        """``difflib.get_close_matches(word, vocabulary, 1, cutoff)``, the same answer, fast.

        At 100k paragraphs the vocabulary has ~40k words and difflib's scan costs ~200 ms per
        unknown word. difflib itself skips every word whose ``quick_ratio`` (shared letters,
        counted with repeats: 2*shared/(a+b)) is under the cutoff; that bound is computed here
        for the whole vocabulary at once with numpy, and difflib runs on the few that pass.
        Answers are remembered until the vocabulary changes.
        """
        key = (word, cutoff)
        if key in self._closest_cache:
            return self._closest_cache[key]
        letters = self._letters
        if letters is None:
            return None
        index, counts, lengths, words = letters
        q = np.zeros(counts.shape[1], dtype=counts.dtype)
        for ch in word:
            if ch in index:
                q[index[ch]] += 1
        shared = np.minimum(counts, q).sum(axis=1)
        bound = 2.0 * shared / (lengths + len(word))
        candidates = [words[i] for i in np.flatnonzero(bound >= cutoff)]
        close = difflib.get_close_matches(word, candidates, n=1, cutoff=cutoff)
        found = close[0] if close else None
        if len(self._closest_cache) > 50_000:  # questions are short; this bounds a long run
            self._closest_cache.clear()
        self._closest_cache[key] = found
        return found

    def invalidate(self) -> None:
        """This process changed the store: the next query waits for the rebuilt index."""
        with self._lock:
            self._must_block = True
            self._generation += 1

    def _current(self) -> tuple[Any, int]:
        """The index to query. Changes made by another process (another API process behind a
        load balancer, a `rag ingest`) are looked for at most every ``recheck_seconds`` on a
        background thread, so queries never wait for the check (a read of every source record)
        or for a rebuild they did not ask for; until it is done they use the current index."""
        with self._lock:
            if self._must_block:
                fingerprint = self.store.fingerprint()
                if fingerprint != self._fingerprint:
                    self._install(fingerprint, self.store.all_nodes())
                self._must_block = False
                self._checked = time.monotonic()
            elif not self._refreshing and time.monotonic() - self._checked >= self.recheck_seconds:
                self._refreshing = True
                self._checked = time.monotonic()
                threading.Thread(
                    target=self._refresh, args=(self._generation,), daemon=True
                ).start()
            return self._retriever, self._size

    def _refresh(self, generation: int) -> None:
        try:
            fingerprint = self.store.fingerprint()
            if fingerprint == self._fingerprint:
                return
            built = self._prepared(fingerprint, self.store.all_nodes())  # outside the lock
            with self._lock:
                if generation == self._generation and not self._must_block:
                    self.__dict__.update(built)
        except Exception:  # store down: queries report it themselves; try again later
            return
        finally:
            with self._lock:
                self._refreshing = False

    def _install(self, fingerprint: str, nodes: list[TextNode]) -> None:
        """Caller holds the lock."""
        self.__dict__.update(self._prepared(fingerprint, nodes))

    def _prepared(self, fingerprint: str, nodes: list[TextNode]) -> dict[str, Any]:
        """Everything derived from the nodes, swapped in as a whole."""
        retriever, size = self._build(nodes)
        display: dict[str, str] = {}
        for n in nodes:
            for w in re.findall(r"[^\W\d_]+", n.get_content()):
                display.setdefault(fold(w), w)
        vocab_list = sorted(display)
        return {
            "_retriever": retriever,
            "_size": size,
            "_display": display,
            "_vocab": set(display),
            "_vocab_list": vocab_list,
            "_letters": _letter_counts(vocab_list),
            "_closest_cache": {},
            "_fingerprint": fingerprint,
        }

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


Letters = tuple[dict[str, int], Any, Any, list[str]]


def _letter_counts(words: list[str]) -> Letters | None:
    """Per word, how many of each letter it has (a words x alphabet matrix), and its length."""
    if not words:
        return None
    alphabet = sorted({ch for w in words for ch in w})
    index = {ch: i for i, ch in enumerate(alphabet)}
    lengths = np.fromiter((len(w) for w in words), dtype=np.int64, count=len(words))
    rows = np.repeat(np.arange(len(words)), lengths)
    cols = np.fromiter((index[ch] for w in words for ch in w), dtype=np.int64, count=len(rows))
    counts = np.zeros((len(words), len(alphabet)), dtype=np.int32)
    np.add.at(counts, (rows, cols), 1)
    return index, counts, lengths, words


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
