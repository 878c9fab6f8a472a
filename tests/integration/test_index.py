"""Ingest into embedded Chroma and search it: idempotent, replace-on-change, atomic on bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.errors import NotFoundError
from rag.index import paragraph_nodes
from rag.ingest import parse_file
from rag.pipeline import Pipeline

SEED_0 = "000_bab5d49e54810767.txt"
SEED_1 = "001_b162a8e02d0cef5d.txt"


def test_search_finds_the_sentence_paragraph_first_with_source_index_and_offsets(
    seeded_pipeline: Pipeline,
) -> None:
    _, hits = seeded_pipeline.retrieve("prison sentence sought for Chávez")
    top = hits[0].paragraph
    assert top.source == SEED_1
    assert "twenty-five years" in top.text
    text = seeded_pipeline.source_text(SEED_1)
    assert text[top.start : top.end] == top.text
    assert hits[0].dense_rank is not None and hits[0].lexical_rank is not None


def test_seeds_store_each_paragraph_once_without_boilerplate(seeded_pipeline: Pipeline) -> None:
    source, paragraphs = seeded_pipeline.get_source(SEED_1)
    texts = [p.text for p in paragraphs]
    assert source.paragraphs == len(paragraphs) == 7
    assert "Next" not in texts and "(José Jerí/X)" not in texts
    assert "Peru Has a New President" not in texts
    _, lead_repeated = seeded_pipeline.get_source(SEED_0)
    assert len(lead_repeated) == 12
    assert sum(p.text.startswith("Peru broke off diplomatic relations") for p in lead_repeated) == 1
    assert seeded_pipeline.store.count() == 19


def test_reingest_of_unchanged_files_changes_and_embeds_nothing(
    pipeline: Pipeline, sources: Path
) -> None:
    first = pipeline.ingest(sources)
    count = pipeline.store.count()
    again = pipeline.ingest(sources)
    assert len(first.added) == 2 and first.embedded == 19
    assert again.added == [] and again.updated == [] and len(again.unchanged) == 2
    assert again.embedded == 0 and pipeline.store.count() == count


def test_changed_file_replaces_its_paragraphs_and_reembeds_only_new_ones(
    pipeline: Pipeline, sources: Path
) -> None:
    pipeline.ingest(sources)
    f = sources / SEED_1
    text = f.read_text()
    f.write_text(
        text.replace("Dina Boluarte", "Dina Ercilia Boluarte").replace(
            "\nNext\n", "\nA new closing paragraph.\n\nNext\n", 1
        )
    )
    report = pipeline.ingest(sources)
    assert report.updated == [SEED_1]
    assert report.embedded == 2  # the edited paragraph and the new one
    _, paragraphs = pipeline.get_source(SEED_1)
    texts = [p.text for p in paragraphs]
    assert any("Dina Ercilia Boluarte" in t for t in texts)
    assert not any("of Dina Boluarte" in t for t in texts)
    assert texts[-1] == "A new closing paragraph."
    assert pipeline.store.count() == 20


def test_a_change_in_the_reading_rules_reindexes_a_file_whose_bytes_did_not_change(
    pipeline: Pipeline, sources: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A newer version that drops one more kind of boilerplate must not leave the old
    # paragraphs in place because the file itself is the same.
    import rag.ingest

    pipeline.ingest(sources)
    before = len(pipeline.get_source(SEED_1)[1])
    rules = rag.ingest.is_boilerplate
    monkeypatch.setattr(
        rag.ingest, "is_boilerplate", lambda t: rules(t) or t.startswith("Mexico rejected Peru")
    )
    report = pipeline.ingest(sources)
    assert report.updated == [SEED_1] and report.embedded == 0
    texts = [p.text for p in pipeline.get_source(SEED_1)[1]]
    assert len(texts) == before - 1 and not any(t.startswith("Mexico rejected Peru") for t in texts)


def test_a_bad_file_is_skipped_with_its_reason_and_the_good_ones_are_ingested(
    pipeline: Pipeline, sources: Path
) -> None:
    pipeline.ingest(sources)
    before = pipeline.store.count()
    (sources / "003_new.txt").write_text("New article\n\nSomething happened.")
    (sources / "004_latin1.txt").write_bytes("Caf\xe9 story\n\nIt was good.".encode("latin-1"))
    report = pipeline.ingest(sources)
    assert [(s.file, "UTF-8" in s.reason) for s in report.skipped] == [("004_latin1.txt", True)]
    assert report.added == ["003_new.txt"]
    assert pipeline.store.count() == before + 1
    assert "004_latin1.txt" not in {s.id for s in pipeline.list_sources()}


def test_prune_and_rm_remove_sources(pipeline: Pipeline, sources: Path) -> None:
    pipeline.ingest(sources)
    (sources / SEED_1).unlink()
    kept = pipeline.ingest(sources)
    assert kept.removed == [] and len(pipeline.list_sources()) == 2
    pruned = pipeline.ingest(sources, prune=True)
    assert pruned.removed == [SEED_1]
    assert [s.id for s in pipeline.list_sources()] == [SEED_0]
    pipeline.remove_source(SEED_0)
    assert pipeline.list_sources() == [] and pipeline.store.count() == 0
    with pytest.raises(NotFoundError):
        pipeline.remove_source(SEED_0)


def test_uploaded_file_is_ingested_idempotently(pipeline: Pipeline) -> None:
    data = b"Harbour news\n\nThe harbour reopened on Friday after repairs costing 3 million euros."
    assert pipeline.add_file("harbour.txt", data).added == ["harbour.txt"]
    assert pipeline.add_file("harbour.txt", data).unchanged == ["harbour.txt"]
    _, hits = pipeline.retrieve("How much did the harbour repairs cost?")
    assert hits[0].paragraph.source == "harbour.txt"


def test_a_paragraph_too_long_for_the_embedder_becomes_windows_keeping_its_id_and_offsets() -> None:
    sentence = "The committee met again to discuss the budget and the new harbour wall. "
    parsed = parse_file("long.txt", ("Long\n\n" + sentence * 60).encode())
    p = parsed.paragraphs[0]
    nodes = paragraph_nodes(p, max_words=60)
    assert len(nodes) > 1
    assert {n.metadata["paragraph_id"] for n in nodes} == {p.id}
    assert {(n.metadata["start"], n.metadata["end"]) for n in nodes} == {(p.start, p.end)}
    for n in nodes:
        assert parsed.text[n.metadata["window_start"] : n.metadata["window_end"]] == n.text


def test_long_paragraph_is_retrieved_as_one_paragraph(pipeline: Pipeline) -> None:
    filler = "The committee met again to discuss the budget and the new harbour wall. " * 50
    pipeline.add_file(
        "long.txt",
        ("Long\n\n" + filler + "Finally the mayor resigned over the lighthouse scandal.").encode(),
    )
    _, hits = pipeline.retrieve("Why did the mayor resign?")
    assert hits[0].paragraph.source == "long.txt"
    assert len([h for h in hits if h.paragraph.source == "long.txt"]) == 1
    assert "mayor resigned" in hits[0].paragraph.text


def test_many_small_files_are_embedded_in_a_few_large_calls(
    pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The embedder is called per group of files (~512 nodes), not per file: a batch sorted by
    length pads little, and one call per 3-paragraph file would be dozens of tiny batches."""
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(60):
        paras = [
            f"Report {i} paragraph {j} on the harbour works in district {i * 7 + j}."
            for j in range(3)
        ]
        (folder / f"note_{i:02d}.txt").write_text(f"Note {i}\n\n" + "\n\n".join(paras) + "\n")
    calls: list[int] = []
    texts = type(pipeline.embedder).texts

    def counting(self, batch: list[str], done=None) -> list[list[float]]:  # type: ignore[no-untyped-def]
        calls.append(len(batch))
        return texts(self, batch, done)

    monkeypatch.setattr(type(pipeline.embedder), "texts", counting)
    report = pipeline.ingest(folder)
    assert len(report.added) == 60 and report.embedded == sum(calls) == 180
    assert len(calls) == 1
    assert pipeline.store.count() == 180
    _, paragraphs = pipeline.get_source("note_10.txt")
    assert [p.text for p in paragraphs][-1].endswith("district 72.")


