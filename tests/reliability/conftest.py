"""Helpers for the fault, bad-input, access and load tests: servers on loopback that can be
stopped and started again, `rag` subprocesses with their own data folder, and process probes
(RSS, open file descriptors, listening addresses) read from /proc.

Every wait here is bounded in time; every process a helper starts is stopped by its fixture or
context manager, also when the test fails.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from rag.config import Settings
from tests.standins.ollama_standin import OllamaStandIn

ROOT = Path(__file__).resolve().parents[2]
SEEDS = ROOT / "seeds"
RAG_BIN = Path(sys.executable).with_name("rag")
QUESTION = "What prison sentence are prosecutors seeking for Betssy Chávez?"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    """Poll ``check`` until it is true or ``timeout`` seconds pass (bounded, never forever)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return True
        except Exception:
            pass
        time.sleep(interval)
    return False


# -- environment for `rag` subprocesses ----------------------------------------------------------


def rag_env(data_dir: Path, **settings: str) -> dict[str, str]:
    """The parent's environment without any RAG_/OLLAMA_ setting, plus the given ones.

    ``rag_env(d, LLM__BACKEND="ollama")`` sets ``RAG_LLM__BACKEND``.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RAG_", "OLLAMA_", "PYTEST_", "COV_"))
    }
    env.update(
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        ANONYMIZED_TELEMETRY="False",
        TOKENIZERS_PARALLELISM="false",
        PYTHONUNBUFFERED="1",
        COLUMNS="400",  # rich wraps output at 80 columns when not on a terminal
        RAG_DATA_DIR=str(data_dir),
    )
    env.update({f"RAG_{k}": v for k, v in settings.items()})
    return env


def run_rag(
    args: list[str], env: Mapping[str, str], cwd: Path, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``rag ARGS`` to completion (bounded by ``timeout``), output captured."""
    return subprocess.run(
        [str(RAG_BIN), *args],
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def raw_request(url: str, data: bytes, timeout: float = 60) -> tuple[int, bytes]:
    """Bytes no well-behaved client would send (httpx refuses to); status and body back."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(data)  # callers send `Connection: close`: the server ends the reply
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    reply = b"".join(chunks)
    status = int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/1.1 ") else -1
    return status, reply.partition(b"\r\n\r\n")[2]


# -- /proc probes --------------------------------------------------------------------------------


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def fd_targets(pid: int) -> list[str]:
    """What each open descriptor points at (files, ``socket:[...]``, ``pipe:[...]``...)."""
    out = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            out.append(os.readlink(fd))
        except OSError:
            continue
    return out


def listening_addresses(pid: int, port: int) -> set[str]:
    """Local IPv4/IPv6 addresses the process listens on at ``port`` (from /proc/<pid>/net)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found: set[str] = set()
    for table, width in (("tcp", 8), ("tcp6", 32)):
        path = Path(f"/proc/{pid}/net/{table}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            cols = line.split()
            local, state, inode = cols[1], cols[3], cols[9]
            hex_ip, hex_port = local.split(":")
            if state != "0A" or int(hex_port, 16) != port or inode not in inodes:
                continue  # 0A = LISTEN
            if width == 8:
                found.add(socket.inet_ntop(socket.AF_INET, bytes.fromhex(hex_ip)[::-1]))
            else:
                raw = b"".join(bytes.fromhex(hex_ip[i : i + 8])[::-1] for i in range(0, 32, 8))
                found.add(socket.inet_ntop(socket.AF_INET6, raw))
    return found


# -- servers -------------------------------------------------------------------------------------


class ThreadServer:
    """uvicorn in a background thread on a socket bound first (no port race)."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        if not wait_until(lambda: self.server.started or not self.thread.is_alive(), 60, 0.05):
            raise RuntimeError("uvicorn did not start within 60 s")
        if not self.server.started:
            raise RuntimeError("uvicorn exited at start-up")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)
        self.sock.close()


class ServeProcess:
    """A real ``rag serve`` process on a loopback port; output goes to files (no pipe stalls)."""

    def __init__(
        self,
        env: Mapping[str, str],
        cwd: Path,
        *,
        port: int | None = None,
        args: tuple[str, ...] = (),
        host: str | None = "127.0.0.1",
    ) -> None:
        self.env = dict(env)
        self.cwd = cwd
        self.port = port or free_port()
        self.args = args
        self.host = host
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = cwd / f"serve-{self.port}.log"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 240) -> ServeProcess:
        cmd = [str(RAG_BIN), "serve", "--port", str(self.port), *self.args]
        if self.host is not None:
            cmd += ["--host", self.host]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                cmd, env=self.env, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT
            )

        def up() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                code = self.proc.returncode
                raise RuntimeError(f"rag serve exited with {code}:\n{self.output()}")
            return httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if up():
                    return self
            except RuntimeError:
                raise
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"rag serve did not answer /healthz within {timeout}s:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM (uvicorn shuts down gracefully), then SIGKILL if it is still there."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def __enter__(self) -> ServeProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def standin() -> Iterator[OllamaStandIn]:
    """An Ollama stand-in (tests/standins) on a loopback port, stopped at teardown."""
    with OllamaStandIn(models=("llama3.2", "nomic-embed-text")) as server:
        yield server


def standin_settings(data_dir: Path, url: str, timeout: float = 2.0, **more: Any) -> Settings:
    """Settings for a fast real pipeline: hashed embeddings, model behind the Ollama stand-in,
    embedded Chroma in ``data_dir``. Built explicitly: no environment leaks in."""
    sources = data_dir.with_name(f"{data_dir.name}-sources")  # uploads land here, not in seeds/
    if not sources.exists():
        shutil.copytree(SEEDS, sources)
    base: dict[str, Any] = {
        "data_dir": data_dir,
        "sources_dir": sources,
        "embed": {"backend": "hash"},
        "llm": {"backend": "ollama", "model": "llama3.2", "timeout": timeout},
        "ollama": {"host": url},
    }
    base.update(more)
    return Settings(**base)


@pytest.fixture
def server(pipeline: Any) -> Iterator[ThreadServer]:
    """The real app on a loopback port over the module's own ``pipeline`` fixture."""
    from api.main import create_app

    with ThreadServer(create_app(pipeline)) as s:
        yield s
