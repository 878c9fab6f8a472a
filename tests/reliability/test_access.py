"""Access: with an API key, every endpoint but /healthz needs it (checked on a real `rag serve`
process, endpoint by endpoint from its own OpenAPI schema); without one, `rag serve` listens on
127.0.0.1 only unless told otherwise; source ids, upload names, static paths and links inside
the sources folder can never reach files outside the sources and data folders.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api import create_app
from rag.pipeline import Pipeline
from rag.wiring import build_pipeline
from tests.reliability.conftest import (
    SEEDS,
    ServeProcess,
    ThreadServer,
    listening_addresses,
    rag_env,
    raw_request,
    run_rag,
    standin_settings,
)
from tests.standins.ollama_standin import OllamaStandIn

KEY = "k3y-for-the-access-tests-0123456789"
SEED_1 = "001_b162a8e02d0cef5d.txt"
SECRET = "TOP-SECRET-MARKER-7f3a"  # in files outside the sources folder: must never be served
OPEN_WITHOUT_KEY = {"/healthz"}
PAGE = {"/", "/static/app.js", "/static/style.css", "/static/index.html"}  # no data inside


def serve_env(tmp_path: Path, standin: OllamaStandIn, **more: str) -> dict[str, str]:
    sources = tmp_path / "sources"
    if not sources.exists():
        shutil.copytree(SEEDS, sources)
    return rag_env(
        tmp_path / "data",
        SOURCES_DIR=str(sources),
        EMBED__BACKEND="hash",
        LLM__BACKEND="ollama",
        LLM__MODEL="llama3.2",
        LLM__TIMEOUT="5",
        OLLAMA__HOST=standin.url,
        **more,
    )


def endpoints(schema: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for path, methods in schema["paths"].items():
        concrete = path.replace("{source_id}", SEED_1)
        for method in methods:
            out.append((method.upper(), concrete))
    return out


def request_body(method: str, path: str) -> dict[str, Any]:
    if method != "POST":
        return {}
    if path == "/api/sources":
        return {"files": {"file": ("k.txt", b"Some text about the key test.\n")}}
    if path == "/api/ask":
        return {"json": {"question": "Who is Betssy Chávez?"}}
    return {"json": {"model": "x", "messages": [{"role": "user", "content": "Who is Chávez?"}]}}


@pytest.mark.slow
def test_with_a_key_every_endpoint_but_healthz_needs_it(
    tmp_path: Path, standin: OllamaStandIn
) -> None:
    env = serve_env(tmp_path, standin, API__API_KEY=KEY)
    with (
        ServeProcess(env, tmp_path, args=("--ingest",)) as server,
        httpx.Client(base_url=server.url, timeout=30) as c,
    ):
        good = {"Authorization": f"Bearer {KEY}"}
        schema = c.get("/openapi.json", headers=good).json()
        routes = [*endpoints(schema), ("GET", "/openapi.json"), ("GET", "/docs")]
        protected = [r for r in routes if r[1] not in OPEN_WITHOUT_KEY]
        assert len(protected) >= 12, routes
        near_miss = KEY[:-1] + ("x" if KEY[-1] != "x" else "y")
        wrong_headers: list[dict[str, Any]] = [
            {},
            {"Authorization": "Bearer"},
            {"Authorization": f"Bearer {near_miss}"},
            {"Authorization": f"Bearer {KEY}x"},
            {"Authorization": f"Bearer {KEY[:8]}"},
            {"Authorization": f"Basic {KEY}"},
            {"Authorization": KEY},
            {"X-API-Key": KEY},
            {"Authorization": "Bearer ключ".encode()},  # not latin-1: bytes on the wire
        ]
        refused = 0
        for method, path in protected:
            for headers in wrong_headers:
                r = c.request(method, path, headers=headers, **request_body(method, path))
                assert r.status_code == 401, (method, path, headers, r.status_code)
                assert r.json()["error"] and r.headers["www-authenticate"] == "Bearer"
                refused += 1
            r = c.request(method, f"{path}?api_key={KEY}", **request_body(method, path))
            assert r.status_code == 401, (method, path, "query string key")
            refused += 1
            r = c.request(method, path, headers=good, **request_body(method, path))
            assert r.status_code != 401 and r.status_code < 500, (method, path, r.text[:200])
        assert c.get("/healthz").status_code == 200
        for path in PAGE:
            r = c.get(path)
            assert r.status_code == 200 and SEED_1 not in r.text  # the page holds no data
        print(
            f"\naccess: {len(protected)} protected endpoints x {len(wrong_headers) + 1} "
            f"wrong credentials = {refused} requests refused with 401; right key accepted"
        )


def test_the_key_is_compared_in_constant_time_whatever_the_length(
    tmp_path: Path, key_comparisons: list[tuple[bytes, bytes]]
) -> None:
    """Every attempt goes through hmac.compare_digest, also when the length differs (a
    length check first would tell an attacker the key's length)."""
    from rag.config import APISettings, Settings

    settings = Settings(data_dir=tmp_path / "d", api=APISettings(api_key=KEY))

    class NoPipeline:
        model_name = "none"

        def list_sources(self) -> list[Any]:
            return []

    guesses = ["", "k", KEY[:-1], KEY + "-longer", "x" * len(KEY), KEY]
    with TestClient(create_app(NoPipeline(), settings)) as c:  # type: ignore[arg-type]
        codes = [
            c.get("/api/sources", headers={"Authorization": f"Bearer {g}"}).status_code
            for g in guesses
        ]
    assert codes == [401] * 5 + [200]
    calls = key_comparisons
    assert len(calls) == len(guesses)  # compared every time, whatever the length
    assert {a for a, _ in calls} == {g.encode() for g in guesses}
    assert all(b == KEY.encode() for _, b in calls)


@pytest.mark.slow
def test_without_a_key_rag_serve_listens_on_loopback_only(
    tmp_path: Path, standin: OllamaStandIn
) -> None:
    env = serve_env(tmp_path, standin)
    with ServeProcess(env, tmp_path, args=("--ingest",), host=None) as server:
        assert listening_addresses(server.pid, server.port) == {"127.0.0.1"}
        assert httpx.get(server.url + "/api/sources").status_code == 200  # no key configured
    # Told otherwise (--host), it does what it is told.
    told = ServeProcess(env, tmp_path, host="0.0.0.0")
    told.log = tmp_path / "serve-told.log"
    with told:
        assert listening_addresses(told.pid, told.port) == {"0.0.0.0"}


# -- paths ---------------------------------------------------------------------------------------


@pytest.fixture
def contained(tmp_path: Path, standin: OllamaStandIn) -> Iterator[tuple[ThreadServer, Pipeline]]:
    """Sources in tmp/sources, data in tmp/data, and secrets right next to both."""
    sources = tmp_path / "sources"
    shutil.copytree(SEEDS, sources)
    (tmp_path / "secret.txt").write_text(f"{SECRET}\n", encoding="utf-8")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "secret.txt").write_text(f"{SECRET}\n", encoding="utf-8")
    settings = standin_settings(tmp_path / "data", standin.url, sources_dir=sources)
    pipeline = build_pipeline(settings)
    pipeline.ingest(sources)
    with ThreadServer(create_app(pipeline)) as server:
        yield server, pipeline


