"""The BM25 side of retrieval (``rag/retrieve.py``: ``LexicalIndex``) on embedded Chroma with the
hash embedder: what it finds, when it rebuilds, what it returns for nothing, how windows of one
paragraph come back, that it ranks exactly as bm25s' own retriever does (llama-index's
``BM25Retriever``, which it replaced, was that retriever), and the start-up build in the
background."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from rag.config import Settings
from rag.pipeline import Pipeline
from rag.wiring import build_pipeline

NAME = "Quispetupa"  # in one paragraph only, and in no embedder's or stemmer's dictionary

ARTICLE = f"""Harbour works delayed again

The harbour authority said on Tuesday that the repairs to the eastern pier would take until
spring, after storms damaged the new breakwater.

Engineer Rosa {NAME} told the council that the foundations had to be inspected before any
further work, and that the cost would rise.

Fishermen asked the council to open the western quay while the eastern pier is closed.
"""


@pytest.fixture
def hashed(make_settings: Callable[..., Settings]) -> Pipeline:
    return build_pipeline(make_settings(embed={"backend": "hash"}))


def _write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_name_only_the_words_match_is_found_first(hashed: Pipeline, tmp_path: Path) -> None:
    folder = tmp_path / "src"
    _write(folder, "harbour.txt", ARTICLE)
    hashed.ingest(folder)
    hits = hashed.retriever.lexical.search(f"What did {NAME} say?", 30)
    assert hits and NAME in hits[0][0].text and hits[0][1] > 0
    assert all(score > 0 for _, score in hits)
    assert [h[1] for h in hits] == sorted((h[1] for h in hits), reverse=True)
    _, fused = hashed.retrieve(f"What did {NAME} say?")
    assert fused[0].lexical_rank == 1 and NAME in fused[0].paragraph.text


def test_no_known_word_and_an_empty_store_give_no_hits(hashed: Pipeline, tmp_path: Path) -> None:
    lexical = hashed.retriever.lexical
    assert lexical.search("harbour repairs", 30) == []  # nothing ingested yet
    _write(tmp_path / "src", "harbour.txt", ARTICLE)
    hashed.ingest(tmp_path / "src")
    assert lexical.search("zqxjv wvkrpt", 30) == []  # no word the sources use
    assert lexical.search("what was it that they did", 30) == []  # stopwords only
    assert lexical.search("", 30) == []
    assert lexical.search("harbour", 30)


def test_the_index_is_rebuilt_when_a_source_changes(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    folder = tmp_path / "src"
    path = _write(folder, "harbour.txt", ARTICLE)
    ours = build_pipeline(make_settings(embed={"backend": "hash"}))
    ours.ingest(folder)
    assert ours.retriever.lexical.search(NAME, 5)

    # This process changes the source: the next query waits for the rebuilt index.
    path.write_text(ARTICLE.replace(NAME, "Mamanicota"), encoding="utf-8")
    ours.ingest(folder)
    assert ours.retriever.lexical.search(NAME, 5) == []
    assert "Mamanicota" in ours.retriever.lexical.search("Mamanicota", 5)[0][0].text

    # Another pipeline (as another process would) adds a source: the background re-check
    # finds the new fingerprint and swaps in a rebuilt index.
    ours.retriever.lexical.recheck_seconds = 0.0
    other = build_pipeline(make_settings(embed={"backend": "hash"}))
    _write(folder, "quay.txt", "Quay reopened\n\nThe Zarapanda quay reopened on Friday.\n")
    other.ingest(folder)
    deadline = time.monotonic() + 30
    while not ours.retriever.lexical.search("Zarapanda", 5) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ours.retriever.lexical.search("Zarapanda", 5)[0][0].source == "quay.txt"


def test_windows_of_one_long_paragraph_come_back_as_that_paragraph(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    # 32 tokens -> windows of ~22 words: the long paragraph below is stored as several nodes.
    p = build_pipeline(make_settings(embed={"backend": "hash", "max_tokens": 32}))
    sentences = [f"The {NAME} report covers pier number {i} and its repairs." for i in range(12)]
    long_paragraph = " ".join(sentences)
    _write(tmp_path / "src", "long.txt", f"Pier report\n\n{long_paragraph}\n\nA short one.\n")
    p.ingest(tmp_path / "src")
    assert p.store.count() > 2

    hits = p.retriever.lexical.search(NAME, 30)
    assert len(hits) > 1 and len({h[0].id for h in hits}) == 1  # every window, one paragraph
    assert hits[0][0].text == long_paragraph  # the whole paragraph, not the window

    _, fused = p.retrieve(f"the {NAME} report")
    ids = [r.paragraph.id for r in fused]
    assert len(ids) == len(set(ids)) and fused[0].paragraph.text == long_paragraph
    assert fused[0].lexical_rank == 1


def test_rankings_are_bm25s_own(hashed: Pipeline, tmp_path: Path) -> None:
    """Same tokenisation and scores as ``bm25s.tokenize`` + ``BM25`` (what llama-index's
    BM25Retriever ran): the same scores in the same order; among equal scores, storage order
    (bm25s left that to numpy's partition)."""
    import bm25s
    import numpy as np
    import Stemmer
    from bm25s.tokenization import convert_tokenized_to_string_list

    from rag.bench import corpus

    made = corpus.write_corpus(tmp_path / "src", 400, seed=3)
    hashed.ingest(made.folder)
    lexical = hashed.retriever.lexical

    ids: list[str] = []
    texts: list[str] = []
    for page_ids, documents, _ in hashed.store.node_pages():
        ids += page_ids
        texts += documents
    stemmer = Stemmer.Stemmer("english")
    reference = bm25s.BM25()
    reference.index(
        bm25s.tokenize(texts, stopwords="english", stemmer=stemmer, show_progress=False),
        show_progress=False,
    )
    questions = [*corpus.questions(made.facts, 40, seed=5), "The the minister minister said"]
    for q in [*questions, "zqxjv", "what was it"]:
        tokens = bm25s.tokenize(q, stemmer=stemmer, show_progress=False)
        _, top_scores = reference.retrieve(tokens, k=30, show_progress=False)
        got = lexical.search(q, 30)
        assert [s for _, s in got] == [float(s) for s in top_scores[0] if s > 0], q
        words = convert_tokenized_to_string_list(tokens)[0]
        scores = reference.get_scores(words) if words else np.zeros(len(ids))
        rows = sorted(np.flatnonzero(scores > 0), key=lambda r: (-scores[r], r))[:30]
        # A node id is "<paragraph id>:<window>".
        assert [p.id for p, _ in got] == [ids[r].rsplit(":", 1)[0] for r in rows], q


def test_a_background_build_makes_early_queries_wait_then_answers_them(
    hashed: Pipeline, tmp_path: Path
) -> None:
    _write(tmp_path / "src", "harbour.txt", ARTICLE)
    hashed.ingest(tmp_path / "src")
    lexical = hashed.retriever.lexical
    store = hashed.store
    real_pages = store.node_pages
    release = threading.Event()
    builds: list[int] = []

    def slow_pages(*args, **kwargs):  # the build stalls on its first page until released
        builds.append(1)
        assert release.wait(30)
        yield from real_pages(*args, **kwargs)

    store.node_pages = slow_pages  # type: ignore[method-assign]
    try:
        lexical.invalidate()
        builder = lexical.build_in_background()
        results: list[list] = []
        query = threading.Thread(target=lambda: results.append(lexical.search(NAME, 5)))
        query.start()
        query.join(0.5)
        assert query.is_alive() and results == []  # waiting for the build, not half an index
        release.set()
        builder.join(30)
        query.join(30)
        assert not builder.is_alive() and not query.is_alive()
        assert results and NAME in results[0][0][0].text
        assert builds == [1]  # built once, by the background thread
    finally:
        del store.node_pages


def test_a_failed_background_build_is_left_to_the_first_query(
    hashed: Pipeline, tmp_path: Path
) -> None:
    _write(tmp_path / "src", "harbour.txt", ARTICLE)
    hashed.ingest(tmp_path / "src")
    store = hashed.store

    def down(*args, **kwargs):
        raise RuntimeError("store down")
        yield  # a generator, like the real one

    store.node_pages = down  # type: ignore[method-assign]
    try:
        hashed.retriever.lexical.build_in_background().join(30)
    finally:
        del store.node_pages
    assert NAME in hashed.retriever.lexical.search(NAME, 5)[0][0].text


def _count_builds(pipeline: Pipeline) -> list[int]:
    """Every read of the store's nodes (what a build does) is recorded."""
    store = pipeline.store
    real_pages = store.node_pages
    builds: list[int] = []

    def counted(*args, **kwargs):
        builds.append(1)
        yield from real_pages(*args, **kwargs)

    store.node_pages = counted  # type: ignore[method-assign]
    return builds


def test_a_restart_loads_the_saved_index_instead_of_rebuilding_it(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings(embed={"backend": "hash"})
    first = build_pipeline(settings)
    _write(tmp_path / "src", "harbour.txt", ARTICLE)
    first.ingest(tmp_path / "src")
    question = f"What did {NAME} say about the pier foundations?"
    before = first.retriever.lexical.search(question, 5)
    assert first.retriever.lexical.last_build.startswith("built")

    again = build_pipeline(settings)  # a restart: same data folder, nothing changed
    builds = _count_builds(again)
    after = again.retriever.lexical.search(question, 5)
    assert builds == [] and again.retriever.lexical.last_build.startswith("loaded")
    assert [(p, round(s, 5)) for p, s in after] == [(p, round(s, 5)) for p, s in before]
    assert again.retriever.lexical.correct("Quispetupaa") == NAME  # the words came back too
    assert [r.paragraph.id for r in again.retrieve(question)[1]] == [
        r.paragraph.id for r in first.retrieve(question)[1]
    ]

    # A copy of the data folder elsewhere (a backup restored, a benchmark's copy) loads it too.
    import shutil

    copied = shutil.copytree(settings.data_dir, tmp_path / "copied-data")
    moved = build_pipeline(settings.model_copy(update={"data_dir": copied}))
    assert moved.retriever.lexical.search(question, 5)
    assert moved.retriever.lexical.last_build.startswith("loaded")

    # A changed source: the saved index is for other sources, so it is built anew.
    _write(tmp_path / "src", "quay.txt", "Quay reopened\n\nThe Zarapanda quay reopened.\n")
    again.ingest(tmp_path / "src")
    assert again.retriever.lexical.search("Zarapanda", 5) and builds == [1]


def test_an_unreadable_saved_index_is_rebuilt(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings(embed={"backend": "hash"})
    first = build_pipeline(settings)
    _write(tmp_path / "src", "harbour.txt", ARTICLE)
    first.ingest(tmp_path / "src")
    assert first.retriever.lexical.search(NAME, 5)
    cache = first.retriever.lexical.cache
    assert cache is not None
    (saved,) = [p for p in cache.folder.iterdir() if not p.name.startswith(".")]
    (saved / "index.json").write_text('{"format": "bm25-v1", "stems": [', encoding="utf-8")

    again = build_pipeline(settings)
    builds = _count_builds(again)
    assert NAME in again.retriever.lexical.search(NAME, 5)[0][0].text
    assert builds == [1] and again.retriever.lexical.last_build.startswith("built")
    # and the rebuilt one was saved in its place: the next start loads it
    third = build_pipeline(settings)
    assert third.retriever.lexical.search(NAME, 5)
    assert third.retriever.lexical.last_build.startswith("loaded")


def test_readiness_waits_for_the_start_up_load(hashed: Pipeline, tmp_path: Path) -> None:
    from rag.errors import WarmingUp

    _write(tmp_path / "src", "harbour.txt", ARTICLE)
    hashed.ingest(tmp_path / "src")
    lexical = hashed.retriever.lexical
    store = hashed.store
    real_fingerprint = store.fingerprint
    release = threading.Event()

    def slow_fingerprint() -> str:
        assert release.wait(30)
        return real_fingerprint()

    store.fingerprint = slow_fingerprint  # type: ignore[method-assign]
    try:
        lexical.invalidate()
        builder = lexical.build_in_background()
        with pytest.raises(WarmingUp, match="lexical index"):
            lexical.check_ready()
        release.set()
        builder.join(30)
    finally:
        del store.fingerprint
    lexical.check_ready()  # ready once loaded
    assert "lexical index" in hashed.readiness()
