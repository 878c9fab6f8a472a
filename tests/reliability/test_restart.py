"""Restarts of the API process (`rag serve --ingest`, the real MiniLM embedder and bundled model):
stopped gracefully, then killed with SIGKILL, then started again on the same data folder. Each
time: the same sources, the same paragraphs, the same answers, and nothing embedded again.
"""

from __future__ import annotations

import re
import shutil
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.reliability.conftest import QUESTION, SEEDS, ServeProcess, rag_env

pytestmark = pytest.mark.slow

ASKS: list[tuple[str, dict[str, Any]]] = [
    ("/api/ask", {"question": QUESTION}),
    ("/api/ask", {"question": "Who announced that Peru was cutting diplomatic ties with Mexico?"}),
    ("/api/ask", {"question": "What is the capital of Australia?"}),  # unanswerable here
    (
        "/api/chat",
        {
            "messages": [
                {"role": "user", "content": "Who is Betssy Chávez?"},
                {"role": "assistant", "content": "A former prime minister of Peru."},
                {"role": "user", "content": "What charge does she face?"},
            ]
        },
    ),
]


def observe(server: ServeProcess) -> dict[str, Any]:
    """Everything a client can see that must survive a restart (timings left out)."""
    seen: dict[str, Any] = {}
    with httpx.Client(base_url=server.url, timeout=120) as c:
        sources = c.get("/api/sources").json()["sources"]
        seen["sources"] = sources
        for s in sources:
            detail = c.get(f"/api/sources/{s['id']}")
            assert detail.status_code == 200
            seen[f"source {s['id']}"] = detail.json()
        for i, (path, body) in enumerate(ASKS):
            r = c.post(path, json=body)
            assert r.status_code == 200, (path, r.text[:300])
            data = r.json()
            data.pop("timings", None)
            seen[f"answer {i}"] = data
        assert c.get("/readyz").status_code == 200
    return seen


def embedded_on_start(server: ServeProcess) -> int:
    match = re.search(r"ingested .*: (\d+)\s+paragraphs\s+\((\d+)\s+embedded\)", server.output())
    assert match, server.output()
    return int(match.group(2))


def test_restarted_api_serves_the_same_sources_and_answers_without_re_embedding(
    tmp_path: Path,
) -> None:
    sources = tmp_path / "sources"
    shutil.copytree(SEEDS, sources)
    env = rag_env(tmp_path / "data", SOURCES_DIR=str(sources))
    port = None

    first = ServeProcess(env, tmp_path, args=("--ingest",))
    port = first.port
    with first:
        assert embedded_on_start(first) > 0
        before = observe(first)
    assert first.proc is not None and first.proc.returncode is not None

    # Graceful restart.
    second = ServeProcess(env, tmp_path, port=port, args=("--ingest",))
    second.log = tmp_path / "serve-2.log"
    with second:
        assert embedded_on_start(second) == 0
        assert observe(second) == before
        assert second.proc is not None
        second.proc.send_signal(signal.SIGKILL)  # a crash, not a shutdown
        second.proc.wait(30)

    # After a crash.
    third = ServeProcess(env, tmp_path, port=port, args=("--ingest",))
    third.log = tmp_path / "serve-3.log"
    with third:
        assert embedded_on_start(third) == 0
        assert observe(third) == before
    print(
        f"\nrestart: {len(before['sources'])} sources, {len(ASKS)} answers identical over "
        "a graceful restart and a SIGKILL restart; 0 paragraphs re-embedded"
    )
