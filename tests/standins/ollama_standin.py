"""A STAND-IN for an Ollama server. It is not Ollama and runs no model.

It speaks the documented wire format of Ollama's HTTP API (docs/api.md in ollama/ollama) closely
enough that the real clients (`ollama` for Python, llama-index's `Ollama` and `OllamaEmbedding`)
run their real code against it: the same paths, JSON fields, NDJSON streaming over chunked
HTTP/1.1, and the same 404 body for a model that was never pulled. What it answers is made up,
but deterministic and shaped so tests can assert on it:

- chat/generate: if the last user message holds numbered evidence lines (``[1] Some sentence.``)
  the reply is the first sentence of the first one followed by its marker (``Some sentence. [1]``),
  otherwise ``I don't know.``; streamed as word deltas. ``options.num_predict`` caps the number of
  deltas (one word counts as one token) and then ``done_reason`` is ``"length"``.
- embeddings: a hashed bag of words (384 dimensions, L2-normalised, lower-cased words), so texts
  that share words still score higher than texts that do not.

It is no evidence that a real model or a real Ollama behaves well; tests marked ``ollama_real``
run the same behaviour against a real server when one is reachable.

Usage::

    with OllamaStandIn(models=("llama3.2", "nomic-embed-text"), delay=0.0) as server:
        ...  # point the client at server.url
        server.stop(); server.start()  # down and back up on the same port
        server.requests_to("/api/chat")  # what the client sent
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import socket
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

EMBED_DIM = 384
VERSION = "0.0.0-standin"

_EVIDENCE_LINE = re.compile(r"^\s*\[(\d+)\]\s*(\S.*)$", re.MULTILINE)
# A sentence ends at . ! or ? followed by white space or the end ("3.5 m" is not an end).
_FIRST_SENTENCE = re.compile(r"^(.+?[.!?])(?=\s|$)")
_WORD = re.compile(r"[a-z0-9]+")


# ---- deterministic "model" behaviour -----------------------------------------------------------


def evidence_reply(prompt: str) -> str:
    """The stand-in's whole "model": quote the first evidence sentence and cite it."""
    match = _EVIDENCE_LINE.search(prompt)
    if match is None:
        return "I don't know."
    number, text = match.group(1), match.group(2).strip()
    first = _FIRST_SENTENCE.match(text)
    return f"{first.group(1) if first else text} [{number}]"


def word_deltas(text: str) -> list[str]:
    """Split into deltas that concatenate back to ``text`` exactly (leading-space style, as real
    tokenisers emit)."""
    return re.findall(r"\s*\S+", text) or ([text] if text else [])


def hashed_embedding(text: str, dim: int = EMBED_DIM) -> list[float]:
    """Hashed bag of words: each lower-cased word adds +-1 at a hashed index; L2-normalised.

    A constant vector would make every retrieval test pass or fail by accident; this one ranks.
    """
    vec = [0.0] * dim
    for word in _WORD.findall(text.lower()):
        h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "big")
        vec[h % dim] += 1.0 if (h >> 32) & 1 else -1.0
    norm = math.sqrt(sum(v * v for v in vec))
    if norm == 0.0:  # no words: any fixed unit vector (a zero vector has no cosine)
        vec[0] = 1.0
        return vec
    return [v / norm for v in vec]


