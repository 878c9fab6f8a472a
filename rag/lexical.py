"""The lexical side of retrieval: BM25 over every stored node and the spelling corrector over
the sources' words, kept matching the store, and kept on disk so a restart loads rather than
rebuilds them."""

from __future__ import annotations

import difflib
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rag.bm25 import Bm25, Bm25Builder
from rag.errors import WarmingUp
from rag.lexical_cache import LexicalCache
from rag.store import ParagraphStore
from rag.text import STOPWORDS, fold, is_english_word
from rag.types import Paragraph

# Nodes read per Chroma call while building. chromadb's get() needs far more memory than what it
# returns, and the process keeps that peak. At 100k nodes, RSS after the build / build time: pages
# of 5,000 873 MiB / 14.5 s, of 1,000 680 MiB / 15 s, of 500 670 MiB / 16.4 s.
_BUILD_PAGE = 1000
_LETTERS_RUN = re.compile(r"[^\W\d_]+")

Letters = tuple[dict[str, int], Any, Any, list[str]]


@dataclass(frozen=True)
class LexicalState:
    """Everything derived from the stored nodes, swapped in as a whole."""

    fingerprint: str | None = None
    index: Bm25 | None = None
    display: dict[str, str] = field(default_factory=dict)  # folded word -> as the sources write it
    letters: Letters | None = None
    closest: dict[tuple[str, float], str | None] = field(default_factory=dict)

    @classmethod
    def of(cls, fingerprint: str, index: Bm25 | None, display: dict[str, str]) -> LexicalState:
        return cls(fingerprint, index, display, _letter_counts(sorted(display)))


