"""The HTTP layer through FastAPI's TestClient: bad input refused with JSON, access control,
admission, and the source endpoints against the real pipeline.

Validation tests use ``FakePipeline``: a request refused by validation never reaches the
pipeline, and the fake fails the test if it does. Everything a user sees of sources, uploads and
deletes runs against the real pipeline (embedded Chroma in a tmp dir, MiniLM).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api import create_app
from api.deps import Admission
from rag.config import APISettings, Settings
from rag.errors import BackendUnavailable, Busy
from rag.pipeline import Pipeline
from rag.types import Answer, Citation, IngestReport, StreamEvent, Trace
from rag.wiring import build_pipeline

SEED_1 = "001_b162a8e02d0cef5d.txt"


class FakePipeline:
    """Stand-in for requests that validation must refuse: any pipeline call fails the test."""

    model_name = "fake-model"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"validation let a request reach pipeline.{name}")


def make_settings(tmp_path: Path, **api: Any) -> Settings:
    return Settings(data_dir=tmp_path / "data", api=APISettings(**api))


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = make_settings(tmp_path)
    with TestClient(create_app(FakePipeline(settings), settings)) as c:
        yield c


def assert_json_error(response: Any, *statuses: int) -> dict[str, Any]:
    """Every refusal is JSON with a readable ``error`` string."""
    assert response.status_code in statuses, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body.get("error"), str) and body["error"], body
    return body


# -- questions ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "question",
    ["", "   ", "\n\t  \n", "x" * 2001, "q" * 100_000, "what\x00is this", "\x00"],
    ids=["empty", "spaces", "whitespace", "over-limit", "100kB", "nul-inside", "nul-only"],
)
def test_bad_questions_are_refused_with_json(client: TestClient, question: str) -> None:
    for path, body in [
        ("/api/ask", {"question": question}),
        ("/api/chat", {"messages": [{"role": "user", "content": question}]}),
        (
            "/v1/chat/completions",
            {"model": "x", "messages": [{"role": "user", "content": question}]},
        ),
    ]:
        assert_json_error(client.post(path, json=body), 422)


def test_question_limit_comes_from_settings(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, max_question_chars=20)
    with TestClient(create_app(FakePipeline(settings), settings)) as c:
        body = assert_json_error(c.post("/api/ask", json={"question": "y" * 21}), 422)
    assert "20" in body["error"]


@pytest.mark.parametrize(
    "raw",
    [
        b'{"question": ',  # truncated
        b"{'question': 'single quotes'}",
        b"\xff\xfe not utf-8",
        b"",
    ],
    ids=["truncated", "single-quotes", "not-utf8", "empty-body"],
)
def test_malformed_json_is_a_json_error(client: TestClient, raw: bytes) -> None:
    r = client.post("/api/ask", content=raw, headers={"content-type": "application/json"})
    assert_json_error(r, 400, 422)


def test_lone_surrogates_and_deep_nesting_are_4xx_not_500(client: TestClient) -> None:
    headers = {"content-type": "application/json"}
    for raw in ['{"question": "\\ud800 who?"}', '{"\\udfff": 1}']:
        assert_json_error(client.post("/api/ask", content=raw, headers=headers), 400, 422)
    nested = "[" * 100_000 + "]" * 100_000
    assert_json_error(client.post("/api/ask", content=nested, headers=headers), 400, 422)


def test_wrong_shapes_and_content_types(client: TestClient) -> None:
    cases: list[tuple[str, dict[str, Any]]] = [
        ("/api/ask", {"json": ["a", "list"]}),
        ("/api/ask", {"json": {"question": 42}}),
        ("/api/ask", {"json": {"question": "ok?", "questoin": "typo"}}),
        ("/api/ask", {"json": {"question": "ok?", "top_k": 0}}),
        ("/api/ask", {"json": {"question": "ok?", "top_k": 21}}),
    ]
    for path, kwargs in cases:
        assert_json_error(client.post(path, **kwargs), 400, 422)


@pytest.mark.parametrize("path", ["/api/ask", "/api/chat", "/v1/chat/completions"])
@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "text/plain; charset=utf-8", "application/x-www-form-urlencoded", "text/html"],
)
def test_json_sent_as_another_media_type_is_415_saying_so(
    client: TestClient, path: str, content_type: str
) -> None:
    body = json.dumps({"question": "Who?", "messages": [user()]})
    r = client.post(path, content=body, headers={"content-type": content_type})
    error = assert_json_error(r, 415)["error"]
    assert "application/json" in error and content_type.split(";")[0] in error


def test_json_media_types_and_a_missing_content_type_are_read_as_json(client: TestClient) -> None:
    # Past the media type check, validation answers (the fake pipeline is never reached).
    for headers in (
        {"content-type": "application/json; charset=utf-8"},
        {"content-type": "application/merge-patch+json"},
        {},
    ):
        r = client.post("/api/ask", content=b'{"question": " "}', headers=headers)
        assert_json_error(r, 422)


def user(content: str = "Who?") -> dict[str, str]:
    return {"role": "user", "content": content}


@pytest.mark.parametrize(
    "messages",
    [
        [],
        [{"role": "tool", "content": "x"}],
        [{"role": "user"}],
        [user(), {"role": "assistant", "content": "last is not a user"}],
        [{"role": "system", "content": "only a system message"}],
        [user(), {"role": "assistant", "content": "a" * 8001}, user()],
        [user() for _ in range(201)],
        [user() for _ in range(5000)],
    ],
    ids=[
        "none",
        "unknown-role",
        "no-content",
        "last-assistant",
        "only-system",
        "long-turn",
        "201-turns",
        "5000-turns",
    ],
)
def test_bad_conversations(client: TestClient, messages: list[dict[str, Any]]) -> None:
    assert_json_error(client.post("/api/chat", json={"messages": messages}), 422)
    assert_json_error(client.post("/v1/chat/completions", json={"messages": messages}), 422)


def test_unknown_routes_and_methods_are_json(client: TestClient) -> None:
    assert_json_error(client.get("/api/nothing-here"), 404)
    assert_json_error(client.delete("/healthz"), 405)
    assert_json_error(client.get("/api/ask"), 405)


def test_oversized_json_body_is_413_before_parsing(client: TestClient) -> None:
    body = json.dumps({"question": "x" * (5 * 1024 * 1024)})
    assert_json_error(
        client.post("/api/ask", content=body, headers={"content-type": "application/json"}), 413
    )


# -- uploads: refused before the pipeline ------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "../evil.txt",
        "../../etc/passwd.txt",
        "/etc/evil.txt",
        "sub/dir.txt",
        "..\\evil.txt",
        "C:evil.txt",
        ".hidden.txt",
        "..",
        "x" * 300 + ".txt",
    ],
)
def test_upload_names_that_could_escape_are_400(client: TestClient, name: str) -> None:
    r = client.post("/api/sources", files={"file": (name, b"Some text about Peru.\n")})
    assert_json_error(r, 400)


@pytest.mark.parametrize("name", ["a\x00.txt", "evil\x01.txt", "tab\there.txt", "\x7f.txt"])
def test_upload_names_with_control_characters_are_400(client: TestClient, name: str) -> None:
    # httpx percent-encodes these, so write the multipart body by hand.
    boundary = "b0undary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        f"Content-Type: text/plain\r\n\r\nhello\r\n--{boundary}--\r\n"
    ).encode()
    r = client.post(
        "/api/sources",
        content=body,
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert_json_error(r, 400)


class RecordingPipeline(FakePipeline):
    """Records the name an upload reaches the pipeline with."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.names: list[str] = []

    def add_file(self, filename: str, data: bytes) -> IngestReport:
        self.names.append(filename)
        return IngestReport(added=[filename])


