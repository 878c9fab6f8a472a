"""Model backend faults, through real HTTP on loopback: the Ollama stand-in stopped, answering
after the timeout, and coming back; the embedded llama.cpp model held by a long generation.

Promise under test: `/api/ask` (and chat, streamed chat, the OpenAI route) answer 503 naming
the backend within the configured timeout; `/readyz` says which backend; when the backend
returns, the same process serves again without a restart.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from api import create_app
from rag.pipeline import Pipeline
from rag.wiring import build_pipeline
from tests.reliability.conftest import (
    QUESTION,
    SEEDS,
    ThreadServer,
    standin_settings,
    wait_until,
)
from tests.standins.ollama_standin import OllamaStandIn

TIMEOUT = 2.0  # settings.llm.timeout for these tests
SLACK = 1.5  # retrieval, grounding and HTTP on top of the model's timeout, on a busy 2-core box

ASK = ("POST", "/api/ask", {"question": QUESTION})
CHAT = ("POST", "/api/chat", {"messages": [{"role": "user", "content": QUESTION}]})
CHAT_SSE = (
    "POST",
    "/api/chat",
    {"messages": [{"role": "user", "content": QUESTION}], "stream": True},
)
OPENAI = (
    "POST",
    "/v1/chat/completions",
    {"model": "x", "messages": [{"role": "user", "content": QUESTION}]},
)
ANSWERING = [ASK, CHAT, CHAT_SSE, OPENAI]


@pytest.fixture
def pipeline(tmp_path: Path, standin: OllamaStandIn) -> Pipeline:
    p = build_pipeline(standin_settings(tmp_path / "data", standin.url, timeout=TIMEOUT))
    p.ingest(SEEDS)
    return p


def call(server: ThreadServer, method: str, path: str, body: Any) -> tuple[httpx.Response, float]:
    began = time.monotonic()
    r = httpx.request(method, server.url + path, json=body, timeout=TIMEOUT * 10)
    return r, time.monotonic() - began


def assert_unavailable(r: httpx.Response, backend: str, address: str) -> dict[str, Any]:
    assert r.status_code == 503, (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("application/json"), r.headers
    body = r.json()
    assert body["backend"] == backend and body["address"] == address, body
    assert backend in body["error"] and body["error"].strip(), body
    return body


def test_answers_work_before_any_fault(server: ThreadServer, standin: OllamaStandIn) -> None:
    r, _ = call(server, *ASK)
    assert r.status_code == 200, r.text
    assert not r.json()["abstained"], r.json()
    assert standin.requests_to("/api/chat"), "the model was never asked: the test proves nothing"
    ready = httpx.get(server.url + "/readyz").json()
    assert ready["status"] == "ready" and "ollama" in ready["components"]["model"]


def test_stopped_backend_is_503_within_the_timeout_and_recovers(
    server: ThreadServer, standin: OllamaStandIn
) -> None:
    baseline, _ = call(server, *ASK)
    assert baseline.status_code == 200
    standin.stop()
    try:
        for method, path, body in ANSWERING:
            r, took = call(server, method, path, body)
            assert_unavailable(r, "ollama", standin.url)
            assert took < TIMEOUT + SLACK, (path, took)  # refused connection: no waiting
        r = httpx.get(server.url + "/readyz", timeout=TIMEOUT * 10)
        body = assert_unavailable(r, "ollama", standin.url)
        assert "connect" in body["error"]
        assert httpx.get(server.url + "/healthz").status_code == 200  # process itself is fine
    finally:
        standin.start()  # same port
    # Back by itself: no restart of the API, readiness and answers recover.
    assert wait_until(
        lambda: httpx.get(server.url + "/readyz", timeout=5).status_code == 200, timeout=15
    )
    again, _ = call(server, *ASK)
    assert again.status_code == 200, again.text
    assert again.json()["answer"] == baseline.json()["answer"]
    assert server.server.config.app.state.admission.active == 0


def test_backend_answering_after_the_timeout_is_503_in_time_and_recovers(
    server: ThreadServer, standin: OllamaStandIn
) -> None:
    standin.delay = TIMEOUT * 4  # every /api call answers long after the client gave up
    try:
        for method, path, body in ANSWERING:
            r, took = call(server, method, path, body)
            body_ = assert_unavailable(r, "ollama", standin.url)
            assert f"{TIMEOUT:g}s" in body_["error"], body_
            assert TIMEOUT * 0.9 <= took < TIMEOUT + SLACK, (path, took)
        began = time.monotonic()
        r = httpx.get(server.url + "/readyz", timeout=TIMEOUT * 10)
        assert_unavailable(r, "ollama", standin.url)
        assert time.monotonic() - began < TIMEOUT + SLACK
    finally:
        standin.delay = 0.0
    r, _ = call(server, *ASK)
    assert r.status_code == 200, r.text
    assert httpx.get(server.url + "/readyz").status_code == 200
    assert server.server.config.app.state.admission.active == 0


def test_unknown_model_on_the_server_is_503_naming_it(
    tmp_path: Path, standin: OllamaStandIn
) -> None:
    settings = standin_settings(tmp_path / "d2", standin.url, timeout=TIMEOUT)
    settings = settings.model_copy(
        update={"llm": settings.llm.model_copy(update={"model": "not-pulled"})}
    )
    p = build_pipeline(settings)
    p.ingest(SEEDS)
    with ThreadServer(create_app(p)) as s:
        r, _ = call(s, *ASK)
        body = assert_unavailable(r, "ollama", standin.url)
        assert "not-pulled" in body["error"] and "ollama pull" in body["error"]
        body = assert_unavailable(httpx.get(s.url + "/readyz"), "ollama", standin.url)
        assert "not-pulled" in body["error"]


def test_embedding_backend_down_is_503_and_readiness_names_it(
    tmp_path: Path, standin: OllamaStandIn
) -> None:
    """Ollama also serving the embeddings: when it stops, questions cannot even be retrieved."""
    settings = standin_settings(
        tmp_path / "d3",
        standin.url,
        timeout=TIMEOUT,
        embed={"backend": "ollama", "model": "nomic-embed-text"},
    )
    p = build_pipeline(settings)
    p.ingest(SEEDS)
    with ThreadServer(create_app(p)) as s:
        assert httpx.get(s.url + "/readyz").status_code == 200
        assert "embeddings" in httpx.get(s.url + "/readyz").json()["components"]
        standin.stop()
        try:
            for method, path, body in [ASK, CHAT_SSE]:
                r, took = call(s, method, path, body)
                assert_unavailable(r, "ollama embeddings", standin.url)
                assert took < TIMEOUT + SLACK
            r = httpx.get(s.url + "/readyz", timeout=TIMEOUT * 10)
            assert r.status_code == 503 and r.json()["backend"].startswith("ollama"), r.text
        finally:
            standin.start()
        assert wait_until(lambda: httpx.get(s.url + "/readyz").status_code == 200, timeout=15)
        r, _ = call(s, *ASK)
        assert r.status_code == 200, r.text


@pytest.mark.slow
def test_embedded_model_busy_past_the_timeout_is_503(tmp_path: Path) -> None:
    """llama.cpp in-process: a generation holding the model longer than the timeout makes the
    next question fail with 503 after `timeout` seconds, not wait behind it for ever."""
    from rag.config import Settings

    settings = Settings(data_dir=tmp_path / "data", sources_dir=SEEDS, llm={"timeout": TIMEOUT})
    p = build_pipeline(settings)
    p.ingest(SEEDS)
    p.model.check()  # loaded before the clock starts
    lock = p.model._lock  # type: ignore[attr-defined]  # what a long generation holds
    with ThreadServer(create_app(p)) as s:
        assert lock.acquire(timeout=10)
        try:
            r, took = call(s, *ASK)
            body = assert_unavailable(r, "llamacpp", str(p.model.address))
            assert "busy" in body["error"]
            assert TIMEOUT * 0.9 <= took < TIMEOUT + SLACK + 1, took
        finally:
            lock.release()
        r, _ = call(s, *ASK)
        assert r.status_code == 200, r.text
