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


def test_irregular_forms_and_the_nouns_made_from_them_match() -> None:
    # A suffix-stripping stemmer leaves "deaths" and "died", "sold" and "sale" apart.
    assert content_stems("deaths") == content_stems("died") == content_stems("dead")
    assert content_stems("sold") == content_stems("sale") == content_stems("sells")
    assert content_stems("The bridge was built in 1958") == content_stems("the bridge build 1958")
    # Forms that are other common words too stay themselves: "left" is also a side.
    assert content_stems("left") != content_stems("leave")
