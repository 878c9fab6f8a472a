"""Fixtures for the real components: embedded Chroma in a tmp dir, a `chroma run` server on
loopback, the bundled MiniLM embedder and SmolLM2 model. Nothing here reads ../shared."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from rag.config import Settings
from rag.pipeline import Pipeline
from rag.wiring import build_pipeline

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
SEED_1 = "001_b162a8e02d0cef5d.txt"
# Two articles written for testing before the originals were available (see its README).
STANDIN_SEEDS = ROOT / "tests" / "data" / "standin_seeds" / "articles"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def copy_of_seeds(folder: Path) -> Path:
    """A writable copy of seeds/ at ``folder`` (made once; reused if it is there)."""
    if not folder.exists():
        shutil.copytree(SEEDS, folder)
    return folder


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Settings for a test: its own data folder; any field may be overridden."""

    def make(**overrides: object) -> Settings:
        # A copy of seeds/: uploads are written to the sources folder, never to the repo's.
        base: dict[str, object] = {
            "data_dir": tmp_path / "data",
            "sources_dir": copy_of_seeds(tmp_path / "sources-of-settings"),
        }
        base.update(overrides)
        return Settings(**base)

    return make


@pytest.fixture
def pipeline(make_settings: Callable[..., Settings]) -> Pipeline:
    """A fresh pipeline on embedded Chroma in a tmp dir, with the real MiniLM embedder."""
    return build_pipeline(make_settings())


@pytest.fixture(scope="session")
def seeded_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    """One pipeline with seeds/ ingested, shared by tests that only read (model loads lazily)."""
    data = tmp_path_factory.mktemp("seeded")
    folder = copy_of_seeds(data / "sources")
    p = build_pipeline(Settings(data_dir=data / "chroma", sources_dir=folder))
    p.ingest(folder)
    return p


@pytest.fixture(scope="session")
def standin_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    """One pipeline over the stand-in articles: a second corpus, with facts the seeds lack."""
    data = tmp_path_factory.mktemp("standin")
    folder = data / "sources"
    shutil.copytree(STANDIN_SEEDS, folder)
    p = build_pipeline(Settings(data_dir=data / "chroma", sources_dir=folder))
    p.ingest(folder)
    return p


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    """A writable copy of seeds/ a test may change."""
    folder = tmp_path / "sources"
    shutil.copytree(SEEDS, folder)
    return folder


def _chroma_bin() -> str:
    exe = Path(sys.executable).with_name("chroma")
    return str(exe) if exe.exists() else (shutil.which("chroma") or "chroma")


class ChromaServer:
    """A real `chroma run` process on a free loopback port; can be killed and restarted."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> None:
        self.proc = subprocess.Popen(
            [
                _chroma_bin(),
                "run",
                "--path",
                str(self.path),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError("chroma run exited before listening") from None
                time.sleep(0.2)
        raise RuntimeError(f"chroma run did not listen on {self.port} within {timeout}s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[ChromaServer]:
    server = ChromaServer(tmp_path / "chroma-server")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def key_comparisons(monkeypatch: pytest.MonkeyPatch) -> list[tuple[bytes, bytes]]:
    """Every (offered, configured) pair the API key check hands to ``hmac.compare_digest``."""
    import hmac

    import api.deps

    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(api.deps.hmac, "compare_digest", spy)
    return calls
