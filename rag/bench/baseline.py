"""The plain llama-index pipeline we compare against, measured in the same run.

Default ``VectorStoreIndex`` over the same Chroma collection (our nodes are stored in
llama-index's own node format, so it reads them as they are), the same embedding object, the
same loaded SmolLM2 and the default query engine (top 2 by cosine, "compact" synthesis with
llama-index's default prompt). The model is wrapped as a ``CustomLLM`` around our chat model
rather than llama-index's ``LlamaCPP``: that class formats prompts as Llama-2 ``[INST]``, wrong
for SmolLM2, which would make the baseline slower and worse for a reason that is not the point.
Its ingest is ``VectorStoreIndex.from_documents`` (default sentence splitter) into a fresh
collection.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llama_index.core.base.llms.types import (
    CompletionResponse,
    CompletionResponseGen,
    LLMMetadata,
)
from llama_index.core.llms import ChatMessage, CustomLLM
from llama_index.core.llms.callbacks import llm_completion_callback
from pydantic import PrivateAttr

from rag.bench.stats import summary, timed

if TYPE_CHECKING:
    from rag.llm import ChatModel
    from rag.pipeline import Pipeline


class SameModel(CustomLLM):
    """llama-index's LLM interface over our already-loaded chat model (one prompt = one user
    message, the GGUF's own chat template applied by llama.cpp)."""

    max_tokens: int = 96
    context_window: int = 2048
    _model: Any = PrivateAttr(default=None)

    def __init__(self, model: ChatModel, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._model = model

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(
            context_window=self.context_window, num_output=self.max_tokens, model_name="same"
        )

    def _messages(self, prompt: str) -> list[ChatMessage]:
        return [ChatMessage(role="user", content=prompt)]

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return CompletionResponse(
            text=self._model.complete(self._messages(prompt), self.max_tokens)
        )

    @llm_completion_callback()
    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        def gen() -> CompletionResponseGen:
            text = ""
            for delta in self._model.stream(self._messages(prompt), self.max_tokens):
                text += delta
                yield CompletionResponse(text=text, delta=delta)

        return gen()


class Baseline:
    def __init__(self, pipeline: Pipeline) -> None:
        from llama_index.core import VectorStoreIndex

        self.pipeline = pipeline
        self.embed_model = pipeline.embedder.model
        self.index = VectorStoreIndex.from_vector_store(
            pipeline.store.vector_store, embed_model=self.embed_model
        )
        self._llm: SameModel | None = None

    @property
    def llm(self) -> SameModel:
        if self._llm is None:
            s = self.pipeline.settings.llm
            self._llm = SameModel(
                self.pipeline.model, max_tokens=s.max_tokens, context_window=s.context_window
            )
        return self._llm

    def retrieval(
        self, questions: Sequence[str], warmup: Sequence[str], top_k: int
    ) -> dict[str, Any]:
        retriever = self.index.as_retriever(similarity_top_k=top_k)
        warm, _ = timed(lambda: retriever.retrieve(warmup[0]))
        for q in warmup:
            retriever.retrieve(q)
        seconds = [timed(lambda q=q: retriever.retrieve(q))[0] for q in questions]
        return {"warmup_s": round(warm, 2), "hybrid": summary(seconds)}

    def answers(self, questions: Sequence[str]) -> dict[str, Any]:
        engine = self.index.as_query_engine(llm=self.llm)
        for q in dict.fromkeys(questions):
            engine.query(q)
        return summary([timed(lambda q=q: engine.query(q))[0] for q in questions])

    def first_token(self, questions: Sequence[str]) -> dict[str, Any]:
        engine = self.index.as_query_engine(llm=self.llm, streaming=True)
        seconds = []
        for q in questions:
            t0 = time.perf_counter()
            response: Any = engine.query(q)
            first: float | None = None
            for _ in response.response_gen:
                if first is None:
                    first = time.perf_counter() - t0
            if first is not None:
                seconds.append(first)
        return summary(seconds)


def ingest(pipeline: Pipeline, folder: Path, chroma_dir: Path, paragraphs: int) -> dict[str, Any]:
    """Default llama-index ingest of ``folder`` into a fresh embedded Chroma at ``chroma_dir``:
    ``SimpleDirectoryReader`` -> ``VectorStoreIndex.from_documents`` (sentence splitter, the
    embedding object's own batch size). The rate counts the same paragraphs as ours."""
    import chromadb
    from chromadb.config import Settings as ChromaConfig
    from llama_index.core import SimpleDirectoryReader, StorageContext, VectorStoreIndex
    from llama_index.vector_stores.chroma import ChromaVectorStore

    client = chromadb.PersistentClient(
        path=str(chroma_dir), settings=ChromaConfig(anonymized_telemetry=False)
    )
    collection = client.get_or_create_collection("baseline", metadata={"hnsw:space": "cosine"})
    storage = StorageContext.from_defaults(
        vector_store=ChromaVectorStore(chroma_collection=collection)
    )

    def run() -> int:
        docs = SimpleDirectoryReader(str(folder), required_exts=[".txt", ".md"]).load_data()
        VectorStoreIndex.from_documents(
            docs, storage_context=storage, embed_model=pipeline.embedder.model
        )
        return collection.count()

    seconds, chunks = timed(run)
    return {
        "paragraphs": paragraphs,
        "chunks": chunks,
        "seconds": round(seconds, 2),
        "paragraphs_per_s": round(paragraphs / seconds, 1) if seconds else None,
    }
