"""`rag ingest` over a folder with bad files among good ones: real files on disk, the real CLI,
embedded Chroma (hashed embeddings, so it runs in seconds).

Promise under test: every good file is ingested and every bad file is reported in the same run
with its reason; what was stored for a file that has since gone bad stays as it was (also with
`--prune`); the exit status (3) says files were skipped and `--json` lists them; a NUL byte
anywhere in a file, not only in its first 8 kB, refuses it (at ingest and at upload); on a
terminal, a progress bar counts files and paragraphs.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import shutil
import subprocess
import time
from pathlib import Path

import httpx

from api import create_app
from rag.wiring import build_pipeline
from tests.reliability.conftest import (
    RAG_BIN,
    SEEDS,
    ThreadServer,
    rag_env,
    run_rag,
    standin_settings,
)

SEED_1, SEED_2 = sorted(p.name for p in SEEDS.iterdir())
GOOD = "An article\n\nThe harbour bridge reopened on Monday after three years of repairs.\n"
LATE_NUL = ("Late NUL\n\n" + "Plain words in a paragraph. " * 400 + "\x00 and more.\n").encode()


def bad_files(folder: Path, outside: Path) -> dict[str, str]:
    """Four kinds of bad file in ``folder``; the word each one's reason must contain."""
    (folder / "empty.txt").write_bytes(b"")
    (folder / "latin1.txt").write_bytes("Caf\xe9 story\n\nIt was good.".encode("latin-1"))
    (folder / "late_nul.txt").write_bytes(LATE_NUL)
    (outside / "secret.txt").write_text("Secret\n\nNot for the sources folder.\n")
    (folder / "link.txt").symlink_to(outside / "secret.txt")
    assert LATE_NUL.index(b"\x00") > 8192  # past what the old check read
    return {
        "empty.txt": "empty",
        "latin1.txt": "UTF-8",
        "late_nul.txt": "NUL",
        "link.txt": "outside",
    }


def sources(env: dict[str, str], cwd: Path) -> dict[str, dict[str, object]]:
    done = run_rag(["sources", "list", "--json"], env, cwd=cwd)
    assert done.returncode == 0, done.stderr
    return {s["id"]: s for s in json.loads(done.stdout)}


def test_every_good_file_is_ingested_and_every_bad_one_named_in_one_run(tmp_path: Path) -> None:
    folder, outside = tmp_path / "sources", tmp_path / "outside"
    shutil.copytree(SEEDS, folder)
    outside.mkdir()
    (folder / "good.txt").write_text(GOOD)
    expected = bad_files(folder, outside)
    env = rag_env(tmp_path / "data", EMBED__BACKEND="hash")

    done = run_rag(["ingest", str(folder), "--json"], env, cwd=tmp_path)
    assert done.returncode == 3, (done.returncode, done.stderr[-2000:])
    report = json.loads(done.stdout)
    assert sorted(report["added"]) == sorted([SEED_1, SEED_2, "good.txt"])
    reasons = {s["file"]: s["reason"] for s in report["skipped"]}
    assert set(reasons) == set(expected), reasons
    for name, word in expected.items():
        assert word in reasons[name], (name, reasons[name])
    assert set(sources(env, tmp_path)) == {SEED_1, SEED_2, "good.txt"}

    # Without --json: one line per skipped file on stderr, same exit status, no traceback.
    again = run_rag(["ingest", str(folder)], env, cwd=tmp_path)
    assert again.returncode == 3
    for name in expected:
        assert f"skipped {name}: " in again.stderr, again.stderr
    assert "4 skipped" in again.stdout and "Traceback" not in again.stderr


def test_a_stored_file_that_goes_bad_keeps_what_was_stored(tmp_path: Path) -> None:
    folder = tmp_path / "sources"
    shutil.copytree(SEEDS, folder)
    env = rag_env(tmp_path / "data", EMBED__BACKEND="hash")
    assert run_rag(["ingest", str(folder)], env, cwd=tmp_path).returncode == 0
    before = run_rag(["sources", "show", SEED_1, "--json"], env, cwd=tmp_path).stdout

    (folder / SEED_1).write_bytes((folder / SEED_1).read_bytes() + b"\x00")  # damaged since
    done = run_rag(["ingest", str(folder), "--prune", "--json"], env, cwd=tmp_path)
    assert done.returncode == 3, done.stderr
    report = json.loads(done.stdout)
    assert [s["file"] for s in report["skipped"]] == [SEED_1]
    assert report["removed"] == [] and report["unchanged"] == [SEED_2]
    after = run_rag(["sources", "show", SEED_1, "--json"], env, cwd=tmp_path).stdout
    assert after == before


def test_a_nul_byte_past_the_first_8_kb_is_refused_at_upload_too(tmp_path: Path) -> None:
    pipeline = build_pipeline(
        standin_settings(tmp_path / "data", "http://127.0.0.1:9", embed={"backend": "hash"})
    )
    with ThreadServer(create_app(pipeline)) as server:
        r = httpx.post(
            server.url + "/api/sources",
            files={"file": ("late_nul.txt", LATE_NUL, "text/plain")},
            timeout=30,
        )
        assert 400 <= r.status_code < 500, r.text
        assert "NUL" in r.json()["error"], r.json()
        assert httpx.get(server.url + "/api/sources", timeout=30).json()["sources"] == []


def test_ingest_shows_files_and_paragraphs_on_a_terminal(tmp_path: Path) -> None:
    folder = tmp_path / "sources"
    shutil.copytree(SEEDS, folder)
    # One big file: many paragraphs, so the bar is drawn while they are embedded.
    (folder / "big.txt").write_text(
        "Big\n\n" + "\n\n".join(f"Paragraph {i} tells of event {i * 7}." for i in range(6000))
    )
    env = rag_env(tmp_path / "data", EMBED__BACKEND="hash") | {"TERM": "xterm"}
    output = _run_on_a_terminal([str(RAG_BIN), "ingest", str(folder)], env, tmp_path, 300)
    total = re.search(r"; (\d+) paragraphs", output)
    assert total and int(total.group(1)) > 6000, output[-2000:]
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", output)  # without colours and cursor moves
    assert re.search(r"files +━+ +3/3", plain), plain[-2000:]
    assert re.search(rf"paragraphs +━+ +{total.group(1)}/{total.group(1)}", plain), plain[-2000:]


def _run_on_a_terminal(cmd: list[str], env: dict[str, str], cwd: Path, timeout: float) -> str:
    """Run ``cmd`` with stdout and stderr on a pseudo-terminal; everything it wrote."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the other side is closed
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
    assert proc.returncode == 0, b"".join(chunks)[-2000:]
    return b"".join(chunks).decode(errors="replace")
