"""Reading gold files and converting SQuAD v2.0 into gold items plus a sources folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.gold import Evidence, GoldError, load_gold, load_squad
from rag.types import Turn

SQUAD_FIXTURE = Path(__file__).resolve().parents[1] / "data" / "squad_small.json"


def _write(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


GOOD = json.dumps(
    {
        "id": "q01",
        "type": "followup",
        "question": "And how long is it?",
        "answers": [["twenty-five", "25"]],
        "evidence": [{"source": "001.txt", "quote": "up to twenty-five years"}],
        "history": [
            {"role": "user", "content": "What is she charged with?"},
            {"role": "assistant", "content": "Rebellion [1]."},
        ],
    }
)


def test_a_gold_line_becomes_an_item(tmp_path: Path) -> None:
    unanswerable = json.dumps(
        {"id": "q02", "type": "unanswerable", "question": "Who won?", "answers": []}
    )
    items = load_gold(_write(tmp_path / "g.jsonl", GOOD, "", unanswerable))
    assert [i.id for i in items] == ["q01", "q02"]
    first = items[0]
    assert first.answers == [["twenty-five", "25"]]
    assert first.evidence == [Evidence("001.txt", "up to twenty-five years")]
    assert first.history == [
        Turn("user", "What is she charged with?"),
        Turn("assistant", "Rebellion [1]."),
    ]
    # Optional fields default: no evidence, no history; no answers means abstain.
    assert items[1].evidence == [] and items[1].history == [] and not items[1].answerable


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ('{"id": "q9", "question": "x", "answers": [["a"]]', "invalid JSON"),
        ('{"id": "q9", "question": "x"}', "missing 'answers'"),
        ('{"id": "q9", "question": "", "answers": []}', "'question'"),
        ('{"id": "q9", "question": "x", "answers": [[]]}', "answers[0]"),
        ('{"id": "q9", "question": "x", "answers": [], "evidence": [{"source": "a"}]}', "quote"),
        ('{"id": "q9", "question": "x", "answers": [], "history": [{"role": "bot"}]}', "role"),
        ('["not", "an", "object"]', "JSON object"),
    ],
)
def test_a_malformed_line_is_reported_with_its_line_number(
    tmp_path: Path, bad_line: str, message: str
) -> None:
    path = _write(tmp_path / "g.jsonl", GOOD, "", bad_line)
    with pytest.raises(GoldError) as exc:
        load_gold(path)
    assert f"{path}:3:" in str(exc.value)
    assert message in str(exc.value)


def test_a_duplicate_id_names_both_lines(tmp_path: Path) -> None:
    path = _write(tmp_path / "g.jsonl", GOOD, GOOD)
    with pytest.raises(GoldError, match=r"g\.jsonl:2: duplicate id 'q01' \(first on line 1\)"):
        load_gold(path)


def test_a_missing_or_empty_gold_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(GoldError, match="no such gold file"):
        load_gold(tmp_path / "nope.jsonl")
    with pytest.raises(GoldError, match="no gold items"):
        load_gold(_write(tmp_path / "empty.jsonl", "", "# only a comment"))


# --- SQuAD -------------------------------------------------------------------------------------


def _tiny_squad(tmp_path: Path) -> Path:
    data = {
        "version": "v2.0",
        "data": [
            {
                "title": "Harbour_Light",
                "paragraphs": [
                    {
                        "context": "The light was built in 1871.",
                        "qas": [
                            {
                                "id": "s1",
                                "question": "When was it built?",
                                "answers": [
                                    {"text": "1871", "answer_start": 23},
                                    {"text": "1871", "answer_start": 23},
                                    {"text": "in 1871", "answer_start": 20},
                                ],
                                "is_impossible": False,
                            },
                            {
                                "id": "s2",
                                "question": "Who designed it?",
                                "answers": [],
                                "plausible_answers": [{"text": "1871", "answer_start": 23}],
                                "is_impossible": True,
                            },
                        ],
                    },
                    {"context": "It is white.", "qas": []},
                ],
            },
            {
                "title": "Second",
                "paragraphs": [
                    {
                        "context": "Other text.",
                        "qas": [
                            {
                                "id": "s3",
                                "question": "What?",
                                "answers": [{"text": "Other", "answer_start": 0}],
                                "is_impossible": False,
                            }
                        ],
                    }
                ],
            },
        ],
    }
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_squad_articles_become_source_files_and_questions_gold_items(tmp_path: Path) -> None:
    items, folder = load_squad(_tiny_squad(tmp_path), out_dir=tmp_path / "src")
    assert sorted(p.name for p in folder.iterdir()) == ["01_harbour-light.txt", "02_second.txt"]
    text = (folder / "01_harbour-light.txt").read_text(encoding="utf-8")
    assert text == "Harbour Light\n\nThe light was built in 1871.\n\nIt is white.\n"

    answerable, impossible, other = items
    assert answerable.type == "factoid"
    assert answerable.answers == [["1871", "in 1871"]]  # distinct aliases, one fact
    # The whole context is the quote, so any paragraph overlapping it counts as evidence.
    assert answerable.evidence == [Evidence("01_harbour-light.txt", "The light was built in 1871.")]
    assert impossible.type == "unanswerable"
    assert impossible.answers == [] and impossible.evidence == []
    assert other.evidence[0].source == "02_second.txt"


def test_squad_limit_and_articles_select_questions_and_the_files_they_need(tmp_path: Path) -> None:
    path = _tiny_squad(tmp_path)
    items, folder = load_squad(path, limit=2, out_dir=tmp_path / "src")
    assert [i.id for i in items] == ["s1", "s2"]
    assert [p.name for p in folder.iterdir()] == ["01_harbour-light.txt"]
    items, _ = load_squad(path, articles=1, out_dir=tmp_path / "src2")
    assert [i.id for i in items] == ["s1", "s2"]


def test_questions_of_articles_left_out_of_the_haystack_are_unanswerable(tmp_path: Path) -> None:
    """Asked of sources that never cover their article, a question has no answer there."""
    path = _tiny_squad(tmp_path)
    items, folder = load_squad(path, out_dir=tmp_path / "src", haystack_articles={2})
    assert [p.name for p in folder.iterdir()] == ["02_second.txt"]
    by_id = {i.id: i for i in items}
    assert by_id["s1"].type == by_id["s2"].type == "not_in_sources"
    assert not by_id["s1"].answerable and by_id["s1"].evidence == []
    assert by_id["s3"].type == "factoid" and by_id["s3"].answerable


def test_the_shared_squad_fixture_loads(tmp_path: Path) -> None:
    if not SQUAD_FIXTURE.is_file():
        pytest.skip("tests/data/squad_small.json not present")
    items, folder = load_squad(SQUAD_FIXTURE, out_dir=tmp_path / "src")
    assert items and {i.type for i in items} <= {"factoid", "unanswerable"}
    texts = {p.name: p.read_text(encoding="utf-8") for p in folder.iterdir()}
    for item in items:
        for ev in item.evidence:
            assert ev.quote in texts[ev.source]  # every quote lies verbatim in its file


def test_a_file_that_is_not_squad_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"questions": []}', encoding="utf-8")
    with pytest.raises(GoldError, match="not SQuAD JSON"):
        load_squad(path, out_dir=tmp_path / "src")
