"""In-process timings of our pipeline: ingest rate, re-ingest, retrieval latency by stage."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.bench.stats import summary, timed

if TYPE_CHECKING:
    from rag.pipeline import Pipeline


def ingest(pipeline: Pipeline, folder: Path) -> dict[str, Any]:
    """First ingest (everything embedded), then the same folder again (nothing may be)."""
    seconds, report = timed(lambda: pipeline.ingest(folder))
    again_seconds, again = timed(lambda: pipeline.ingest(folder))
    return {
        "files": len(report.added) + len(report.updated) + len(report.unchanged),
        "paragraphs": report.paragraphs,
        "embedded": report.embedded,
        "seconds": round(seconds, 2),
        "paragraphs_per_s": round(report.paragraphs / seconds, 1) if seconds else None,
        "reingest_seconds": round(again_seconds, 2),
        "reingest_embedded": again.embedded,
    }


def bulk_load(pipeline: Pipeline, folder: Path, batch: int = 512) -> dict[str, Any]:
    """The state an ingest of ``folder`` leaves (same node ids, metadata, vectors and source
    records), written in large batches instead of file by file. Only for measuring retrieval,
    start-up and memory at sizes whose real ingest would take too long; the rate it reports is
    not the service's ingest rate."""
    from rag.index import paragraph_nodes
    from rag.store import StoredSource
    from rag.types import Source

    started = time.perf_counter()
    indexer, store = pipeline.indexer, pipeline.store
    files = indexer.parse_folder(folder)
    nodes = [n for f in files for p in f.paragraphs for n in paragraph_nodes(p, indexer.max_words)]
    for i in range(0, len(nodes), batch):
        chunk = nodes[i : i + batch]
        for node, vec in zip(
            chunk, pipeline.embedder.texts([n.get_content() for n in chunk]), strict=True
        ):
            node.embedding = vec
    store.upsert_nodes(nodes)
    for f in files:
        source = Source(f.source, f.title, len(f.paragraphs), f.hash, len(f.text))
        store.put_source(StoredSource(source=source, text=f.text, folder=str(folder.resolve())))
    pipeline.retriever.lexical.invalidate()
    seconds = time.perf_counter() - started
    paragraphs = sum(len(f.paragraphs) for f in files)
    return {
        "files": len(files),
        "paragraphs": paragraphs,
        "embedded": len(nodes),
        "seconds": round(seconds, 2),
        "bulk": True,
    }


def retrieval(
    pipeline: Pipeline, questions: list[str], warmup: list[str], repeat: int = 1
) -> dict[str, Any]:
    """p50/p95 of ``pipeline.retrieve`` (spelling correction, query embedding, dense + BM25,
    fusion): what a search request costs once the service is warm. The first call, which
    builds the lexical index, is timed as ``warmup_s``; then ``warmup`` (other questions) runs
    untimed, since the first inputs of each length pay one-off kernel set-up in torch; then each
    stage alone, to show where the time goes."""
    warm, _ = timed(lambda: pipeline.retrieve(warmup[0]))
    for q in warmup:
        pipeline.retrieve(q)
    total: list[float] = []
    for _ in range(repeat):
        for q in questions:
            total.append(timed(lambda q=q: pipeline.retrieve(q))[0])
    r = pipeline.retriever
    k = r.candidates
    stages: dict[str, list[float]] = {"correct": [], "embed": [], "dense": [], "lexical": []}
    for q in questions:
        stages["correct"].append(timed(lambda q=q: r.lexical.correct(q))[0])
        stages["embed"].append(timed(lambda q=q: r.embedder.model.get_query_embedding(q))[0])
        r.embedder.query(q)  # remembered: the dense stage below is the search alone
        stages["dense"].append(timed(lambda q=q: r.dense(q, k))[0])  # its vector is cached
        stages["lexical"].append(timed(lambda q=q: r.lexical.search(q, k))[0])
    return {
        "warmup_s": round(warm, 2),
        "hybrid": summary(total),
        "stages": {name: summary(v) for name, v in stages.items()},
    }


def answers(pipeline: Pipeline, questions: list[str]) -> dict[str, Any]:
    """In-process ``pipeline.ask`` (warm model), the like-for-like figure for the baseline."""
    for q in dict.fromkeys(questions):  # loads the model; warms each input shape once
        pipeline.ask(q)
    seconds = [timed(lambda q=q: pipeline.ask(q))[0] for q in questions]
    return summary(seconds)


def first_token(pipeline: Pipeline, questions: list[str]) -> dict[str, Any]:
    """In-process time to the first streamed answer text: a ``token`` event (text the citation
    check has kept) or the ``final`` answer. ``model_first_token`` is when the model wrote its
    first draft token (resolve + retrieve + ground + first token, from the answer's timings):
    what a stream of the raw draft would have shown first."""
    seconds: list[float] = []
    model: list[float] = []
    for q in questions:
        t0 = time.perf_counter()
        first: float | None = None
        for event in pipeline.ask_stream(q):  # runs to the end: the next question starts clean
            if first is None and event.kind in ("token", "final"):
                first = time.perf_counter() - t0
            if event.kind == "final" and event.answer is not None:
                t = event.answer.timings
                if "first_token" in t:
                    stages = ("resolve", "retrieve", "ground", "first_token")
                    model.append(sum(t.get(k, 0.0) for k in stages))
        if first is not None:
            seconds.append(first)
    return {**summary(seconds), "model_first_token": summary(model)}
