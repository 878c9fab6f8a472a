"""`rag serve` started while its backends are down: a real `chroma run` and the Ollama stand-in
are started only after the API process.

Promise under test: the process starts and listens whatever the backends' state; `/healthz` is
200; `/readyz` and the API routes answer 503 naming each backend that is down; when they come
up, the same process turns ready and answers, with no restart. A model file that cannot be
loaded is a configuration error: `rag serve` stops with one clear line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ChromaServer
from tests.reliability.conftest import (
    QUESTION,
    SEEDS,
    ServeProcess,
    free_port,
    rag_env,
    run_rag,
    wait_until,
)
from tests.standins.ollama_standin import OllamaStandIn

pytestmark = pytest.mark.slow
ASK = {"question": QUESTION}


def down(r: httpx.Response) -> list[tuple[str, str]]:
    """(backend, address) of each backend a 503 names."""
    assert r.status_code == 503, (r.status_code, r.text[:300])
    body = r.json()
    assert body["error"].strip(), body
    if "down" in body:
        return [(d["backend"], d["address"]) for d in body["down"]]
    return [(body["backend"], body["address"])]


def get(url: str, path: str) -> httpx.Response:
    return httpx.get(url + path, timeout=30)


def ask(url: str) -> httpx.Response:
    return httpx.post(url + "/api/ask", json=ASK, timeout=60)


@pytest.mark.chroma_server
def test_serve_starts_before_chroma_and_ollama_and_turns_ready_when_they_come_up(
    tmp_path: Path,
) -> None:
    chroma = ChromaServer(tmp_path / "chroma")  # a port, nothing listening on it yet
    ollama = OllamaStandIn(port=free_port())
    chroma_url, ollama_url = f"http://127.0.0.1:{chroma.port}", f"http://127.0.0.1:{ollama.port}"
    env = rag_env(
        tmp_path / "data",
        CHROMA__HOST="127.0.0.1",
        CHROMA__PORT=str(chroma.port),
        CHROMA__TIMEOUT="5",
        EMBED__BACKEND="hash",
        LLM__BACKEND="ollama",
        LLM__MODEL="llama3.2",
        LLM__TIMEOUT="5",
        OLLAMA__HOST=ollama_url,
    )
    try:
        with ServeProcess(env, tmp_path) as api:
            assert get(api.url, "/healthz").status_code == 200
            assert down(get(api.url, "/readyz")) == [
                ("chroma", chroma_url),
                ("ollama", ollama_url),
            ]
            for r in (ask(api.url), get(api.url, "/api/sources")):
                assert down(r) == [("chroma", chroma_url)]  # the first thing a request needs

            ollama.start()
            assert wait_until(lambda: down(get(api.url, "/readyz")) == [("chroma", chroma_url)], 30)

            chroma.start()
            done = run_rag(["ingest", str(SEEDS)], env, cwd=tmp_path)
            assert done.returncode == 0, done.stderr
            assert wait_until(lambda: get(api.url, "/readyz").status_code == 200, 30), (
                get(api.url, "/readyz").text
            )
            r = ask(api.url)
            assert r.status_code == 200, r.text
            assert not r.json()["abstained"] and r.json()["citations"], r.json()
            assert api.proc is not None and api.proc.poll() is None  # the same process
    finally:
        ollama.stop()
        chroma.stop()


def test_serve_starts_before_the_ollama_server_and_answers_once_it_is_up(tmp_path: Path) -> None:
    """Ollama serving both the model and the embeddings, started after `rag serve`."""
    ollama = OllamaStandIn(port=free_port())
    url = f"http://127.0.0.1:{ollama.port}"
    env = rag_env(
        tmp_path / "data",
        EMBED__BACKEND="ollama",
        EMBED__MODEL="nomic-embed-text",
        LLM__BACKEND="ollama",
        LLM__MODEL="llama3.2",
        LLM__TIMEOUT="5",
        OLLAMA__HOST=url,
    )
    try:
        with ServeProcess(env, tmp_path) as api:
            assert get(api.url, "/healthz").status_code == 200
            assert down(get(api.url, "/readyz")) == [("ollama embeddings", url), ("ollama", url)]
            assert down(ask(api.url)) == [("ollama embeddings", url)]

            ollama.start()
            # Uploaded through the API: embedded Chroma is this process's own folder.
            for path in sorted(SEEDS.iterdir()):
                r = httpx.post(
                    api.url + "/api/sources",
                    files={"file": (path.name, path.read_bytes(), "text/plain")},
                    timeout=60,
                )
                assert r.status_code in (200, 201), r.text
            assert wait_until(lambda: get(api.url, "/readyz").status_code == 200, 30)
            r = ask(api.url)
            assert r.status_code == 200, r.text
            assert not r.json()["abstained"], r.json()
            assert ollama.requests_to("/api/chat"), "the model was never asked"
    finally:
        ollama.stop()


def test_a_model_file_that_cannot_load_stops_serve_with_one_clear_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\x00" * 64)  # a GGUF header and nothing a model needs
    env = rag_env(tmp_path / "data", EMBED__BACKEND="hash", LLM__MODEL_PATH=str(broken))
    done = run_rag(["serve", "--port", str(free_port())], env, cwd=tmp_path, timeout=120)
    assert done.returncode == 1, (done.returncode, done.stderr[-2000:])
    assert str(broken) in done.stderr and "cannot load" in done.stderr, done.stderr[-2000:]
    assert "Traceback" not in done.stderr


def test_serve_is_ready_only_after_the_model_decoded_a_token(tmp_path: Path) -> None:
    """Issue 12: the embedded model decodes a token before the server listens, in-process."""
    env = rag_env(tmp_path / "data", EMBED__BACKEND="hash")
    with ServeProcess(env, tmp_path) as api:
        ready: Any = get(api.url, "/readyz")
        assert ready.status_code == 200, ready.text
        assert "decoded a token" in ready.json()["components"]["model"], ready.json()
        log = api.output()
        assert log.index("decoded a token") < log.index("serving on"), log
