"""Real server processes on loopback for the benchmark: `rag serve` and `chroma run`.

Each is started on a free 127.0.0.1 port, waited for with a deadline, and always stopped (the
context managers kill on exit, whatever happened). Nothing listens beyond loopback.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def rss_bytes(pid: int) -> int | None:
    """Resident memory of a process (VmRSS), or None when it is gone or not on Linux."""
    return status_bytes(pid, "VmRSS")


def status_bytes(pid: int, field: str) -> int | None:
    """A size from a process's /proc status (VmRSS now, VmHWM its peak), or None when it is
    gone or not on Linux."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _tail(path: Path, chars: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def _chroma_bin() -> str:
    exe = Path(sys.executable).with_name("chroma")
    return str(exe) if exe.exists() else (shutil.which("chroma") or "chroma")


@contextmanager
def chroma_server(path: Path, log: Path, timeout: float = 60.0) -> Iterator[int]:
    """`chroma run --path PATH` on a free loopback port; yields the port."""
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [_chroma_bin(), "run", "--path", str(path), "--host", HOST, "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection((HOST, port), timeout=0.5):
                    break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(f"chroma run exited: {_tail(log)}") from None
                if time.monotonic() > deadline:
                    raise RuntimeError(f"chroma run not listening after {timeout}s") from None
                time.sleep(0.1)
        yield port
    finally:
        _stop(proc)


@dataclass
class RagServer:
    pid: int
    url: str
    ready_seconds: float  # from process start to the first /readyz 200


def server_env(
    data_dir: Path, sources_dir: Path, port: int | None = None, **extra: str
) -> dict[str, str]:
    """The parent's environment (so the user's model settings apply) with the bench's folders,
    an embedded store and a loopback port forced."""
    env = dict(os.environ)
    env.update(
        {
            "RAG_DATA_DIR": str(data_dir),
            "RAG_SOURCES_DIR": str(sources_dir),
            "RAG_CHROMA__HOST": "",
            "RAG_API__HOST": HOST,
            "RAG_API__API_KEY": "",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "ANONYMIZED_TELEMETRY": "False",
        }
    )
    if port is not None:
        env["RAG_API__PORT"] = str(port)
    env.update(extra)
    return env


@contextmanager
def rag_server(
    data_dir: Path, sources_dir: Path, log: Path, timeout: float = 180.0, **extra_env: str
) -> Iterator[RagServer]:
    """`rag serve` (as ``python -m rag.cli serve``) in a clean working folder, so no stray
    ``.env`` changes what is measured; yields once ``/readyz`` answers 200."""
    port = free_port()
    url = f"http://{HOST}:{port}"
    cwd = log.parent
    started = time.perf_counter()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rag.cli", "serve"],
            cwd=cwd,
            env=server_env(data_dir, sources_dir, port, **extra_env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        ready = wait_ready(url, proc, started, timeout, log)
        yield RagServer(pid=proc.pid, url=url, ready_seconds=ready)
    finally:
        _stop(proc)


def wait_ready(
    url: str, proc: subprocess.Popen[bytes], started: float, timeout: float, log: Path
) -> float:
    with httpx.Client(timeout=5.0) as client:
        while True:
            try:
                if client.get(f"{url}/readyz").status_code == 200:
                    return time.perf_counter() - started
            except httpx.TransportError:
                pass
            if proc.poll() is not None:
                raise RuntimeError(f"rag serve exited with {proc.returncode}: {_tail(log)}")
            if time.perf_counter() - started > timeout:
                raise RuntimeError(f"rag serve not ready after {timeout}s: {_tail(log)}")
            time.sleep(0.05)