def test_curly_and_straight_apostrophes_find_the_same_paragraphs(seeded_pipeline: Pipeline) -> None:
    # The seeds mix them: 000 writes "Peru's", 001 writes "Peru’s".
    _, straight = seeded_pipeline.retrieve("What was Castillo's failed effort?")
    _, curly = seeded_pipeline.retrieve("What was Castillo’s failed effort?")
    assert [h.paragraph.id for h in straight[:3]] == [h.paragraph.id for h in curly[:3]]
    assert "Castillo’s failed effort" in straight[0].paragraph.text


def test_a_store_of_other_vectors_is_refused_with_the_settings_that_read_it(
    tmp_path: Path,
) -> None:
    from rag.config import Settings
    from rag.embed import INT8_NAME
    from rag.errors import RagError
    from rag.store import build_store

    int8 = {"embed_backend": "local", "embed_model": INT8_NAME}
    float_meta = {"embed_backend": "local", "embed_model": "all-MiniLM-L6-v2"}
    assert build_store(Settings(data_dir=tmp_path / "a"), float_meta).count() == 0  # torch
    with pytest.raises(RagError, match="RAG_EMBED__RUNTIME=onnx or torch"):
        build_store(Settings(data_dir=tmp_path / "a"), int8).count()

    # A folder of the first int8 graph's vectors: no setting reads them any more.
    old = {"embed_backend": "local", "embed_model": "all-MiniLM-L6-v2-int8"}
    assert build_store(Settings(data_dir=tmp_path / "b"), old).count() == 0
    with pytest.raises(RagError, match="ingest the sources again into another data folder"):
        build_store(Settings(data_dir=tmp_path / "b"), int8).count()


