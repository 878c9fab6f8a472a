"""Timings over HTTP against a running `rag serve`: /api/ask latency, streaming first answer
text, and concurrent clients. Every loop here is bounded in count and in time."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

from rag.bench.stats import percentile, summary, timed

TIMEOUT = httpx.Timeout(120.0, connect=5.0)
MAX_ATTEMPTS = 50  # requests per load client, 429s included: a bound, should the deadline fail


def ask(url: str, questions: list[str]) -> dict[str, Any]:
    """p50/p95 of POST /api/ask with a warm model (each question once untimed first)."""
    with httpx.Client(base_url=url, timeout=TIMEOUT) as client:
        for q in dict.fromkeys(questions):  # warm: each question once, untimed
            client.post("/api/ask", json={"question": q}).raise_for_status()
        seconds, stages = [], []
        for q in questions:
            t, r = timed(lambda q=q: client.post("/api/ask", json={"question": q}))
            r.raise_for_status()
            seconds.append(t)
            stages.append(r.json().get("timings", {}))
    return {**summary(seconds), "stages_p50_ms": stage_medians(stages)}


def stage_medians(timings: list[dict[str, float]]) -> dict[str, float | None]:
    """The server's own per-stage timings (an answer's ``timings``), median of each, in ms:
    where the time of an answer goes."""
    names = sorted({k for t in timings for k in t})
    out: dict[str, float | None] = {}
    for name in names:
        p = percentile([t[name] for t in timings if name in t], 50)
        out[name] = None if p is None else round(p * 1000, 1)
    return out


def first_token(url: str, questions: list[str]) -> dict[str, Any]:
    """Time from sending a streaming /api/chat request to its first SSE event with answer text
    (``token``: text the citation check has kept; or ``final``). ``status`` events are progress,
    not answer text, and are not counted."""
    seconds: list[float] = []
    stages: list[dict[str, float]] = []
    drafted = 0
    with httpx.Client(base_url=url, timeout=TIMEOUT) as client:
        for q in questions:
            body = {"messages": [{"role": "user", "content": q}], "stream": True}
            t0 = time.perf_counter()
            first: float | None = None
            with client.stream("POST", "/api/chat", json=body) as r:
                r.raise_for_status()
                final = False
                for line in r.iter_lines():
                    if first is None and line in ("event: token", "event: final"):
                        first = time.perf_counter() - t0
                        drafted += line == "event: token"
                    if line == "event: final":
                        final = True
                    elif final and line.startswith("data: "):
                        stages.append(json.loads(line[6:]).get("timings", {}))
                        final = False
            if first is not None:
                seconds.append(first)
    return {**summary(seconds), "drafted": drafted, "stages_p50_ms": stage_medians(stages)}


@dataclass
class _Tally:
    ok: list[float] = field(default_factory=list)
    rejected: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    retry_after: set[str] = field(default_factory=set)
    served: set[int] = field(default_factory=set)  # clients that got at least one answer
    lock: threading.Lock = field(default_factory=threading.Lock)


def _client_loop(
    url: str, questions: list[str], offset: int, answers: int, deadline: float, tally: _Tally
) -> None:
    """One client wanting ``answers`` answers, one after the other, none asked after
    ``deadline``. A 429 is answered as a polite client would: wait Retry-After (capped by the
    deadline), then ask the same question again, with the 429's turn ticket."""
    done = 0  # questions finished: answered, or failed with something other than a 429
    turn: dict[str, str] = {}  # the X-Turn ticket of the last 429, sent back with the retry
    with httpx.Client(base_url=url, timeout=TIMEOUT) as client:
        for _ in range(MAX_ATTEMPTS):
            if done >= answers or time.monotonic() >= deadline:
                return
            q = questions[(offset + done) % len(questions)]
            t0 = time.perf_counter()
            try:
                r = client.post("/api/ask", json={"question": q}, headers=turn)
            except httpx.HTTPError as e:
                with tally.lock:
                    tally.errors.append(type(e).__name__)
                done += 1
                continue
            took = time.perf_counter() - t0
            with tally.lock:
                if r.status_code == 200:
                    tally.ok.append(took)
                    tally.served.add(offset)
                elif r.status_code == 429:
                    tally.rejected.append(took)
                    tally.retry_after.add(r.headers.get("retry-after", "(none)"))
                else:
                    tally.errors.append(str(r.status_code))
            done += r.status_code != 429
            turn = {"X-Turn": r.headers["x-turn"]} if "x-turn" in r.headers else {}
            if r.status_code == 429:
                wait = float(r.headers.get("retry-after", "1") or 1)
                time.sleep(max(0.0, min(wait, deadline - time.monotonic())))


def load(
    url: str, questions: list[str], clients: int, requests: int, seconds: float
) -> dict[str, Any]:
    """``clients`` concurrent clients, each wanting ``requests`` answers (a 429 is waited out
    and asked again) and starting nothing after ``seconds``: throughput of answers, how many
    clients got any, latency of admitted ones, 429s and errors."""
    tally = _Tally()
    deadline = time.monotonic() + seconds
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        futures = [
            pool.submit(_client_loop, url, questions, i, requests, deadline, tally)
            for i in range(clients)
        ]
        for f in futures:
            f.result()
    wall = time.perf_counter() - t0
    sent = len(tally.ok) + len(tally.rejected) + len(tally.errors)
    return {
        "clients": clients,
        "requests": sent,
        "ok": len(tally.ok),
        "clients_served": len(tally.served),
        "rejected_429": len(tally.rejected),
        "errors": len(tally.errors),
        "error_kinds": sorted(set(tally.errors)),
        "error_rate": round(len(tally.errors) / sent, 4) if sent else None,
        "wall_s": round(wall, 2),
        "answers_per_s": round(len(tally.ok) / wall, 3) if wall else None,
        "admitted": summary(tally.ok),
        "refused": summary(tally.rejected),
        "retry_after": sorted(tally.retry_after),
    }


def first_answer(url: str, question: str) -> float:
    """Seconds for the first /api/ask after start (it pays for building the lexical index)."""
    with httpx.Client(base_url=url, timeout=httpx.Timeout(900.0, connect=5.0)) as client:
        t, r = timed(lambda: client.post("/api/ask", json={"question": question}))
        r.raise_for_status()
    return t