def test_windows_full_path_names_are_cut_to_the_plain_name(tmp_path: Path) -> None:
    # The multipart parser keeps only the last part of "C:\\dir\\name", which old browsers
    # send; what reaches the pipeline is a plain name.
    settings = make_settings(tmp_path)
    recorder = RecordingPipeline(settings)
    with TestClient(create_app(recorder, settings)) as c:  # type: ignore[arg-type]
        r = c.post("/api/sources", files={"file": ("C:\\Users\\me\\notes.txt", b"Some text.")})
    assert r.status_code == 200 and recorder.names == ["notes.txt"]


def test_upload_of_unsupported_type_is_415(client: TestClient) -> None:
    r = client.post("/api/sources", files={"file": ("tool.exe", b"MZ\x90\x00")})
    assert_json_error(r, 415)


def test_oversized_upload_is_413_declared_or_chunked(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, max_upload_bytes=4096)
    with TestClient(create_app(FakePipeline(settings), settings)) as c:
        big = b"word " * 2000  # 10 kB
        assert_json_error(c.post("/api/sources", files={"file": ("big.txt", big)}), 413)

        # No Content-Length (chunked): counted as it arrives.
        boundary = "chunky"
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="big.txt"\r\nContent-Type: text/plain\r\n\r\n'
        ).encode()

        def chunks() -> Iterator[bytes]:
            yield head
            for _ in range(200):
                yield b"word " * 200  # 200 kB in total, over limit + multipart allowance
            yield f"\r\n--{boundary}--\r\n".encode()

        r = c.post(
            "/api/sources",
            content=chunks(),
            headers={"content-type": f"multipart/form-data; boundary={boundary}"},
        )
        assert_json_error(r, 413)

        # Just over the limit but inside the multipart allowance: the route's own check.
        r = c.post("/api/sources", files={"file": ("edge.txt", b"a" * 4097)})
        assert_json_error(r, 413)