def _count_writes(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    writes: list[str] = []
    store = type(pipeline.store)
    for name in ("upsert_nodes", "delete_nodes", "put_source", "put_sources"):
        real = getattr(store, name)

        def counted(self, *args, _name=name, _real=real, **kwargs):  # type: ignore[no-untyped-def]
            writes.append(_name)
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(store, name, counted)
    return writes


def test_files_new_to_the_store_are_written_in_two_calls_a_group(
    pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every Chroma write costs ~13 ms of CPU whatever its size, so sixty new files go in as one
    upsert of their nodes and one of their records, not two writes a file."""
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(60):
        (folder / f"note_{i:02d}.txt").write_text(
            f"Note {i}\n\nThe ferry of district {i} sails at {i % 12 + 1} o'clock.\n"
        )
    writes = _count_writes(pipeline, monkeypatch)
    report = pipeline.ingest(folder)
    assert len(report.added) == 60
    assert writes == ["upsert_nodes", "put_sources"]
    assert len(pipeline.list_sources()) == 60 and pipeline.store.count() == 60
    _, paragraphs = pipeline.get_source("note_07.txt")
    assert paragraphs[0].text == "The ferry of district 7 sails at 8 o'clock."


def test_a_source_left_half_written_is_redone_file_by_file_without_its_stale_nodes(
    pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A killed ingest can leave nodes of a source whose record was never written. That source
    is not new to the store: it is written alone, and nodes its file no longer has go."""
    folder = tmp_path / "docs"
    folder.mkdir()
    note = folder / "note.txt"
    note.write_text("Note\n\nThe old first paragraph.\n\nThe second paragraph stays.\n")
    other = folder / "other.txt"
    other.write_text("Other\n\nA paragraph of another file.\n")
    parsed = parse_file("note.txt", note.read_bytes())
    nodes = [n for p in parsed.paragraphs for n in paragraph_nodes(p, 100)]
    vectors = pipeline.embedder.texts([n.get_content() for n in nodes])
    for node, vec in zip(nodes, vectors, strict=True):
        node.embedding = vec
    pipeline.store.upsert_nodes(nodes)  # nodes stored, record never written
    note.write_text("Note\n\nThe new first paragraph.\n\nThe second paragraph stays.\n")

    writes = _count_writes(pipeline, monkeypatch)
    report = pipeline.ingest(folder)
    assert sorted(report.added) == ["note.txt", "other.txt"]
    # other.txt is new (one upsert, one record); note.txt is redone alone, stale node deleted
    # (put_source is put_sources of one)
    assert writes == [
        *["upsert_nodes", "put_sources"],
        *["upsert_nodes", "delete_nodes", "put_source", "put_sources"],
    ]
    _, paragraphs = pipeline.get_source("note.txt")
    assert [p.text for p in paragraphs] == [
        "The new first paragraph.",
        "The second paragraph stays.",
    ]
    assert pipeline.store.count() == 3
