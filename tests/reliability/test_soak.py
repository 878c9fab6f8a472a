"""A bounded soak: 16 client threads for 90 s against a real `rag serve` process (real MiniLM
embedder, bundled SmolLM2 model), mixing questions, chats (plain and streamed), source listings,
source texts and health probes. Clients back off on 429 as told by Retry-After.

Promise: zero 5xx (and no error event inside a streamed 200), memory flat once warm, and no
file descriptor growth (sampled from /proc/<pid> every 2 s).
"""

from __future__ import annotations

import random
import shutil
import statistics
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.reliability.conftest import (
    SEEDS,
    ServeProcess,
    fd_targets,
    rag_env,
    rss_bytes,
)

pytestmark = pytest.mark.slow

CLIENTS = 16
DURATION = 90.0  # seconds of load
MAX_REQUESTS_PER_CLIENT = 3000  # a second bound, should the server answer very fast
SAMPLE_EVERY = 2.0
SEED = 1123

QUESTIONS = [
    "What prison sentence are prosecutors seeking for Betssy Chávez?",
    "Who announced that Peru was cutting diplomatic ties with Mexico?",
    "Where did Betssy Chávez go to request asylum?",
    "What criminal charge does Betssy Chávez face?",
    "What is the capital of Australia?",
    "who is betsy chaves",
]


class Soak:
    def __init__(self, url: str, source_ids: list[str]) -> None:
        self.url = url
        self.source_ids = source_ids
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.statuses: Counter[str] = Counter()
        self.problems: list[str] = []

    def record(self, op: str, status: int | str, problem: str | None = None) -> None:
        with self.lock:
            self.statuses[f"{op} {status}"] += 1
            if problem:
                self.problems.append(problem)

    def one(self, c: httpx.Client, rng: random.Random) -> float:
        """One request; returns how long to back off (0 unless 429)."""
        roll = rng.random()
        source = rng.choice(self.source_ids)
        if roll < 0.20:
            op, r = "sources", c.get("/api/sources")
        elif roll < 0.30:
            op, r = "source", c.get(f"/api/sources/{source}")
        elif roll < 0.38:
            op, r = "text", c.get(f"/api/sources/{source}/text")
        elif roll < 0.43:
            op, r = "health", c.get(rng.choice(["/healthz", "/readyz"]))
        elif roll < 0.68:
            op, r = "ask", c.post("/api/ask", json={"question": rng.choice(QUESTIONS)})
        elif roll < 0.88:
            messages = [{"role": "user", "content": rng.choice(QUESTIONS)}]
            if rng.random() < 0.5:
                messages = [
                    {"role": "user", "content": "Who is Betssy Chávez?"},
                    {"role": "assistant", "content": "A former prime minister of Peru."},
                    {"role": "user", "content": "What sentence are prosecutors seeking?"},
                ]
            op, r = "chat", c.post("/api/chat", json={"messages": messages})
        else:
            op = "chat-sse"
            body = {
                "messages": [{"role": "user", "content": rng.choice(QUESTIONS)}],
                "stream": True,
            }
            with c.stream("POST", "/api/chat", json=body) as r:
                text = r.read().decode("utf-8", "replace")
            if r.status_code == 200 and ("event: error" in text or "event: final" not in text):
                self.record(op, "200-error-event", f"stream ended badly: {text[-300:]}")
                return 0.0
        problem = None
        if r.status_code >= 500:
            problem = f"{op}: {r.status_code} {r.text[:200]}"
        self.record(op, r.status_code, problem)
        if r.status_code == 429:
            return min(float(r.headers.get("retry-after", "1")), 2.0) * (0.5 + rng.random())
        return 0.0

    def client(self, k: int) -> None:
        rng = random.Random(SEED + k)
        with httpx.Client(base_url=self.url, timeout=120) as c:
            for _ in range(MAX_REQUESTS_PER_CLIENT):
                if self.stop.is_set():
                    return
                try:
                    backoff = self.one(c, rng)
                except httpx.HTTPError as exc:
                    self.record("transport", type(exc).__name__, f"transport: {exc!r}")
                    backoff = 0.5
                if backoff:
                    self.stop.wait(backoff)