def test_upload_without_file_is_422(client: TestClient) -> None:
    assert_json_error(client.post("/api/sources", data={"nofile": "x"}), 422)


# -- access ---------------------------------------------------------------------------------------

KEY = "s3cret-key-for-tests"


@pytest.fixture
def keyed(tmp_path: Path) -> Iterator[TestClient]:
    settings = make_settings(tmp_path, api_key=KEY)
    with TestClient(create_app(FakePipeline(settings), settings)) as c:
        yield c


def every_endpoint(app: Any) -> list[tuple[str, str]]:
    """(method, concrete path) for every documented operation plus the docs themselves, taken
    from the app so that a new route cannot be missed."""
    out = [("GET", "/openapi.json"), ("GET", "/docs")]
    for path, operations in app.openapi()["paths"].items():
        for method in operations:
            out.append((method.upper(), path.replace("{source_id}", SEED_1)))
    return out


PUBLIC = {("GET", "/healthz")}


def test_api_key_is_required_everywhere_but_healthz_and_the_page(keyed: TestClient) -> None:
    endpoints = every_endpoint(keyed.app)
    checked = 0
    for method, path in endpoints:
        if (method, path) in PUBLIC:
            continue
        for headers in (
            {},
            {"Authorization": "Bearer wrong"},
            {"Authorization": f"Basic {KEY}"},
            {"Authorization": KEY},
        ):
            r = keyed.request(method, path, headers=headers, json={})
            body = assert_json_error(r, 401)
            assert "API key" in body["error"]
            assert r.headers["www-authenticate"] == "Bearer"
        checked += 1
    assert checked >= 12, endpoints  # ask, chat, completions, models, sources x5, readyz, docs
    assert keyed.get("/healthz").status_code == 200
    page = keyed.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert keyed.get("/static/app.js").status_code == 200


def test_right_key_passes_and_is_compared_in_constant_time(
    keyed: TestClient, key_comparisons: list[tuple[bytes, bytes]]
) -> None:
    auth = {"Authorization": f"Bearer {KEY}"}
    # Past the key check, validation answers (the fake pipeline is never reached).
    assert_json_error(keyed.post("/api/ask", json={"question": " "}, headers=auth), 422)
    assert keyed.get("/openapi.json", headers=auth).status_code == 200
    assert key_comparisons and key_comparisons[0] == (KEY.encode(), KEY.encode())


def test_non_ascii_key_attempts_are_401_not_500(keyed: TestClient) -> None:
    r = keyed.get("/v1/models", headers={"Authorization": "Bearer cl\u00e9".encode("latin-1")})
    assert_json_error(r, 401)


