"""Candidate sentences for evidence: what part of a paragraph's text counts as a sentence."""

from __future__ import annotations

import pytest

from rag.features import candidates
from rag.types import Paragraph, Retrieved


def _paragraph(text: str, start: int = 120) -> Retrieved:
    p = Paragraph("p1", "wire.txt", "Harbour reopens", 0, start, start + len(text), text, "h")
    return Retrieved(paragraph=p, score=1.0)


@pytest.mark.parametrize(
    "dateline",
    ["OSLO, March 3, 2024 - ", "OSLO (AP) — ", "NEW YORK, March 3 (Reuters) - ", "BERGEN – "],
)
def test_a_dateline_says_where_the_story_was_filed_and_is_no_part_of_its_sentence(
    dateline: str,
) -> None:
    text = f"{dateline}The harbour reopened after the storm. Ferries ran again."
    first = candidates([_paragraph(text)])[0].sentence
    assert first.text == "The harbour reopened after the storm."
    assert text[first.start - 120 : first.end - 120] == first.text  # offsets stay true


@pytest.mark.parametrize(
    "text",
    [
        "NASA launched a probe - and it worked.",
        "The UN - a body of states - met in March.",
        "Oslo, the capital, reopened its harbour - at last.",
    ],
)
def test_a_sentence_without_a_dateline_is_kept_whole(text: str) -> None:
    assert candidates([_paragraph(text)])[0].sentence.text == text


def test_a_long_sentence_is_cut_into_clauses_but_not_inside_a_list() -> None:
    clauses = (
        "The harbour authority closed the northern pier for the whole of the long winter season "
        "after the storm had damaged its old wooden deck, and the ferry company moved all of its "
        "evening sailings to the old stone quay near the fish market for the months that followed."
    )
    listed = (
        "The crossing to the outer islands was cancelled on eleven days of the long and stormy "
        "winter season on the northern routes because of high winds, thick sea fog, "
        "and a strike by the crews of the two ferry companies that serve the islands all year."
    )
    assert len(candidates([_paragraph(clauses)])) == 2
    assert [c.sentence.text for c in candidates([_paragraph(listed)])] == [listed]


def test_a_footnote_mark_of_web_text_ends_the_sentence_it_follows() -> None:
    text = (
        "Trade grew after the colonies won independence in 1820.[12] The navy guarded the "
        "routes.[citation needed] Ships sailed weekly.[b] Few sank."
    )
    assert [c.sentence.text for c in candidates([_paragraph(text)])] == [
        "Trade grew after the colonies won independence in 1820.[12]",
        "The navy guarded the routes.[citation needed]",
        "Ships sailed weekly.[b]",
        "Few sank.",
    ]
