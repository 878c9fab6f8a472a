"""The BM25 index on disk (``rag/bm25.py``): what is saved is what is searched after a load,
windows of one paragraph stay one paragraph, and a damaged folder is refused, never half read."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.bm25 import Bm25, Bm25Builder

RECORDS = [
    ("p1:0", "The ferry to Tillamook leaves at dawn on Mondays.", "p1", "ferry.txt", 0),
    ("p2:0", "Storms closed the harbour for three days in March.", "p2", "harbour.txt", 0),
    ("p2:1", "The harbour master counted forty boats at anchor.", "p2", "harbour.txt", 0),
    ("p3:0", "A new lighthouse keeper arrived from Tillamook.", "p3", "light.txt", 1),
]


def _built() -> Bm25:
    builder = Bm25Builder()
    ids = [r[0] for r in RECORDS]
    texts = [r[1] for r in RECORDS]
    metas = [
        {
            "paragraph_id": pid,
            "source": source,
            "title": source.removesuffix(".txt").title(),
            "index": index,
            "start": 10 * n,
            "end": 10 * n + len(text),
            "hash": f"h{pid}",
            # windows of one paragraph carry the whole paragraph's text
            **({"paragraph_text": RECORDS[1][1] + " " + RECORDS[2][1]} if pid == "p2" else {}),
        }
        for n, (_, text, pid, source, index) in enumerate(RECORDS)
    ]
    builder.add(ids, texts, metas)
    built = builder.build()
    assert built is not None
    return built


def test_a_saved_index_searches_exactly_as_the_built_one(tmp_path: Path) -> None:
    built = _built()
    built.save(tmp_path)
    loaded = Bm25.load(tmp_path)
    for question in ("ferry Tillamook", "harbour boats", "lighthouse keeper", "nothing here"):
        assert loaded.search(question, 3) == built.search(question, 3), question
    assert loaded.node_ids == built.node_ids
    assert loaded.paragraph_of("p2:1") == built.paragraph_of("p2:1")
    assert loaded.paragraph_of("p2:0") is loaded.paragraph_of("p2:1")  # one paragraph, shared
    assert loaded.paragraph_of("missing:0") is None


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: (d / "index.json").write_text("{", encoding="utf-8"),
        lambda d: (d / "indptr.npy").unlink(),
        lambda d: (d / "index.json").write_text('{"format": "bm25-v0"}', encoding="utf-8"),
        lambda d: (d / "data.npy").write_bytes(b"not numpy"),
    ],
    ids=["truncated json", "missing matrix part", "other format", "garbage matrix"],
)
def test_a_damaged_folder_is_refused(tmp_path: Path, damage) -> None:
    _built().save(tmp_path)
    damage(tmp_path)
    with pytest.raises(ValueError):
        Bm25.load(tmp_path)
