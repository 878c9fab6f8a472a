"""Word-level matching shared by retrieval features, grounding and citation checks."""

from __future__ import annotations

from rag.text import content_stems


def test_an_abbreviated_month_matches_the_month() -> None:
    assert content_stems("On Sept. 9 the bridge opened") == content_stems(
        "On September 9 the bridge opened"
    )
    assert "novemb" in content_stems("Nov. 3") and "decemb" in content_stems("Dec 24")


def test_words_that_only_look_like_abbreviations_are_left_alone() -> None:
    # "may" is its own month and a verb; "mar" is a verb: neither is read as March.
    assert content_stems("storms mar the harvest") == ["storm", "mar", "harvest"]