def test_soak_mixed_load_no_5xx_flat_memory_no_fd_growth(tmp_path: Path) -> None:
    sources = tmp_path / "sources"
    shutil.copytree(SEEDS, sources)
    env = rag_env(tmp_path / "data", SOURCES_DIR=str(sources))
    with ServeProcess(env, tmp_path, args=("--ingest",)) as server:
        with httpx.Client(base_url=server.url, timeout=120) as c:  # warm every path once
            ids = [s["id"] for s in c.get("/api/sources").json()["sources"]]
            assert c.post("/api/ask", json={"question": QUESTIONS[0]}).status_code == 200
            assert c.get("/readyz").status_code == 200
        time.sleep(1)
        idle_before = fd_targets(server.pid)

        soak = Soak(server.url, ids)
        samples: list[tuple[float, int, int]] = []  # (t, rss, fds other than SQLite's)
        threads = [
            threading.Thread(target=soak.client, args=(k,), daemon=True) for k in range(CLIENTS)
        ]
        began = time.monotonic()
        for t in threads:
            t.start()
        try:
            while time.monotonic() - began < DURATION:
                targets = fd_targets(server.pid)
                other = sum(1 for t in targets if not t.endswith("chroma.sqlite3"))
                samples.append((time.monotonic() - began, rss_bytes(server.pid), other))
                time.sleep(SAMPLE_EVERY)
        finally:
            soak.stop.set()
            for t in threads:
                t.join(150)  # the longest a request may take, then a margin
        assert not any(t.is_alive() for t in threads), "a client is stuck"
        time.sleep(3)  # let closed connections go
        idle_after = fd_targets(server.pid)
        rss_end = rss_bytes(server.pid)
        assert server.proc is not None and server.proc.poll() is None, server.output()

    total = sum(soak.statuses.values())
    answers = sum(
        n
        for k, n in soak.statuses.items()
        if k.split()[0] in ("ask", "chat", "chat-sse") and k.endswith(" 200")
    )
    warm = [s for s in samples if s[0] >= DURATION * 0.25]
    third = max(1, len(warm) // 3)
    rss_early = statistics.mean(s[1] for s in warm[:third])
    rss_late = statistics.mean(s[1] for s in warm[-third:])
    fds_early = max(s[2] for s in warm[:third])
    fds_late = max(s[2] for s in warm[-third:])
    mib = 1024 * 1024

    # Chroma keeps one SQLite connection per worker thread that used it: their number grows to
    # the size of the thread pool (anyio's default: 40) and then stays. Everything else must
    # come back to where it was.
    def split(targets: list[str]) -> tuple[int, int]:
        sqlite = sum(1 for t in targets if t.endswith("chroma.sqlite3"))
        return sqlite, len(targets) - sqlite

    sqlite_before, other_before = split(idle_before)
    sqlite_after, other_after = split(idle_after)
    report: dict[str, Any] = {
        "requests": total,
        "answers_200": answers,
        "statuses": dict(sorted(soak.statuses.items())),
        "rss_mib_early_late_end": (
            round(rss_early / mib),
            round(rss_late / mib),
            round(rss_end / mib),
        ),
        "fds_early_late": (fds_early, fds_late),
        "fds_idle_before_after": (len(idle_before), len(idle_after)),
        "sqlite_fds_before_after": (sqlite_before, sqlite_after),
    }
    print(f"\nsoak {CLIENTS} clients x {DURATION:.0f}s: {report}")
    assert not soak.problems, soak.problems[:10]
    assert answers >= 20, report  # the model really answered under load
    assert rss_late - rss_early < max(64 * mib, 0.15 * rss_early), report
    assert fds_late <= fds_early + 8, report
    assert other_after <= other_before + 4, report
    assert sqlite_after <= 40 + 4, report
