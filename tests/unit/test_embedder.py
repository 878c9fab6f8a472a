"""The embedding seam reports a failing backend by name and address, wherever it is called from."""

from __future__ import annotations

import pytest

from rag.embed import Embedder, HashEmbedding
from rag.errors import BackendUnavailable


class RefusingEmbedding(HashEmbedding):
    """Pure-logic stand-in for an embedding server that refuses connections."""

    def _get_text_embedding(self, text: str) -> list[float]:
        raise ConnectionError("connection refused")

    def _get_query_embedding(self, query: str) -> list[float]:
        raise ConnectionError("connection refused")


def test_hash_embeddings_rank_by_shared_words() -> None:
    e = Embedder(HashEmbedding(), "hash", "in-process")
    q, near, far = e.texts(["prison sentence", "a long prison sentence", "harbour wall repairs"])
    dot = lambda a, b: sum(x * y for x, y in zip(a, b, strict=True))  # noqa: E731
    assert dot(q, near) > dot(q, far)


@pytest.mark.parametrize("call", ["texts", "query"])
def test_a_refusing_backend_is_backend_unavailable_naming_it(call: str) -> None:
    e = Embedder(RefusingEmbedding(), "ollama", "http://127.0.0.1:9")
    with pytest.raises(BackendUnavailable) as err:
        e.texts(["x"]) if call == "texts" else e.query("x")
    assert "ollama embeddings" in str(err.value) and "127.0.0.1:9" in str(err.value)
