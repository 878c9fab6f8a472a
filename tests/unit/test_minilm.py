"""The in-project MiniLM encoder gives sentence-transformers' vectors for the same weights, and
the embedding seam hands vectors back in the order the texts came in."""

from __future__ import annotations

import numpy as np
import pytest

from rag.embed import Embedder, minilm_path
from rag.minilm import MiniLMEmbedding

TEXTS = [
    "Peru broke off diplomatic relations with Mexico on Monday.",
    "Chávez, 36, sought asylum at the Mexican ambassador's residence in Lima.",
    "x",
    "",
    "Next",
    # Longer than the model's 256 word pieces: both must cut it at the same place.
    " ".join(["The prime minister led the cabinet for a few weeks in 2023."] * 40),
    "Naïve café façade: ÁÉÍÓÚ ñ ü — “quoted” ‘text’ 12,500 soles (S/ 3.4m) on 4 Nov. 2025.",
]


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    st = pytest.importorskip("sentence_transformers", reason="reference implementation (dev)")
    model = st.SentenceTransformer(str(minilm_path()), device="cpu")
    return model.encode(TEXTS, normalize_embeddings=True)


@pytest.mark.parametrize(("bf16", "at_least"), [(False, 0.99999), (True, 0.999)])
def test_vectors_equal_the_sentence_transformers_ones(
    reference: np.ndarray, bf16: bool, at_least: float
) -> None:
    ours = np.array(
        MiniLMEmbedding(folder=str(minilm_path()), bf16=bf16).get_text_embedding_batch(TEXTS)
    )
    assert ours.shape == reference.shape == (len(TEXTS), 384)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert (ours * reference).sum(axis=1).min() >= at_least


def test_a_batch_gives_each_text_the_vector_it_gets_alone() -> None:
    """Texts are embedded shortest first and padded per batch; neither may leak into a vector."""
    model = MiniLMEmbedding(folder=str(minilm_path()), embed_batch_size=3)
    together = np.array(Embedder(model, "local", "test").texts(TEXTS))
    alone = np.array([model.get_text_embedding(t) for t in TEXTS])
    assert (together * alone).sum(axis=1).min() >= 0.99999
