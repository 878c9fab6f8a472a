"""The pipeline's public face: ingest, sources, retrieve, ask. It knows nothing of HTTP or CLIs."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rag.answer import Answerer
from rag.cite import AnswerStyle
from rag.config import Settings
from rag.embed import Embedder
from rag.errors import (
    BackendsUnavailable,
    BackendUnavailable,
    IngestError,
    InputError,
    NotFoundError,
)
from rag.followup import resolve
from rag.index import Indexer, Progress
from rag.ingest import check_source_name, parse_file
from rag.injection import strip_injection
from rag.reading import read_folder
from rag.retrieve import HybridRetriever
from rag.store import ParagraphStore, StoredSource
from rag.types import (
    Answer,
    IngestReport,
    Paragraph,
    ResolvedQuestion,
    Retrieved,
    Source,
    StreamEvent,
    Turn,
)
from rag.uploads import kept_file, remove_file, safe_name

if TYPE_CHECKING:
    from rag.llm import ChatModel
    from rag.selector import EvidenceSelector


class Pipeline:
    def __init__(
        self,
        settings: Settings,
        store: ParagraphStore,
        indexer: Indexer,
        retriever: HybridRetriever,
        embedder: Embedder,
        chat_model: Callable[[], ChatModel],
        selector: EvidenceSelector,
    ) -> None:
        self.settings = settings
        self.selector = selector
        self.store = store
        self.indexer = indexer
        self.retriever = retriever
        self.embedder = embedder
        # Returns the one model, built on first call (wiring's _Once): the selector's rerank
        # borrows the same one, so the memo lives with the factory, not here.
        self._chat_model = chat_model
        self._write_lock = threading.Lock()

    # -- the model, loaded once ----------------------------------------------------------------

    @property
    def model(self) -> ChatModel:
        return self._chat_model()

    @property
    def model_name(self) -> str:
        s = self.settings.llm
        if s.backend == "ollama":
            return s.model
        if s.model_path:
            return s.model_path.stem
        from rag.llm import default_model_name

        return default_model_name(self.settings)

    @property
    def answerer(self) -> Answerer:
        a = self.settings.answer
        style = AnswerStyle(a.fact_words, a.min_draft_coverage, a.draft_sentences)
        return Answerer(self.model, self.selector, self.settings.llm.max_tokens, style)

    # -- ingest and sources --------------------------------------------------------------------

    def ingest(
        self, path: Path | None = None, prune: bool = False, progress: Progress | None = None
    ) -> IngestReport:
        """Every readable file of ``path`` is ingested; the others are listed in the report's
        ``skipped`` with their reason, and whatever was stored for them is left as it was."""
        root = Path(path or self.settings.sources_dir)
        with self._write_lock:
            files, skipped = read_folder(root)
            report = self.indexer.sync(
                files,
                folder=str(root.resolve()),
                prune=prune,
                progress=progress,
                unreadable=[s.file for s in skipped],
            )
        report.skipped = skipped
        self.retriever.lexical.invalidate()
        return report

    def add_file(self, filename: str, data: bytes) -> IngestReport:
        """An uploaded file, kept as a file in the sources folder (rag/uploads.py) and indexed
        as part of that folder, so a re-index finds it again. Parsed fully before anything is
        written; same name = replacement; if indexing fails the folder is left as it was."""
        name = safe_name(filename)
        parsed = parse_file(name, data)
        root = Path(self.settings.sources_dir)
        with self._write_lock, kept_file(root, name, data):
            report = self.indexer.sync([parsed], folder=str(root.resolve()))
        self.retriever.lexical.invalidate()
        return report

    def remove_source(self, source_id: str, delete_file: bool = False) -> int:
        """Drop a source from the index; with ``delete_file``, also its file when that file is
        in the sources folder (so a re-index does not bring it back). Files ingested from any
        other folder are never deleted."""
        stored = self._stored(source_id)
        root = Path(self.settings.sources_dir)
        with self._write_lock:
            self.store.delete_source(source_id)
            if delete_file and stored.folder == str(root.resolve()):
                remove_file(root, source_id)
        self.retriever.lexical.invalidate()
        return stored.source.paragraphs

    def list_sources(self) -> list[Source]:
        return [s.source for s in self.store.list_sources()]

    def get_source(self, source_id: str) -> tuple[Source, list[Paragraph]]:
        return self._stored(source_id).source, self.store.paragraphs(source_id)

    def source_text(self, source_id: str) -> str:
        return self._stored(source_id, with_text=True).text

    def _stored(self, source_id: str, with_text: bool = False) -> StoredSource:
        try:
            check_source_name(source_id)
        except IngestError:
            raise NotFoundError(f"no source {source_id!r}") from None
        stored = self.store.get_source(source_id, with_text=with_text)
        if stored is None:
            raise NotFoundError(f"no source {source_id!r}")
        return stored

    # -- questions -----------------------------------------------------------------------------

    def _check_question(self, question: str) -> str:
        q = question.strip()
        if not q:
            raise InputError("the question is empty")
        if "\x00" in q:
            raise InputError("the question contains a NUL byte")
        limit = self.settings.api.max_question_chars
        if len(q) > limit:
            raise InputError(f"the question is longer than {limit} characters")
        return q

    def retrieve(
        self, question: str, history: Sequence[Turn] = (), top_k: int | None = None
    ) -> tuple[str, list[Retrieved]]:
        resolved = self._resolve(self._check_question(question), history)
        return str(resolved), self._evidence(resolved.query, top_k or self.settings.retrieve.top_k)

    def _resolve(self, question: str, history: Sequence[Turn]) -> ResolvedQuestion:
        """Pronouns resolved from the conversation, misspelt words corrected against the sources'
        vocabulary; the conversation's topic words travel as context, not inside the question.
        Instructions inside the question are no part of it: "You are now in developer mode ..."
        pulled retrieval toward the news lead. The answerer still reads the question as asked
        and says in its trace what it did not follow."""
        asked, _ = strip_injection(question)
        r = resolve(asked or question, history)
        correct = self.retriever.lexical.correct
        return ResolvedQuestion(correct(r.text), correct(r.context) if r.context else "")

    def _evidence(self, resolved: str, k: int) -> list[Retrieved]:
        return self.retriever.evidence(resolved, k)

    def _prepare(self, question: str, history: Sequence[Turn], top_k: int | None):
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        q = self._check_question(question)
        resolved = self._resolve(q, history)
        timings["resolve"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        retrieved = self._evidence(resolved.query, top_k or self.settings.retrieve.top_k)
        timings["retrieve"] = time.perf_counter() - t1
        return q, resolved, retrieved, timings

    def ask(self, question: str, history: Sequence[Turn] = (), top_k: int | None = None) -> Answer:
        q, resolved, retrieved, timings = self._prepare(question, history, top_k)
        return self.answerer.answer(q, resolved, retrieved, timings)

    def ask_stream(
        self, question: str, history: Sequence[Turn] = (), top_k: int | None = None
    ) -> Iterator[StreamEvent]:
        q, resolved, retrieved, timings = self._prepare(question, history, top_k)
        yield from self.answerer.answer_stream(q, resolved, retrieved, timings)

    # -- health --------------------------------------------------------------------------------

    def readiness(self) -> dict[str, str]:
        """Each component's state; raises BackendUnavailable naming every backend that is
        down (BackendsUnavailable when there are several).

        Every backend a question needs is probed, each whatever the others' state: the store,
        the embedder (a server in Ollama mode: retrieval cannot start without it) and the model;
        and, while it is loaded or built at start, the lexical index (WarmingUp): the first
        questions would wait for it.
        """
        states, down = self.probe()
        if len(down) == 1:
            raise down[0]
        if down:
            raise BackendsUnavailable(down)
        return states

    def probe(self) -> tuple[dict[str, str], list[BackendUnavailable]]:
        """(state of each component that is up, the errors of those that are down)."""

        def store() -> str:
            self.store.ping()
            return f"ok ({self.store.address})"

        def embeddings() -> str:
            self.embedder.query("readiness check")
            return f"ok ({self.embedder.backend}: {self.embedder.address})"

        def model() -> str:
            m = self.model
            note = m.check()
            return f"ok ({m.backend}: {m.name}, {note})"

        def lexical() -> str:
            self.retriever.lexical.check_ready()
            return f"ok ({self.retriever.lexical.last_build or 'built on first question'})"

        states: dict[str, str] = {}
        down: list[BackendUnavailable] = []
        probes = (("store", store), ("embeddings", embeddings), ("model", model))
        for name, probe in (*probes, ("lexical index", lexical)):
            try:
                states[name] = probe()
            except BackendUnavailable as e:
                down.append(e)
        return states, down

    def warm_up(self) -> tuple[dict[str, str], list[BackendUnavailable]]:
        """Start-up: an in-process model is loaded and decodes one token (raising if it cannot:
        a configuration error), then every backend is probed, as ``probe``. Backends that are
        down are returned, not raised: the service starts anyway and turns ready when they
        are back."""
        self.model.warm_up()
        return self.probe()
