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
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

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
        self._index: Bm25 | None = None
        self._vocab: set[str] = set()
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

    def _current(self) -> Bm25 | None:
        """The index to query. Changes made by another process (another API process behind a
        load balancer, a `rag ingest`) are looked for at most every ``recheck_seconds`` on a
        background thread, so queries never wait for the check (a read of every source record)
        or for a rebuild they did not ask for; until it is done they use the current index."""
        with self._lock:
            if self._must_block:
                self._settle()
            elif not self._refreshing and time.monotonic() - self._checked >= self.recheck_seconds:
                self._refreshing = True
                self._checked = time.monotonic()
                threading.Thread(
                    target=self._refresh, args=(self._generation,), daemon=True
                ).start()
            return self._index

    def _settle(self) -> None:
        """Caller holds the lock: the index is made to match the store now."""
        fingerprint = self.store.fingerprint()
        if fingerprint != self._fingerprint:
            self.__dict__.update(self._prepared(fingerprint))
        self._must_block = False
        self._checked = time.monotonic()

    def build_in_background(self) -> threading.Thread:
        """Build the index now on a thread, so the first user does not pay for it (tens of
        seconds at 100k paragraphs). The lock is taken before this returns: a query that
        arrives meanwhile waits for the built index, exactly as for a build of its own, and
        never sees half of one. If the store is down the build is left to the first query,
        which then reports the error."""
        self._lock.acquire()

        def build() -> None:
            try:
                self._settle()
            except Exception:
                pass  # _must_block stays set: the next query builds (or reports why not)
            finally:
                self._lock.release()

        thread = threading.Thread(target=build, name="lexical-index", daemon=True)
        try:
            thread.start()
        except BaseException:
            self._lock.release()
            raise
        return thread

    def _refresh(self, generation: int) -> None:
        try:
            fingerprint = self.store.fingerprint()
            if fingerprint == self._fingerprint:
                return
            built = self._prepared(fingerprint)  # outside the lock
            with self._lock:
                if generation == self._generation and not self._must_block:
                    self.__dict__.update(built)
        except Exception:  # store down: queries report it themselves; try again later
            return
        finally:
            with self._lock:
                self._refreshing = False

    def _prepared(self, fingerprint: str) -> dict[str, Any]:
        """Everything derived from the stored nodes, swapped in as a whole.

        The nodes are read a page at a time (``store.node_pages``) and each page is tokenised
        into one shared vocabulary before the next is read, so the build never holds every
        node's text and metadata at once; what stays is the score matrix, the stem
        vocabulary and, per node, the paragraph a hit becomes.
        """
        builder = _Bm25Builder()
        display: dict[str, str] = {}
        seen: set[str] = set()
        for _ids, documents, metadatas in self.store.node_pages(_BUILD_PAGE):
            texts = [d or "" for d in documents]
            builder.add(texts, metadatas)
            for text in texts:
                for w in _LETTERS_RUN.findall(text):
                    if w not in seen:  # fold() once per distinct word, not per occurrence
                        seen.add(w)
                        display.setdefault(fold(w), w)
        vocab_list = sorted(display)
        return {
            "_index": builder.build(),
            "_display": display,
            "_vocab": set(display),
            "_letters": _letter_counts(vocab_list),
            "_closest_cache": {},
            "_fingerprint": fingerprint,
        }

    def search(self, question: str, k: int) -> list[tuple[Paragraph, float]]:
        """The top ``k`` nodes by BM25 as (paragraph, score), best first; the windows of one
        paragraph may each appear (``_by_paragraph`` keeps the best). No hit scores <= 0."""
        index = self._current()
        return index.search(question, k) if index is not None else []


# Nodes read per Chroma call while building. chromadb's get() needs far more memory than what it
# returns, and the process keeps that peak. At 100k nodes, RSS after the build / build time: pages
# of 5,000 873 MiB / 14.5 s, of 1,000 680 MiB / 15 s, of 500 670 MiB / 16.4 s.
_BUILD_PAGE = 1000
_LETTERS_RUN = re.compile(r"[^\W\d_]+")
# bm25s' default token pattern (scikit-learn's): what llama-index's BM25Retriever used.
_TOKEN = re.compile(r"(?u)\b\w\w+\b")
_stemmers = threading.local()  # a PyStemmer object must not be used by two threads at once


def _stemmer() -> Any:
    stemmer = getattr(_stemmers, "english", None)
    if stemmer is None:
        import Stemmer

        stemmer = _stemmers.english = Stemmer.Stemmer("english")
    return stemmer


@dataclass(frozen=True)
class Bm25:
    """A built BM25 index: bm25s' score matrix (one column of precomputed per-node scores per
    stem, CSC), the stem vocabulary, and per node (row) the paragraph a hit becomes.

    Tokenisation is llama-index's ``BM25Retriever``'s, so every score is the same as before:
    lower-case, bm25s' token pattern, bm25s' English stopwords removed, PyStemmer's English
    Snowball stemmer, for the nodes and for the question alike (a repeated question word counts
    twice, as it did); k1, b and the Lucene variant are bm25s' defaults. The ranking is the
    same but for the order of equal scores (see ``search``).

    Hits keep their paragraph in memory rather than only node ids whose records are fetched
    from Chroma per query. Measured at 100k paragraphs on the 2-core machine (embedded Chroma;
    a server adds a round trip): BM25 search p50/p95 0.5/0.7 ms with the paragraphs in memory,
    3.6/7.1 ms with ``collection.get(ids=<the 30 hits>)``; the paragraphs cost ~50 MiB of RSS
    (679 against 627 MiB after the build; windows of one paragraph share one object).
    """

    data: np.ndarray  # float32 score of each (node, stem) pair, grouped by stem
    indices: np.ndarray  # the node (row) of each entry
    indptr: np.ndarray  # stem s owns entries indptr[s]:indptr[s + 1]
    vocab: dict[str, int]  # stem -> column
    stopwords: frozenset[str]  # bm25s' English stopwords: never indexed, dropped from questions
    paragraphs: list[Paragraph]  # per node

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


class _Bm25Builder:
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
        self._by_id: dict[str, Paragraph] = {}
        self._strings: dict[str, str] = {}  # one object per distinct source name and title

    def add(self, texts: list[str], metadatas: Iterable[dict[str, Any]]) -> None:
        # allow_empty=False: a node without tokens stays empty (length 0), as in bm25s.tokenize.
        self._tokens.extend(
            self._tokenizer.streaming_tokenize(texts, update_vocab=True, allow_empty=False)
        )
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
        return Bm25(s["data"], s["indices"], s["indptr"], vocab, stopwords, self._paragraphs)


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


def _by_paragraph(hits: Iterable[tuple[Paragraph, float]]) -> list[tuple[Paragraph, float]]:
    """Windows of one paragraph count once, at their best rank."""
    seen: dict[str, tuple[Paragraph, float]] = {}
    for p, score in hits:
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
        return _by_paragraph((node_to_paragraph(n), s) for n, s in self.store.query(vec, k))

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
