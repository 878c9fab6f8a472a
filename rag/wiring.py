"""The one place that reads settings and picks backends; everything else receives objects."""

from __future__ import annotations

import hashlib
from pathlib import Path

from rag.config import Settings, offline_guards
from rag.embed import Embedder, build_embedder, describe
from rag.index import Indexer
from rag.lexical_cache import LexicalCache
from rag.pipeline import Pipeline
from rag.retrieve import HybridRetriever
from rag.selector import EvidenceSelector
from rag.store import build_store


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

    def chat_model():  # loaded on first use: `rag search` and ingest never pay for the model
        from rag.llm import build_chat_model

        return build_chat_model(settings)

    selector = build_selector(embedder, settings)
    return Pipeline(settings, store, indexer, retriever, embedder, chat_model, selector)


def build_selector(embedder: Embedder, settings: Settings) -> EvidenceSelector:
    """The evidence selector: the fitted model committed in rag/models/selector.json; with
    ``RAG_SELECT__RERANK=likelihood``, its close best sentences reordered as
    rag/models/rerank.json says."""
    from rag.likelihood import QuestionLikelihood
    from rag.selector import FittedSelector, Rerank

    rerank = None
    if settings.select.rerank == "likelihood":
        rerank = Rerank.load(QuestionLikelihood(threads=settings.llm.threads))
    return FittedSelector(embedder, rerank=rerank)


def _lexical_folder(settings: Settings) -> Path:
    """Beside the store, one folder per collection; for a Chroma server, per server too (each
    process that talks to it keeps its own copy). Nothing in it names the data folder's own
    path, so a data folder copied or moved elsewhere keeps its saved index."""
    name = settings.chroma.collection
    if settings.chroma.host:
        server = f"{settings.chroma.host}:{settings.chroma.port}"
        name += "@" + hashlib.sha1(server.encode()).hexdigest()[:12]
    return Path(settings.data_dir) / "lexical" / name