ESCAPING_IDS = [
    "../secret.txt",
    "..%2fsecret.txt",
    "..%2Fsecret.txt",
    "%2e%2e/secret.txt",
    "%2e%2e%2fsecret.txt",
    "....//secret.txt",
    "..\\secret.txt",
    "..%5csecret.txt",
    "/etc/passwd",
    "%2fetc%2fpasswd",
    "%2F..%2F..%2Fsecret.txt",
    "data/secret.txt",
    "../data/secret.txt",
    "./001_b162a8e02d0cef5d.txt/../../secret.txt",
    "001_b162a8e02d0cef5d.txt/../../secret.txt",
    "chroma/chroma.sqlite3",
    "../data/chroma/chroma.sqlite3",
    "%00../secret.txt",
    "..%00/secret.txt",
    "..%c0%afsecret.txt",
]


def test_source_ids_never_reach_files_outside(contained: Any) -> None:
    server, pipeline = contained
    tried = 0
    for ident in ESCAPING_IDS:
        for method, suffix in (("GET", ""), ("GET", "/text"), ("DELETE", "")):
            # Raw bytes on the wire: no client-side normalisation of "..".
            request = (
                f"{method} /api/sources/{ident}{suffix} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Connection: close\r\n\r\n"
            ).encode()
            status, body = raw_request(server.url, request)
            tried += 1
            assert status in (400, 404, 405), (method, ident, suffix, status, body[:200])
            assert SECRET.encode() not in body and b"SQLite" not in body
    assert [s.id for s in pipeline.list_sources()] == sorted(p.name for p in SEEDS.iterdir())
    print(f"\npaths: {tried} escaping source-id requests refused (404/400/405)")


@pytest.mark.parametrize(
    "path",
    [
        "/static/../api/main.py",
        "/static/%2e%2e/main.py",
        "/static/..%2fmain.py",
        "/static/..%2f..%2fREADME.md",
        "/static/%2e%2e%2f%2e%2e%2fpyproject.toml",
        "/static//etc/passwd",
        "/static/%2fetc%2fpasswd",
        "/static/..\\main.py",
        "/../pyproject.toml",
        "/%2e%2e/pyproject.toml",
    ],
)
def test_static_paths_never_reach_files_outside(contained: Any, path: str) -> None:
    server, _ = contained
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
    status, body = raw_request(server.url, request)
    assert status in (400, 404), (path, status, body[:200])
    for leak in (b"create_app", b"root:x:0", b"[build-system]", b"rag-local"):
        assert leak not in body, (path, leak)


def test_a_link_in_the_sources_folder_to_a_file_outside_is_refused(
    contained: Any, tmp_path: Path
) -> None:
    server, pipeline = contained
    sources = tmp_path / "sources"
    (sources / "leak.txt").symlink_to(tmp_path / "secret.txt")
    report = pipeline.ingest(sources)
    assert [s.file for s in report.skipped] == ["leak.txt"]
    assert "outside the sources folder" in report.skipped[0].reason
    assert "leak.txt" not in [s.id for s in pipeline.list_sources()]
    assert SECRET not in httpx.get(server.url + "/api/sources").text
    # The same through the command line: one clear line, exit code 3 (files skipped).
    env = rag_env(tmp_path / "cli-data", EMBED__BACKEND="hash")
    done = run_rag(["ingest", str(sources)], env, cwd=tmp_path)
    assert done.returncode == 3 and "skipped leak.txt" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    # A link that stays inside the folder is fine.
    (sources / "leak.txt").unlink()
    (sources / "alias.txt").symlink_to(sources / SEED_1)
    report = pipeline.ingest(sources)
    assert "alias.txt" in report.added
