"""The language-general rules the selector uses as one signal: question words, the grammar of
numbers and dates of any era, and names. Tested on text far from the news articles in seeds/."""

from __future__ import annotations

import pytest

from rag.kinds import (
    asked_title,
    dates,
    holder,
    holds_kind,
    names,
    places,
    quantities,
    question_kind,
    title_owner,
)


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("Who painted the ceiling of the Sistine Chapel?", "person"),
        ("Which scientist showed that genes sit on chromosomes?", "person"),
        ("What is the name of the composer who wrote the Goldberg Variations?", "person"),
        ("Which president signed the Homestead Act?", "person"),
        ("When did the Peloponnesian War begin?", "date"),
        ("In what century was the printing press invented?", "date"),
        ("How many moons does Jupiter have?", "number"),
        ("How long is the Nile?", "number"),
        ("What percentage of the genome codes for proteins?", "number"),
        ("What is the population of the valley?", "number"),
        ("What was the length of the Roman wall?", "number"),
        ("Where was the Magna Carta sealed?", "place"),
        ("In which country is the Atacama Desert?", "place"),
        ("What does mitochondria produce?", "other"),
        ("Which number comes after seven?", "other"),  # an -er word that names no one
    ],
)
def test_the_kind_of_answer_is_read_off_the_question_words(question: str, kind: str) -> None:
    assert question_kind(question) == kind


def test_dates_of_any_era_are_dates() -> None:
    text = "Athens fell in 404 BC; the abbey was built in the 12th century and rebuilt in 1066."
    assert set(dates(text)) == {"404 BC", "12th century", "1066"}
    assert dates("The fashion of the 1920s returned on March 3.") == ["1920s", "March 3"]


def test_a_number_before_what_it_counts_is_a_count_not_a_year() -> None:
    text = "Some 2000 troops and 1500 horses crossed the Alps in 218 BC."
    assert quantities(text) == ["2000", "1500"]
    assert dates(text) == ["218 BC"]
    assert quantities("Hannibal crossed in 218 BC") == []
    # One thing named by its year is no count: "a 1969 landing", not 1969 landings.
    assert dates("Collins flew on a 1969 mission; the 1500 men waited.") == ["1969"]
    assert quantities("Collins flew on a 1969 mission; the 1500 men waited.") == ["1500"]


def test_a_name_is_not_a_demonym_and_a_capital_that_opens_a_sentence_is_no_name() -> None:
    assert [n for _, n in names("In 1910 Morgan showed that genes sit on chromosomes.")] == [
        "Morgan"
    ]
    assert names("Genes sit on chromosomes.") == []
    assert [n for _, n in names("Isaac Newton was born in Woolsthorpe.")] == [
        "Isaac Newton",
        "Woolsthorpe",
    ]


def test_a_place_is_a_name_after_a_locative_word() -> None:
    assert places("The treaty was signed at Utrecht by envoys of Spain.") == ["Utrecht"]


def test_a_sentence_holds_an_answer_only_when_it_adds_one_to_the_question() -> None:
    q = "When did Morgan show that genes sit on chromosomes?"
    assert holds_kind("In 1910 Morgan showed that genes sit on chromosomes.", "date", q)
    assert not holds_kind("Morgan showed that genes sit on chromosomes.", "date", q)
    q = "Which scientist showed that genes sit on chromosomes?"
    assert holds_kind("In 1910 Morgan showed that genes sit on chromosomes.", "person", q)
    assert not holds_kind("Genes sit on chromosomes, as was shown.", "person", q)
    assert holds_kind("Anything at all.", "other", q)


@pytest.mark.parametrize(
    ("question", "title"),
    [
        ("Who is the dean of the law school?", "dean"),
        ("Who was the university's head librarian?", "head librarian"),
        ("Who is the current team captain?", "team captain"),
        ("Who was elected in 1990?", None),  # a verb, not a title
        ("Who is responsible for the archive?", None),
        ("When was the library built?", None),
    ],
)
def test_a_who_is_question_names_the_title_it_asks_about(question: str, title: str | None) -> None:
    assert asked_title(question) == title


def test_whose_title_it_is_is_read_off_the_question() -> None:
    assert title_owner("Who is the dean of the law school?") == "the law school"
    assert title_owner("Who was the university's head librarian?") == "university"
    assert title_owner("Who is the team captain?") == ""


def test_the_holder_of_a_title_stands_in_apposition_with_it() -> None:
    q = "Who is the head librarian?"
    assert holder("head librarian", "Head Librarian Ruth Okafor opened the wing.", q) == (
        "Ruth Okafor"
    )
    assert holder("head librarian", "The wing opened, said head librarian Ruth Okafor.", q) == (
        "Ruth Okafor"
    )
    assert holder("head librarian", "Ruth Okafor, the college's head librarian, agreed.", q) == (
        "Ruth Okafor"
    )
    assert holder("head librarian", "The head librarian, Ruth Okafor, agreed.", q) == "Ruth Okafor"
    # The title with no name beside it, or beside a name the question gives, names no one.
    assert holder("head librarian", "The head librarian opened the new wing in May.", q) is None
    assert holder("dean", "Dean Ruth Okafor spoke.", "Who is Dean Ruth Okafor?") is None


def test_a_question_about_a_cost_wants_a_sum_of_money_not_any_number() -> None:
    q = "How much did the library's new reading room cost?"
    assert holds_kind("The reading room cost 2.4 million pounds to build.", "number", q)
    assert holds_kind("Its refit cost $300,000.", "number", q)
    assert not holds_kind("The reading room has 120 desks and four windows.", "number", q)
    # A change in a price is often a share, not a sum.
    change = "How much did the price of wheat rise after the drought?"
    assert holds_kind("Wheat rose by 40 percent within a year.", "number", change)