class LexicalIndex:
    """BM25 and the corrector's vocabulary, rebuilt when the store's sources change (in any
    process). With a ``cache``, a build is written to disk and a later start whose store has
    the same sources loads it (100k paragraphs: ~1 s instead of ~15 s)."""

    def __init__(
        self, store: ParagraphStore, cache: LexicalCache | None = None, recheck_seconds: float = 1.0
    ):
        self.store = store
        self.cache = cache
        self.recheck_seconds = recheck_seconds
        self._lock = threading.Lock()
        self._state = LexicalState()
        self._checked = 0.0
        self._must_block = True  # first use, or this process changed the store: wait for it
        self._refreshing = False  # a background re-check is running
        self._generation = 0  # bumped by invalidate(): a slower background build is dropped
        self._building_since: float | None = None  # a start-up build is running since then
        self.last_build = ""  # how the current index came to be, for readiness and logs

    def correct(self, question: str) -> str:
        """Misspelt words replaced by the closest word the sources use ('prosecuters' ->
        'prosecutors'); words the sources know, and short words, are left alone."""
        state = self._current()
        vocab = state.display
        if not vocab:
            return question

        def fix(m: re.Match[str]) -> str:
            word, possessive = re.subn(r"['’]s$", "", m.group(0))
            folded = fold(word)
            if len(folded) < 5 or folded in vocab or folded in STOPWORDS or folded.isdigit():
                return m.group(0)
            english = is_english_word(folded)
            close = _closest(state, folded, 0.88 if english else 0.82)
            if close is None:
                return m.group(0)
            fixed = vocab.get(close, close)
            if english and not fixed[:1].isupper():
                return m.group(0)  # 'reaction' is no misspelt 'relations'; 'Betsy' is 'Betssy'
            return fixed + ("'s" if possessive else "")

        return re.sub(r"[^\W\d_]+(?:['’][^\W\d_]+)?", fix, question)

    def search(self, question: str, k: int) -> list[tuple[Paragraph, float]]:
        """The top ``k`` nodes by BM25 as (paragraph, score), best first; the windows of one
        paragraph may each appear (``_by_paragraph`` keeps the best). No hit scores <= 0."""
        index = self._current().index
        return index.search(question, k) if index is not None else []

    def paragraphs_of(self, node_ids: list[str]) -> dict[str, Paragraph]:
        """The paragraphs of those node ids that the current index holds (a node written by
        another process since the last refresh is not there yet: the caller fetches it)."""
        index = self._current().index
        if index is None:
            return {}
        found = ((i, index.paragraph_of(i)) for i in node_ids)
        return {i: p for i, p in found if p is not None}

    def invalidate(self) -> None:
        """This process changed the store: the next query waits for the rebuilt index."""
        with self._lock:
            self._must_block = True
            self._generation += 1

    def check_ready(self) -> None:
        """Raises WarmingUp while the start-up build or load runs: a service that said ready
        then would make its first questions wait for it."""
        since = self._building_since
        if since is not None:
            where = self.cache.folder if self.cache else self.store.address
            raise WarmingUp(
                "lexical index",
                str(where),
                f"being loaded or built for {time.monotonic() - since:.1f} s",
            )

    def _current(self) -> LexicalState:
        """The state to query. Changes made by another process (another API process behind a
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
            return self._state

    def _settle(self) -> None:
        """Caller holds the lock: the index is made to match the store now."""
        fingerprint = self.store.fingerprint()
        if fingerprint != self._state.fingerprint:
            self._state = self._prepared(fingerprint)
        self._must_block = False
        self._checked = time.monotonic()

    def build_in_background(self, then: Callable[[], object] | None = None) -> threading.Thread:
        """Load (or build) the index now on a thread, so the first user does not pay for it,
        then run ``then`` (more warming up) on the same thread. The lock is taken before this
        returns: a query that arrives meanwhile waits for the index, exactly as for a build of
        its own, and never sees half of one; ``check_ready`` says not ready until both are
        done. If the store is down the build is left to the first query, which then reports
        the error."""
        self._lock.acquire()
        self._building_since = time.monotonic()

        def build() -> None:
            try:
                try:
                    self._settle()
                finally:
                    self._lock.release()
                if then is not None:
                    then()
            except Exception:
                pass  # _must_block stays set: the next query builds (or reports why not)
            finally:
                self._building_since = None

        thread = threading.Thread(target=build, name="lexical-index", daemon=True)
        try:
            thread.start()
        except BaseException:
            self._building_since = None
            self._lock.release()
            raise
        return thread

    def _refresh(self, generation: int) -> None:
        try:
            fingerprint = self.store.fingerprint()
            if fingerprint == self._state.fingerprint:
                return
            built = self._prepared(fingerprint)  # outside the lock
            with self._lock:
                if generation == self._generation and not self._must_block:
                    self._state = built
        except Exception:  # store down: queries report it themselves; try again later
            return
        finally:
            with self._lock:
                self._refreshing = False

    def _prepared(self, fingerprint: str) -> LexicalState:
        """The state for the store as ``fingerprint`` names it: from the cache when it holds
        that fingerprint, else built from the store (and then written to the cache)."""
        started = time.perf_counter()
        if self.cache is not None:
            loaded = self.cache.load(fingerprint)
            if loaded is not None:
                self.last_build = f"loaded in {time.perf_counter() - started:.1f} s"
                return LexicalState.of(fingerprint, *loaded)
        index, display = self._built()
        if self.cache is not None and index is not None:
            self.cache.save(fingerprint, index, display)
        self.last_build = f"built in {time.perf_counter() - started:.1f} s"
        return LexicalState.of(fingerprint, index, display)

    def _built(self) -> tuple[Bm25 | None, dict[str, str]]:
        """BM25 and the display form of every word, from the store.

        The nodes are read a page at a time (``store.node_pages``) and each page is tokenised
        into one shared vocabulary before the next is read, so the build never holds every
        node's text and metadata at once; what stays is the score matrix, the stem
        vocabulary and, per node, the paragraph a hit becomes.
        """
        builder = Bm25Builder()
        display: dict[str, str] = {}
        seen: set[str] = set()
        for ids, documents, metadatas in self.store.node_pages(_BUILD_PAGE):
            texts = [d or "" for d in documents]
            builder.add(ids, texts, metadatas)
            for text in texts:
                for w in _LETTERS_RUN.findall(text):
                    if w not in seen:  # fold() once per distinct word, not per occurrence
                        seen.add(w)
                        display.setdefault(fold(w), w)
        return builder.build(), display


def _closest(state: LexicalState, word: str, cutoff: float) -> str | None:
    """``difflib.get_close_matches(word, vocabulary, 1, cutoff)``, the same answer, fast.

    At 100k paragraphs the vocabulary has ~40k words and difflib's scan costs ~200 ms per
    unknown word. difflib itself skips every word whose ``quick_ratio`` (shared letters,
    counted with repeats: 2*shared/(a+b)) is under the cutoff; that bound is computed here
    for the whole vocabulary at once with numpy, and difflib runs on the few that pass.
    Answers are remembered until the vocabulary changes.
    """
    key = (word, cutoff)
    cache = state.closest
    if key in cache:
        return cache[key]
    letters = state.letters
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
    if len(cache) > 50_000:  # questions are short; this bounds a long run
        cache.clear()
    cache[key] = found
    return found


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