def test_no_key_configured_means_no_auth(client: TestClient) -> None:
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/v1/models").json()["data"][0]["id"] == "fake-model"


def test_cors_is_off_by_default_and_configurable(client: TestClient, tmp_path: Path) -> None:
    preflight = {"Origin": "http://example.test", "Access-Control-Request-Method": "POST"}
    r = client.options("/api/ask", headers=preflight)
    assert "access-control-allow-origin" not in r.headers
    settings = make_settings(tmp_path, cors_origins=["http://example.test"])
    with TestClient(create_app(FakePipeline(settings), settings)) as c:
        r = c.options("/api/ask", headers=preflight)
        assert r.headers["access-control-allow-origin"] == "http://example.test"


def test_docs_load_swagger_ui_from_this_server(client: TestClient) -> None:
    html = client.get("/docs").text
    assert "https://" not in html and "http://" not in html, html  # no CDN: offline works
    for asset in re.findall(r'(?:src|href)="(/[^"]+)"', html):
        r = client.get(asset)
        assert r.status_code == 200 and len(r.content) > 1000, asset
    assert "/docs/assets/swagger-ui-bundle.js" in html


def test_page_is_served_with_a_strict_content_security_policy(client: TestClient) -> None:
    r = client.get("/")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"
    for asset in ("app.js", "style.css"):
        assert client.get(f"/static/{asset}").status_code == 200


# -- admission ----------------------------------------------------------------------------------


def test_admission_refuses_at_the_limit_and_frees_slots() -> None:
    gate = Admission(limit=2)
    a, b = gate.acquire(), gate.acquire()
    with pytest.raises(Busy) as busy:
        gate.acquire()
    assert busy.value.retry_after >= 1
    a.release()
    a.release()  # idempotent: a stream may end by more than one path
    assert gate.active == 1
    b.release()
    assert gate.active == 0


class SlowPipeline:
    """Holds every answer until released, to fill the admission queue deterministically."""

    model_name = "slow"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.entered = threading.Semaphore(0)
        self.release = threading.Event()

    def ask(self, question: str, history: Any = (), top_k: int | None = None) -> Answer:
        self.entered.release()
        self.release.wait(30)
        return Answer(question, question, "Held answer.", [], True, Trace(question))


def test_over_the_queue_limit_answers_429_with_retry_after(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, max_queue=1)
    slow = SlowPipeline(settings)
    with TestClient(create_app(slow, settings)) as c:  # type: ignore[arg-type]
        results: list[int] = []
        first = threading.Thread(
            target=lambda: results.append(c.post("/api/ask", json={"question": "one?"}).status_code)
        )
        first.start()
        assert slow.entered.acquire(timeout=10)
        started = time.monotonic()
        r = c.post("/api/ask", json={"question": "two?"})
        assert time.monotonic() - started < 2  # refused at once, not queued
        assert_json_error(r, 429)
        assert int(r.headers["retry-after"]) >= 1
        assert r.headers["x-turn"]  # the turn's ticket, to send back with the retry
        ticket = {"X-Turn": r.headers["x-turn"]}
        again = c.post("/api/ask", json={"question": "two?"}, headers=ticket)
        assert_json_error(again, 429)  # still early, the same turn: told the rest of its wait
        assert again.headers["x-turn"] == r.headers["x-turn"]
        slow.release.set()
        first.join(10)
        assert results == [200]
        assert c.app.state.admission.active == 0  # type: ignore[attr-defined]


# -- backend failures: shapes of 503 and of a stream that fails half-way ---------------------------


class FailingPipeline:
    """The model backend going away, as the pipeline reports it (BackendUnavailable). Real
    outages (a stopped Ollama, a killed Chroma) are exercised in the fault tests; this checks
    what HTTP makes of the report: 503 with the backend named, or an SSE error event."""

    model_name = "failing"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def _down(self) -> BackendUnavailable:
        return BackendUnavailable("ollama", "http://127.0.0.1:9", "connection refused")

    def ask(self, question: str, history: Any = (), top_k: int | None = None) -> Answer:
        raise self._down()

    def ask_stream(self, question: str, history: Any = (), top_k: int | None = None) -> Any:
        yield StreamEvent("token", "The draft")
        raise self._down()

    def readiness(self) -> dict[str, str]:
        raise self._down()


