"""A real uvicorn server on a loopback port, the real pipeline and bundled model behind it:
SSE streaming, the official ``openai`` client, readiness, and slots freed on disconnect.

Each answer costs about a second of model time, so the questions here are few.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn

from api import create_app
from rag.pipeline import Pipeline

pytestmark = pytest.mark.slow

QUESTION = "What prison sentence are prosecutors seeking for Betssy Chávez?"


class Server:
    """uvicorn in a background thread, on a socket bound before start (no port race)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(
            app, log_level="warning", lifespan="on", timeout_graceful_shutdown=5
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)
        self.sock.close()


@pytest.fixture(scope="module")
def server(seeded_pipeline: Pipeline) -> Iterator[Server]:
    with Server(create_app(seeded_pipeline)) as s:
        yield s


def sse_events(response: httpx.Response) -> Iterator[tuple[str, dict[str, Any]]]:
    """(event, data) pairs from a text/event-stream response, as a browser would split them."""
    name, data = "message", []
    for line in response.iter_lines():
        if not line:
            if data:
                yield name, json.loads("\n".join(data))
            name, data = "message", []
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())


def test_health_and_readiness(server: Server) -> None:
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{server.url}/readyz", timeout=120)
    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "ready"
    assert set(ready.json()["components"]) >= {"store", "model"}


def test_chat_streams_progress_then_checked_text_then_one_final_answer(server: Server) -> None:
    body = {"messages": [{"role": "user", "content": QUESTION}], "stream": True}
    with httpx.stream("POST", f"{server.url}/api/chat?trace=true", json=body, timeout=120) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = list(sse_events(r))
    names = [name for name, _ in events]
    assert names[0] == "status" and names.count("final") == 1 and names[-1] == "final", names
    assert "error" not in names and "token" in names
    final = events[-1][1]
    assert final["question"] == QUESTION and not final["abstained"]
    assert final["citations"] and "trace" in final
    cited = " ".join(c["text"] for c in final["citations"] if c["supports"])
    assert "twenty-five years" in cited


# Questions whose drafts the check changed when the draft itself was streamed (issue 14).
DRAFT_REPLACED = [
    QUESTION,
    "Why did Peru break off diplomatic relations with Mexico?",
    "What sentence does Castillo face?",
    "Who expelled the Mexican ambassador?",
]


def test_token_events_never_carry_text_the_final_answer_drops(server: Server) -> None:
    changed = 0
    for question in DRAFT_REPLACED:
        body = {"messages": [{"role": "user", "content": question}], "stream": True}
        with httpx.stream("POST", f"{server.url}/api/chat?trace=true", json=body, timeout=120) as r:
            events = list(sse_events(r))
        final = events[-1][1]
        assert events[-1][0] == "final", events[-1]
        shown = ""
        for name, data in events:
            if name == "token":
                shown += data["text"]
                assert final["answer"].startswith(shown), (question, shown, final["answer"])
            elif name == "status":
                assert data["text"] not in final["answer"]
        assert shown == final["answer"], question
        changed += final["trace"]["draft"].strip() != final["answer"]
    # The test proves something only if some drafts were not the answer.
    assert changed, "every draft was the final answer: no question here exercises the check"


def test_client_disconnect_mid_stream_frees_the_admission_slot(server: Server) -> None:
    admission = server.app.state.admission
    body = {"messages": [{"role": "user", "content": "Who is José Jerí?"}], "stream": True}
    with httpx.stream("POST", f"{server.url}/api/chat", json=body, timeout=120) as r:
        for line in r.iter_lines():
            if line.startswith("event: status"):
                break  # hang up while the model is still writing
    deadline = time.monotonic() + 60
    while admission.active and time.monotonic() < deadline:
        time.sleep(0.1)
    assert admission.active == 0


@pytest.fixture(scope="module")
def openai_client(server: Server) -> Any:
    openai = pytest.importorskip("openai")
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="x", timeout=120, max_retries=0)


def test_openai_client_lists_the_model(openai_client: Any, seeded_pipeline: Pipeline) -> None:
    assert [m.id for m in openai_client.models.list()] == [seeded_pipeline.model_name]


def test_openai_client_non_streaming_has_markers_and_citations(openai_client: Any) -> None:
    completion = openai_client.chat.completions.create(
        model="whatever-the-client-says",
        messages=[
            {"role": "system", "content": "You are helpful."},
            {"role": "user", "content": QUESTION},
        ],
    )
    content = completion.choices[0].message.content
    citations = completion.model_extra["citations"]
    assert completion.choices[0].finish_reason == "stop"
    assert citations and all({"n", "source", "paragraph", "text"} <= set(c) for c in citations)
    for c in citations:  # every citation is referenced inline as [n]
        assert f"[{c['n']}]" in content, content


def test_openai_client_streaming_ends_with_citations(openai_client: Any) -> None:
    stream = openai_client.chat.completions.create(
        model="local", messages=[{"role": "user", "content": QUESTION}], stream=True
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    last = chunks[-1]
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert last.choices[0].finish_reason == "stop"
    citations = last.model_extra["citations"]
    assert citations and all(f"[{c['n']}]" in text for c in citations), text
    assert "twenty-five" in " ".join(c["text"] for c in citations)
