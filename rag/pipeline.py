"""The pipeline's public face: ingest, sources, retrieve, ask. It knows nothing of HTTP or CLIs."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rag.answer import Answerer
from rag.config import Settings
from rag.embed import Embedder
from rag.errors import IngestError, InputError, NotFoundError
from rag.followup import resolve
from rag.index import Indexer, Progress
from rag.ingest import check_source_name, parse_file
from rag.injection import addresses_the_model
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

if TYPE_CHECKING:
    from rag.llm import ChatModel
    from rag.selector import EvidenceSelector


_SPARE = 3  # extra paragraphs retrieved, so dropping a few still leaves top_k


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
        self._chat_model_factory = chat_model
        self._model: ChatModel | None = None
        self._model_lock = threading.Lock()
        self._write_lock = threading.Lock()

    # -- the model, loaded once ----------------------------------------------------------------

    @property
    def model(self) -> ChatModel:
        with self._model_lock:
            if self._model is None:
                self._model = self._chat_model_factory()
            return self._model

    @property
    def model_name(self) -> str:
        s = self.settings.llm
        if s.backend == "ollama":
            return s.model
        return s.model_path.stem if s.model_path else "SmolLM2-135M-Instruct.Q4_1"

    @property
    def answerer(self) -> Answerer:
        return Answerer(self.model, self.selector, self.settings.llm.max_tokens)

    # -- ingest and sources --------------------------------------------------------------------

    def ingest(
        self, path: Path | None = None, prune: bool = False, progress: Progress | None = None
    ) -> IngestReport:
        root = Path(path or self.settings.sources_dir)
        with self._write_lock:
            files = self.indexer.parse_folder(root)
            report = self.indexer.sync(
                files, folder=str(root.resolve()), prune=prune, progress=progress
            )
        self.retriever.lexical.invalidate()
        return report

    def add_file(self, filename: str, data: bytes) -> IngestReport:
        """An uploaded file: parsed fully before anything is written; same name = replacement."""
        parsed = parse_file(filename, data)
        with self._write_lock:
            report = self.indexer.sync([parsed], folder="")
        self.retriever.lexical.invalidate()
        return report

    def remove_source(self, source_id: str) -> int:
        stored = self._stored(source_id)
        with self._write_lock:
            self.store.delete_source(source_id)
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
        vocabulary; the conversation's topic words travel as context, not inside the question."""
        r = resolve(question, history)
        correct = self.retriever.lexical.correct
        return ResolvedQuestion(correct(r.text), correct(r.context) if r.context else "")

    def _evidence(self, resolved: str, k: int) -> list[Retrieved]:
        """The top ``k`` retrieved paragraphs that do not address the model. The fused ranking
        does not depend on how many are asked for, so without such paragraphs this is exactly
        ``retrieve(resolved, k)``."""
        found = self.retriever.retrieve(resolved, k + _SPARE)
        return [r for r in found if not addresses_the_model(r.paragraph.text)][:k]

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
        """Raises BackendUnavailable naming what is down; otherwise each component's state.

        Every backend a question needs is probed: the store, the embedder (a server in Ollama
        mode: retrieval cannot start without it) and the model.
        """
        self.store.ping()
        self.embedder.query("readiness check")
        self.model.check()
        return {
            "store": f"ok ({self.store.address})",
            "embeddings": f"ok ({self.embedder.backend}: {self.embedder.address})",
            "model": f"ok ({self.model.backend}: {self.model.name})",
        }