@pytest.fixture
def failing(tmp_path: Path) -> Iterator[TestClient]:
    settings = make_settings(tmp_path)
    with TestClient(create_app(FailingPipeline(settings), settings)) as c:  # type: ignore[arg-type]
        yield c


def test_backend_down_is_503_naming_the_backend(failing: TestClient) -> None:
    for r in (failing.post("/api/ask", json={"question": "Who?"}), failing.get("/readyz")):
        body = assert_json_error(r, 503)
        assert body["backend"] == "ollama" and body["address"] == "http://127.0.0.1:9"
    assert failing.get("/healthz").status_code == 200  # the process itself is fine
    assert failing.app.state.admission.active == 0  # type: ignore[attr-defined]


def test_stream_failing_half_way_ends_with_an_error_event(failing: TestClient) -> None:
    body = {"messages": [{"role": "user", "content": "Who?"}], "stream": True}
    with failing.stream("POST", "/api/chat", json=body) as r:
        assert r.status_code == 200
        text = r.read().decode()
    events = [block.split("\n") for block in text.strip().split("\n\n")]
    assert [e[0] for e in events] == ["event: token", "event: error"]
    error = json.loads(events[-1][1].removeprefix("data: "))
    assert error["backend"] == "ollama" and "unavailable" in error["error"]
    assert failing.app.state.admission.active == 0  # type: ignore[attr-defined]


