"""`rag bench --quick` keeps working: it runs end to end (real model, `rag serve` and `chroma run`
on loopback) and writes a complete, sane report. No timing is asserted: benchmarks measure,
tests check behaviour."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag.bench import corpus
from rag.bench.report import markdown, targets
from rag.bench.stats import percentile, summary

ROOT = Path(__file__).resolve().parents[2]


def test_percentile_is_nearest_rank() -> None:
    xs = [0.5, 0.1, 0.4, 0.2, 0.3]
    assert percentile(xs, 50) == 0.3
    assert percentile(xs, 95) == 0.5
    assert percentile([], 50) is None
    assert summary([0.001, 0.003]) == {"n": 2, "p50_ms": 1.0, "p95_ms": 3.0, "max_ms": 3.0}


def test_synthetic_corpus_is_deterministic_and_ingestable(tmp_path: Path) -> None:
    from rag.ingest import parse_file

    a = corpus.write_corpus(tmp_path / "a", 300, seed=3)
    b = corpus.write_corpus(tmp_path / "b", 300, seed=3)
    files_a = sorted(p.name for p in a.folder.iterdir())
    assert files_a == sorted(p.name for p in b.folder.iterdir())
    assert all((a.folder / n).read_bytes() == (b.folder / n).read_bytes() for n in files_a)
    # ingest keeps every generated paragraph: none is boilerplate, none repeats
    kept = sum(len(parse_file(n, (a.folder / n).read_bytes()).paragraphs) for n in files_a)
    assert kept == a.paragraphs == 300
    qs = corpus.questions(a.facts, 10, seed=3)
    assert len(qs) == 10 and all(q.endswith("?") for q in qs)
    assert qs == corpus.questions(b.facts, 10, seed=3)


@pytest.mark.slow
@pytest.mark.chroma_server
@pytest.mark.timeout(1500)
def test_rag_bench_quick_writes_a_complete_report(tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "rag.cli", "bench", "--quick", "--out", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1400,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    [run] = list(tmp_path.iterdir())
    results = json.loads((run / "bench.json").read_text("utf-8"))
    table = (run / "bench.md").read_text("utf-8")

    assert "failed" not in results, results["failed"]
    assert results["meta"]["quick"] is True and results["meta"]["sizes"] == [1000]
    seeds, synth = results["ingest"]["seeds"], results["ingest"]["1000"]
    assert seeds["paragraphs"] > 0 and seeds["embedded"] == seeds["paragraphs"]
    assert synth["paragraphs"] == 1000 and synth["paragraphs_per_s"] > 0
    # unchanged sources are never embedded again, in-process or after a restart
    assert seeds["reingest_embedded"] == synth["reingest_embedded"] == 0
    assert results["restart"]["first_embedded"] > 0 and results["restart"]["second_embedded"] == 0

    for where in ("embedded", "server"):
        hybrid = results["retrieval"][where]["1000"]["hybrid"]
        assert hybrid["n"] > 0 and 0 < hybrid["p50_ms"] <= hybrid["p95_ms"]
        assert results["baseline"]["retrieval"][where]["1000"]["hybrid"]["n"] == hybrid["n"]
    for key in ("api_ask", "api_first_token", "ask", "first_token"):
        assert results["answer"][key]["n"] > 0, key
    for key in ("ask", "first_token"):
        assert results["baseline"]["answer"][key]["n"] > 0, key
    assert results["baseline"]["ingest"]["seeds"]["paragraphs_per_s"] > 0

    assert [r["clients"] for r in results["load"]] == [1, 4, 16, 64]
    for level in results["load"]:
        assert level["requests"] >= level["clients"]
        assert level["errors"] == 0, level  # only 200s and explicit 429s
        assert level["ok"] + level["rejected_429"] == level["requests"]
    crowded = results["load"][-1]
    assert crowded["rejected_429"] > 0 and "(none)" not in crowded["retry_after"]

    serve = results["serve"]
    assert serve["ready_s"] > 0 and serve["rss_idle_bytes"] > 0
    assert results["serve_sizes"]["1000"]["rss_bytes"] > 0

    assert {t["figure"] for t in results["targets"]} == {t["figure"] for t in targets(results)}
    assert all(t["measured"] is not None for t in results["targets"]), results["targets"]
    assert table == markdown(results)
    assert "ingest 1000" in table and "| clients |" in table and "| target |" in table
