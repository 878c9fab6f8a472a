"""Fitting how answers state their facts: recorded drafts are checked again under each setting,
with no model call."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.fit_answer import answered, main, score
from rag.cite import AnswerStyle

SOURCE = (
    "The orchestra toured Europe in the spring, and its last concert was given in Vienna, "
    "where the composer had lived."
)


def record(draft: str, *, abstained: bool = False, with_draft: bool = True) -> dict:
    rec = {
        "question": "Where was the orchestra's last concert given?",
        "resolved_question": "Where was the orchestra's last concert given?",
        "gold_answers": [["Vienna"]],
        "abstained": abstained,
        "error": None,
        "evidence": [
            {"text": SOURCE, "source": "a.txt", "paragraph": 0, "start": 0, "end": len(SOURCE)}
        ],
    }
    if with_draft:
        rec["draft"] = draft
    return rec


def write(tmp_path: Path, recs: list[dict]) -> Path:
    (tmp_path / "results.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in recs), encoding="utf-8"
    )
    return tmp_path


def test_a_draft_that_leaves_the_answer_out_scores_only_when_its_fact_replaces_it(
    tmp_path: Path,
) -> None:
    draft = "The orchestra toured Europe in the spring [1]."
    run = write(tmp_path, [record(draft), record("", abstained=True)])
    recs, n_gold = answered(run / "results.jsonl")
    assert (len(recs), n_gold) == (1, 2)  # an abstention counts as a miss
    assert score(recs, n_gold, AnswerStyle(30, 0.0))[0] == 0.0
    recall, median = score(recs, n_gold, AnswerStyle(30, 0.7))
    assert recall == 0.5 and median == len(SOURCE.split())


def test_the_grid_is_printed_with_the_chosen_setting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = write(tmp_path, [record("The orchestra toured Europe in the spring [1].")])
    assert main([str(run)]) == 0
    out = capsys.readouterr().out
    assert "fact_words  min_coverage  recall  median_words" in out
    # The draft says none of what its source's clause about the question adds (Vienna): any
    # bound above 0 replaces it, and the lowest such one is chosen.
    assert "chosen: fact_words=22 min_coverage=0.3 (recall 1.000" in out


def test_a_run_without_drafts_is_refused(tmp_path: Path) -> None:
    run = write(tmp_path, [record("", with_draft=False)])
    with pytest.raises(SystemExit, match="recorded no drafts"):
        answered(run / "results.jsonl")