def tagged(name: str) -> str:
    """Ollama's name rule: a model without a tag means ``:latest``."""
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def _is_embedding_model(name: str) -> bool:
    return "embed" in name


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _stats(prompt_words: int, eval_count: int, started: float) -> dict[str, int]:
    total = max(int((time.perf_counter() - started) * 1e9), 1)
    return {
        "total_duration": total,
        "load_duration": 1_000,
        "prompt_eval_count": prompt_words,
        "prompt_eval_duration": total // 2,
        "eval_count": eval_count,
        "eval_duration": total // 2,
    }


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the stand-in received it (for asserting the client's wire format)."""

    method: str
    path: str
    body: Any  # parsed JSON; None when there was no body
    headers: dict[str, str] = field(default_factory=dict)


class _BadRequest(Exception):
    pass


# ---- HTTP plumbing -----------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a delayed reply must never keep the test process alive
    allow_reuse_address = True  # restart on the same port right after stop()

    def __init__(self, address: tuple[str, int], standin: OllamaStandIn) -> None:
        self.standin = standin
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    # HTTP/1.1 keeps connections open; stop() must cut them too, or a client's pooled connection
    # would keep talking to a "stopped" server through its still-running handler thread.
    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def cut_connections(self) -> None:
        with self._open_lock:
            conns = list(self._open)
        for conn in conns:
            with suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hung up (timeout test) or stop() cutting a socket is expected here.
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # what Ollama speaks; streaming uses chunked encoding
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # -- dispatch

    def _dispatch(self, method: str) -> None:
        standin = self.server.standin
        path = urlsplit(self.path).path.rstrip("/") or "/"
        try:
            body = self._read_json()
        except _BadRequest as exc:
            standin._record(RecordedRequest(method, path, None, dict(self.headers.items())))
            self._send_json(400, {"error": str(exc)})
            return
        standin._record(RecordedRequest(method, path, body, dict(self.headers.items())))
        if standin.delay > 0 and standin._stopping.wait(standin.delay):
            return  # stopped while "thinking": drop the connection like a dying server
        routes = {
            ("GET", "/"): self._root,
            ("HEAD", "/"): self._root,
            ("GET", "/api/version"): self._version,
            ("GET", "/api/tags"): self._tags,
            ("GET", "/api/ps"): self._ps,
            ("POST", "/api/show"): self._show,
            ("POST", "/api/chat"): self._chat,
            ("POST", "/api/generate"): self._generate,
            ("POST", "/api/embed"): self._embed,
            ("POST", "/api/embeddings"): self._embeddings,
        }
        route = routes.get((method, path))
        if route is None:
            self._send_text(404, "404 page not found")  # Ollama's router answers in plain text
            return
        try:
            route(body if isinstance(body, dict) else {})
        except _BadRequest as exc:
            self._send_json(400, {"error": str(exc)})

    def _read_json(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        if length <= 0:
            return None
        raw = self.rfile.read(length)
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise _BadRequest(f"invalid JSON body: {exc}") from None

    # -- responses

    def _headers(self, status: int, content_type: str, length: int | None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("X-Stand-In", "tests.standins.ollama_standin (not Ollama)")
        if length is None:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(length))
        self.end_headers()

    def _send_text(self, status: int, text: str) -> None:
        data = text.encode()
        self._headers(status, "text/plain; charset=utf-8", len(data))
        if self.command != "HEAD":
            self.wfile.write(data)

    def _send_json(self, status: int, obj: Any) -> None:
        data = json.dumps(obj).encode()
        self._headers(status, "application/json; charset=utf-8", len(data))
        self.wfile.write(data)

    def _send_ndjson(self, objs: Iterable[dict[str, Any]]) -> None:
        self._headers(200, "application/x-ndjson", None)
        delay = self.server.standin.chunk_delay
        for i, obj in enumerate(objs):
            if i and delay > 0 and self.server.standin._stopping.wait(delay):
                return
            line = json.dumps(obj).encode() + b"\n"
            self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _model_or_404(self, body: dict[str, Any], key: str = "model") -> str | None:
        requested = body.get(key) or body.get("name") or ""
        if not isinstance(requested, str) or not requested:
            raise _BadRequest("model is required")
        if tagged(requested) not in self.server.standin.tagged_models:
            self._send_json(404, {"error": f'model "{requested}" not found, try pulling it first'})
            return None
        return requested

    # -- endpoints

    def _root(self, body: dict[str, Any]) -> None:
        self._send_text(200, "Ollama is running")  # what clients probe for; see X-Stand-In

    def _version(self, body: dict[str, Any]) -> None:
        self._send_json(200, {"version": VERSION})

    def _tags(self, body: dict[str, Any]) -> None:
        self._send_json(200, {"models": [_tag_entry(n) for n in self.server.standin.tagged_models]})

    def _ps(self, body: dict[str, Any]) -> None:
        self._send_json(200, {"models": []})

    def _show(self, body: dict[str, Any]) -> None:
        model = self._model_or_404(body)
        if model is None:
            return
        name = tagged(model)
        embed = _is_embedding_model(name)
        arch = "nomic-bert" if embed else "llama"
        self._send_json(
            200,
            {
                "modelfile": f"# stand-in: no Modelfile\nFROM {name}\n",
                "parameters": "",
                "template": "{{ .Prompt }}",
                "details": _tag_entry(name)["details"],
                "model_info": {
                    "general.architecture": arch,
                    f"{arch}.context_length": 2048 if embed else 8192,
                    f"{arch}.embedding_length": EMBED_DIM,
                },
                "capabilities": ["embedding"] if embed else ["completion"],
                "modified_at": _now(),
            },
        )

    def _chat(self, body: dict[str, Any]) -> None:
        model = self._model_or_404(body)
        if model is None:
            return
        if _is_embedding_model(tagged(model)):
            raise _BadRequest(f'"{model}" does not support chat')
        messages = body.get("messages") or []
        if not isinstance(messages, list):
            raise _BadRequest("messages must be a list")
        if not messages:  # documented: an empty chat only loads the model
            self._send_json(
                200,
                {
                    "model": model,
                    "created_at": _now(),
                    "message": {"role": "assistant", "content": ""},
                    "done_reason": "load",
                    "done": True,
                },
            )
            return
        last_user = next(
            (str(m.get("content") or "") for m in reversed(messages) if m.get("role") == "user"),
            "",
        )
        prompt_words = sum(len(str(m.get("content") or "").split()) for m in messages)
        self._reply(body, model, last_user, prompt_words, key="message")

    def _generate(self, body: dict[str, Any]) -> None:
        model = self._model_or_404(body)
        if model is None:
            return
        prompt = str(body.get("prompt") or "")
        if not prompt:  # documented: an empty prompt only loads the model
            self._send_json(
                200,
                {
                    "model": model,
                    "created_at": _now(),
                    "response": "",
                    "done_reason": "load",
                    "done": True,
                },
            )
            return
        self._reply(body, model, prompt, len(prompt.split()), key="response")

    def _reply(self, body: dict[str, Any], model: str, prompt: str, words: int, key: str) -> None:
        started = time.perf_counter()
        deltas = word_deltas(evidence_reply(prompt))
        done_reason = "stop"
        limit = (body.get("options") or {}).get("num_predict")
        if isinstance(limit, int) and limit > 0 and len(deltas) > limit:
            deltas, done_reason = deltas[:limit], "length"

        def content(text: str) -> Any:
            return {"role": "assistant", "content": text} if key == "message" else text

        if body.get("stream", True):  # Ollama streams unless told not to

            def lines() -> Iterator[dict[str, Any]]:
                for delta in deltas:
                    yield {"model": model, "created_at": _now(), key: content(delta), "done": False}
                yield {
                    "model": model,
                    "created_at": _now(),
                    key: content(""),
                    "done": True,
                    "done_reason": done_reason,
                    **_stats(words, len(deltas), started),
                }

            self._send_ndjson(lines())
        else:
            self._send_json(
                200,
                {
                    "model": model,
                    "created_at": _now(),
                    key: content("".join(deltas)),
                    "done": True,
                    "done_reason": done_reason,
                    **_stats(words, len(deltas), started),
                },
            )

    def _embed(self, body: dict[str, Any]) -> None:
        model = self._model_or_404(body)
        if model is None:
            return
        inputs = body.get("input", "")
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, list) or not all(isinstance(t, str) for t in inputs):
            raise _BadRequest("input must be a string or a list of strings")
        started = time.perf_counter()
        self._send_json(
            200,
            {
                "model": model,
                "embeddings": [hashed_embedding(t) for t in inputs],
                "total_duration": max(int((time.perf_counter() - started) * 1e9), 1),
                "load_duration": 1_000,
                "prompt_eval_count": sum(len(t.split()) for t in inputs),
            },
        )

    def _embeddings(self, body: dict[str, Any]) -> None:  # legacy, superseded by /api/embed
        model = self._model_or_404(body)
        if model is None:
            return
        prompt = body.get("prompt") or ""
        self._send_json(200, {"embedding": hashed_embedding(prompt) if prompt else []})


def _tag_entry(name: str) -> dict[str, Any]:
    embed = _is_embedding_model(name)
    return {
        "name": name,
        "model": name,
        "modified_at": "2025-01-01T00:00:00Z",
        "size": 274_302_450 if embed else 2_019_393_189,
        "digest": hashlib.sha256(name.encode()).hexdigest(),
        "details": {
            "parent_model": "",
            "format": "gguf",
            "family": "nomic-bert" if embed else "llama",
            "families": ["nomic-bert"] if embed else ["llama"],
            "parameter_size": "137M" if embed else "3.2B",
            "quantization_level": "F16" if embed else "Q4_K_M",
        },
    }


# ---- the public handle -------------------------------------------------------------------------


class OllamaStandIn:
    """A threaded stand-in Ollama server on 127.0.0.1 (a free port, kept across stop/start).

    ``delay`` seconds pass before any /api answer (a slow or overloaded server); ``chunk_delay``
    seconds pass between streamed lines. Both can be changed while it runs.
    """

    def __init__(
        self,
        models: Sequence[str] = ("llama3.2", "nomic-embed-text"),
        delay: float = 0.0,
        *,
        chunk_delay: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.models = tuple(models)
        self.delay = delay
        self.chunk_delay = chunk_delay
        self.host = host
        self.port = port  # 0 until first start(); then fixed so restarts reuse it
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._requests: list[RecordedRequest] = []
        self._requests_lock = threading.Lock()

    @property
    def tagged_models(self) -> tuple[str, ...]:
        return tuple(tagged(m) for m in self.models)

    @property
    def url(self) -> str:
        if not self.port:
            raise RuntimeError("OllamaStandIn has no port yet: call start() first")
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> Self:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"ollama-standin-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Refuse new connections and cut open ones (in-flight replies end abruptly)."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # wakes handlers sleeping in `delay`
        server.shutdown()
        server.cut_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- what was received

    def _record(self, request: RecordedRequest) -> None:
        with self._requests_lock:
            self._requests.append(request)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._requests_lock:
            return list(self._requests)

    def requests_to(self, path: str, method: str = "POST") -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path and r.method == method]

    def clear_requests(self) -> None:
        with self._requests_lock:
            self._requests.clear()