def test_without_a_pipeline_the_app_builds_one_at_start_up(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", embed={"backend": "hash"})
    app = create_app(settings=settings)
    with TestClient(app) as c:
        assert isinstance(app.state.pipeline, Pipeline)
        assert c.get("/api/sources").json() == {"sources": []}


# -- sources, against the real pipeline -----------------------------------------------------------


@pytest.fixture
def seeded(seeded_pipeline: Pipeline) -> Iterator[TestClient]:
    with TestClient(create_app(seeded_pipeline)) as c:
        yield c


def test_sources_list_show_and_text(seeded: TestClient) -> None:
    listed = seeded.get("/api/sources").json()["sources"]
    assert SEED_1 in {s["id"] for s in listed}
    detail = seeded.get(f"/api/sources/{SEED_1}").json()
    text = seeded.get(f"/api/sources/{SEED_1}/text")
    assert text.headers["content-type"].startswith("text/plain")
    assert text.headers["x-content-type-options"] == "nosniff"
    paragraphs = detail["paragraphs"]
    assert paragraphs and detail["source"]["id"] == SEED_1
    for p in paragraphs:  # offsets point into the whole text, which is what the page links to
        assert text.text[p["start"] : p["end"]] == p["text"]
    assert any("twenty-five years" in p["text"] for p in paragraphs)


@pytest.mark.parametrize(
    "source_id",
    [
        "no-such-file.txt",
        "nested/missing.md",
        "..%2F..%2Fetc%2Fpasswd",
        "%2Fetc%2Fpasswd",
        "..%2Fpyproject.toml",
        "a%00b.txt",
    ],
)
def test_unknown_or_escaping_source_ids_are_404(seeded: TestClient, source_id: str) -> None:
    for method, suffix in (("GET", ""), ("GET", "/text"), ("DELETE", "")):
        r = seeded.request(method, f"/api/sources/{source_id}{suffix}")
        body = assert_json_error(r, 404)
        assert "root:" not in body["error"]


@pytest.fixture
def empty(pipeline: Pipeline) -> Iterator[TestClient]:
    """A fresh pipeline with nothing ingested, for tests that write."""
    with TestClient(create_app(pipeline)) as c:
        yield c


def test_upload_is_idempotent_and_delete_removes(empty: TestClient) -> None:
    doc = b"# Harbour notes\n\nThe harbour of Valparaiso reopened on Tuesday after the storm.\n"
    first = empty.post("/api/sources", files={"file": ("harbour.md", doc, "text/markdown")})
    assert first.status_code == 200, first.text
    assert first.json()["added"] == ["harbour.md"]
    again = empty.post("/api/sources", files={"file": ("harbour.md", doc, "text/markdown")})
    assert again.json()["unchanged"] == ["harbour.md"] and again.json()["embedded"] == 0
    assert [s["id"] for s in empty.get("/api/sources").json()["sources"]] == ["harbour.md"]
    gone = empty.delete("/api/sources/harbour.md")
    assert gone.status_code == 200 and gone.json()["removed"] == "harbour.md"
    assert_json_error(empty.get("/api/sources/harbour.md"), 404)
    assert_json_error(empty.delete("/api/sources/harbour.md"), 404)


def test_upload_is_kept_as_a_file_a_reindex_brings_back(
    empty: TestClient, pipeline: Pipeline, tmp_path: Path
) -> None:
    folder = pipeline.settings.sources_dir
    doc = b"# Harbour notes\n\nThe harbour of Valparaiso reopened on Tuesday after the storm.\n"
    r = empty.post("/api/sources", files={"file": ("harbour notes.md", doc, "text/markdown")})
    assert r.status_code == 200 and r.json()["added"] == ["harbour notes.md"], r.text
    assert (folder / "harbour notes.md").read_bytes() == doc  # the file, as sent
    before = empty.get("/api/sources/harbour notes.md").json()
    # A re-index from scratch (new data folder: a new embedding model would need one too).
    fresh = build_pipeline(pipeline.settings.model_copy(update={"data_dir": tmp_path / "fresh"}))
    report = fresh.ingest(folder, prune=True)
    assert "harbour notes.md" in report.added and report.removed == []
    source, paragraphs = fresh.get_source("harbour notes.md")
    assert source.to_dict() == before["source"]
    assert [p.to_dict() for p in paragraphs] == before["paragraphs"]
    # And --prune on the serving pipeline keeps it: it is a file of the folder.
    assert pipeline.ingest(folder, prune=True).removed == []


def test_delete_removes_the_uploaded_file_too(empty: TestClient, pipeline: Pipeline) -> None:
    folder = pipeline.settings.sources_dir
    doc = b"Harbour notes\n\nThe harbour of Valparaiso reopened on Tuesday after the storm.\n"
    assert empty.post("/api/sources", files={"file": ("harbour.txt", doc)}).status_code == 200
    assert (folder / "harbour.txt").exists()
    assert empty.delete("/api/sources/harbour.txt").status_code == 200
    assert not (folder / "harbour.txt").exists()
    assert "harbour.txt" not in pipeline.ingest(folder).added  # nothing to bring it back


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("cafe\u0301 notes.txt", "caf\u00e9 notes.txt"),  # one file however "é" was typed
        ("  two   spaces .md", "two spaces .md"),
        ("what? <now>|*.txt", "what_ _now___.txt"),
    ],
    ids=["nfc", "spaces", "reserved"],
)
def test_upload_names_are_sanitised_into_the_folder(
    empty: TestClient, pipeline: Pipeline, sent: str, stored: str
) -> None:
    doc = b"Notes\n\nThe harbour of Valparaiso reopened on Tuesday after the storm.\n"
    r = empty.post("/api/sources", files={"file": (sent, doc)})
    assert r.status_code == 200 and r.json()["added"] == [stored], r.text
    assert [p.name for p in pipeline.settings.sources_dir.iterdir() if p.name == stored]
    assert empty.get(f"/api/sources/{stored}").status_code == 200


