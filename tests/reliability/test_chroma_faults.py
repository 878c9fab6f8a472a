"""A real `chroma run` server on loopback, killed (SIGKILL) and frozen (SIGSTOP) while the API
runs against it: every request is refused with 503 naming chroma (never 500, never a hang past
`chroma.timeout`), and after the server comes back the same API process serves again.
"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from rag.pipeline import Pipeline
from rag.wiring import build_pipeline
from tests.conftest import ChromaServer
from tests.reliability.conftest import QUESTION, SEEDS, ThreadServer, standin_settings, wait_until
from tests.standins.ollama_standin import OllamaStandIn

pytestmark = [pytest.mark.slow, pytest.mark.chroma_server]

STORE_TIMEOUT = 2.0  # settings.chroma.timeout for these tests
SLACK = 2.0
SEED_1 = "001_b162a8e02d0cef5d.txt"

REQUESTS: list[tuple[str, str, Any]] = [
    ("POST", "/api/ask", {"question": QUESTION}),
    ("POST", "/api/chat", {"messages": [{"role": "user", "content": QUESTION}]}),
    ("POST", "/api/chat", {"messages": [{"role": "user", "content": QUESTION}], "stream": True}),
    ("POST", "/v1/chat/completions", {"messages": [{"role": "user", "content": QUESTION}]}),
    ("GET", "/api/sources", None),
    ("GET", f"/api/sources/{SEED_1}", None),
    ("GET", f"/api/sources/{SEED_1}/text", None),
    ("GET", "/readyz", None),
]


@pytest.fixture
def pipeline(chroma_server: ChromaServer, standin: OllamaStandIn, tmp_path: Path) -> Pipeline:
    settings = standin_settings(
        tmp_path / "data",
        standin.url,
        chroma={"host": "127.0.0.1", "port": chroma_server.port, "timeout": STORE_TIMEOUT},
    )
    p = build_pipeline(settings)
    p.ingest(SEEDS)
    return p


def request(server: ThreadServer, method: str, path: str, body: Any) -> httpx.Response:
    return httpx.request(method, server.url + path, json=body, timeout=STORE_TIMEOUT * 10)


def snapshot(server: ThreadServer) -> dict[str, Any]:
    """What a client sees when everything works: sources, one source, one answer."""
    out: dict[str, Any] = {}
    for method, path, body in REQUESTS:
        if body is not None and body.get("stream"):
            continue
        r = request(server, method, path, body)
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
        if not r.headers["content-type"].startswith("application/json"):
            out[f"{method} {path}"] = r.text
            continue
        data = r.json()
        for volatile in ("timings", "id", "created"):
            data.pop(volatile, None)
        out[f"{method} {path}"] = data
    return out


def assert_store_down(r: httpx.Response, port: int, path: str) -> None:
    assert r.status_code == 503, (path, r.status_code, r.text[:300])
    body = r.json()
    assert body["backend"] == "chroma" and str(port) in body["address"], (path, body)


def test_killed_chroma_is_503_everywhere_and_the_api_recovers_after_restart(
    server: ThreadServer, chroma_server: ChromaServer
) -> None:
    before = snapshot(server)
    chroma_server.stop()  # SIGKILL
    try:
        for method, path, body in REQUESTS:
            began = time.monotonic()
            r = request(server, method, path, body)
            assert_store_down(r, chroma_server.port, path)
            assert time.monotonic() - began < STORE_TIMEOUT + SLACK, path
        assert httpx.get(server.url + "/healthz").status_code == 200
    finally:
        chroma_server.start()  # same port, same data folder
    assert wait_until(
        lambda: httpx.get(server.url + "/readyz", timeout=10).status_code == 200, timeout=30
    ), httpx.get(server.url + "/readyz", timeout=10).text
    after = snapshot(server)
    assert after == before  # same sources, same paragraphs, same answer: nothing was lost


def test_frozen_chroma_is_503_within_the_store_timeout_then_recovers(
    server: ThreadServer, chroma_server: ChromaServer
) -> None:
    """SIGSTOP: the port still accepts connections but nothing answers (a hung server)."""
    snapshot(server)  # warm: connections pooled, collections opened
    assert chroma_server.proc is not None
    chroma_server.proc.send_signal(signal.SIGSTOP)
    try:
        for method, path, body in [REQUESTS[0], REQUESTS[4], REQUESTS[7]]:
            began = time.monotonic()
            r = request(server, method, path, body)
            took = time.monotonic() - began
            assert_store_down(r, chroma_server.port, path)
            assert took < STORE_TIMEOUT * 2 + SLACK, (path, took)  # a retry at most
    finally:
        chroma_server.proc.send_signal(signal.SIGCONT)
    assert wait_until(
        lambda: httpx.get(server.url + "/readyz", timeout=10).status_code == 200, timeout=30
    )
    assert request(server, *REQUESTS[0]).status_code == 200


def test_chroma_killed_mid_run_under_concurrent_requests_never_gives_500(
    server: ThreadServer, chroma_server: ChromaServer
) -> None:
    """Four clients loop over the requests (bounded: about 20 s and 4,000 requests) while the
    server is killed after ~3 s and restarted after ~8 s: only 200s and 503s, never a 5xx other
    than 503, and the requests made well after the restart all succeed."""
    statuses: Counter[int] = Counter()
    late: list[int] = []
    stop = threading.Event()
    lock = threading.Lock()
    restarted_at: list[float] = []
    budget = [4000]

    def client(offset: int) -> None:
        i = offset
        with httpx.Client(timeout=STORE_TIMEOUT * 10) as c:
            while not stop.is_set():
                with lock:
                    if budget[0] <= 0:
                        return
                    budget[0] -= 1
                method, path, body = REQUESTS[i % len(REQUESTS)]
                i += 1
                try:
                    r = c.request(method, server.url + path, json=body)
                    code = r.status_code
                except httpx.HTTPError:
                    code = -1  # transport error: counted, and fails the test below
                with lock:
                    statuses[code] += 1
                    if restarted_at and time.monotonic() - restarted_at[0] > 5:
                        late.append(code)
                if code != 200:
                    time.sleep(0.05)  # a client backing off a little, as real ones do

    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(3)
        chroma_server.stop()
        time.sleep(5)
        chroma_server.start()
        restarted_at.append(time.monotonic())
        time.sleep(10)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not any(t.is_alive() for t in threads)
    bad = {code: n for code, n in statuses.items() if code not in (200, 503)}
    assert not bad, statuses
    assert statuses[503] > 0 and statuses[200] > 0, statuses  # the fault was really seen
    assert len(late) >= 8 and all(code == 200 for code in late), (late[-8:], statuses)
    print(f"\nchroma killed mid-run: {dict(statuses)}")