def test_same_name_replaces_the_file_and_a_failed_index_leaves_the_folder_alone(
    empty: TestClient, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = pipeline.settings.sources_dir
    first = b"Harbour\n\nThe harbour reopened on Tuesday.\n"
    second = b"Harbour\n\nThe harbour reopened on Wednesday, a day late.\n"
    empty.post("/api/sources", files={"file": ("harbour.txt", first)})
    r = empty.post("/api/sources", files={"file": ("harbour.txt", second)})
    assert r.json()["updated"] == ["harbour.txt"]
    assert (folder / "harbour.txt").read_bytes() == second

    def store_down(*args: Any, **kwargs: Any) -> Any:
        raise BackendUnavailable("chroma", "test", "stopped")

    monkeypatch.setattr(pipeline.indexer, "sync", store_down)
    assert_json_error(empty.post("/api/sources", files={"file": ("harbour.txt", first)}), 503)
    assert_json_error(empty.post("/api/sources", files={"file": ("new.txt", first)}), 503)
    assert (folder / "harbour.txt").read_bytes() == second  # the indexed version, still
    assert not (folder / "new.txt").exists()
    assert [p.name for p in folder.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)),
        b"caf\xe9 cr\xe8me",
        b"",
        b"  \n\n ",
    ],
    ids=["binary", "latin-1", "empty", "blank"],
)
def test_uploads_that_are_not_text_are_refused_with_the_reason(
    empty: TestClient, data: bytes
) -> None:
    body = assert_json_error(empty.post("/api/sources", files={"file": ("bad.txt", data)}), 422)
    assert body["file"] == "bad.txt" and body["reason"]
    assert empty.get("/api/sources").json()["sources"] == []  # nothing half-written
    assert not (empty.app.state.settings.sources_dir / "bad.txt").exists()  # type: ignore[attr-defined]


# -- fuzzing from the OpenAPI schema -----------------------------------------------------------


class CannedPipeline:
    """Fuzz target stand-in: fixed answers, no sources. The fuzz checks the HTTP layer (no 5xx,
    JSON errors); answering itself is tested against the real pipeline in test_server.py."""

    model_name = "canned"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def ask(self, question: str, history: Any = (), top_k: int | None = None) -> Answer:
        cite = Citation(1, "a.txt", "A", 0, 0, 5, "Text.", 0.5, "p1", True, 0, 5)
        return Answer(question, question, "Text [1].", [cite], False, Trace(question))

    def ask_stream(self, question: str, history: Any = (), top_k: int | None = None) -> Any:
        yield StreamEvent("token", "Text")
        yield StreamEvent("final", answer=self.ask(question))

    def list_sources(self) -> list[Any]:
        return []

    def _missing(self, source_id: str, *more: Any) -> Any:
        from rag.errors import NotFoundError

        raise NotFoundError(f"no source {source_id!r}")

    get_source = source_text = remove_source = _missing

    def add_file(self, filename: str, data: bytes) -> Any:
        from rag.ingest import parse_file

        parse_file(filename, data)  # the real checks on name and content
        return IngestReport(added=[filename])

    def readiness(self) -> dict[str, str]:
        return {"store": "ok", "model": "ok"}


@pytest.fixture(scope="module")
def fuzz_schema(tmp_path_factory: pytest.TempPathFactory) -> Any:
    schemathesis = pytest.importorskip("schemathesis")
    settings = Settings(data_dir=tmp_path_factory.mktemp("fuzz"))
    app = create_app(CannedPipeline(settings), settings)  # type: ignore[arg-type]
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def fuzz_operation(operation: Any, mode: Any, counts: dict[int, int]) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis.errors import Unsatisfiable

    label = f"{operation.label} ({mode.value})"

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=20,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case: Any) -> None:
        response = case.call()
        assert response.status_code < 500, (label, case.body, response.text[:300])
        if response.status_code >= 400:
            assert isinstance(response.json().get("error"), str), (label, response.text)
        counts[response.status_code] = counts.get(response.status_code, 0) + 1

    try:
        fuzz()
    except Unsatisfiable:
        # An operation without parameters or body (GET /healthz) has no invalid form.
        assert mode.value == "negative", label


def test_fuzz_from_openapi_schema_no_5xx_and_json_errors(fuzz_schema: Any) -> None:
    """Valid and deliberately invalid requests for every operation: no 5xx, JSON 4xx bodies."""
    from schemathesis import GenerationMode

    counts: dict[int, int] = {}
    operations = [result.ok() for result in fuzz_schema.get_all_operations()]
    for operation in operations:
        for mode in GenerationMode:
            fuzz_operation(operation, mode, counts)
    assert len(operations) >= 10
    assert sum(v for k, v in counts.items() if k >= 400) > 50, counts  # invalid input was tried
