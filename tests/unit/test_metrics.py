"""The evaluation metrics, each checked against values computed by hand."""

from __future__ import annotations

import math
import statistics

import pytest

from eval import metrics as m
from eval.gold import Evidence

# --- normalisation -----------------------------------------------------------------------------


def test_normalize_gold_folds_case_accents_quotes_and_punctuation() -> None:
    assert m.normalize_gold("Betssy  Chávez’s “asylum”!") == "betssy chavez s asylum"
    assert m.normalize_gold("ANDRÉS Manuel López Obrador") == "andres manuel lopez obrador"
    assert m.normalize_gold("twenty-five\n\tyears (25%)") == "twenty five years 25"
    assert m.normalize_gold("  ") == ""


def test_squad_normalize_matches_the_official_script() -> None:
    # Punctuation is removed (not spaced), then the articles a/an/the go as whole words.
    assert m.squad_normalize("The  Eiffel-Tower!") == "eiffeltower"
    assert m.squad_normalize("An apple, a day") == "apple day"
    assert m.squad_normalize("theatre another") == "theatre another"  # not inside words
    assert m.squad_normalize("  A\tB  ") == "b"
    assert m.squad_normalize("") == ""


# --- facts -------------------------------------------------------------------------------------


def test_facts_are_found_as_whole_words_after_normalisation() -> None:
    answer = "Prosecutors seek 25 years for Chavez [1]."
    assert m.facts_found(answer, [["twenty-five", "25"], ["Chávez"], ["rebellion"]]) == [
        True,
        True,
        False,
    ]
    # "25" must not be found inside "1925" or "250".
    assert m.facts_found("In 1925 and 250 times", [["25"]]) == [False]


def test_fact_recall_is_found_facts_over_facts() -> None:
    facts = [["Hugo de Zela", "de Zela"], ["Lima"], ["press conference"]]
    assert m.fact_recall("De Zela spoke in Lima.", facts) == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        m.fact_recall("anything", [])


def test_item_correct_needs_every_fact_or_an_abstention_when_unanswerable() -> None:
    facts = [["Lima"], ["de Zela"]]
    assert m.item_correct("De Zela announced it in Lima.", facts, abstained=False)
    assert not m.item_correct("It was announced in Lima.", facts, abstained=False)
    assert not m.item_correct("De Zela, in Lima.", facts, abstained=True)
    assert m.item_correct("I could not find this.", [], abstained=True)
    assert not m.item_correct("It was Lima.", [], abstained=False)


# --- SQuAD exact match and F1 ------------------------------------------------------------------


def test_exact_match_takes_the_best_alias() -> None:
    assert m.exact_match("the Eiffel Tower.", ["Eiffel Tower", "tower"]) == 1.0
    assert m.exact_match("Eiffel", ["Eiffel Tower"]) == 0.0


def test_exact_match_with_no_gold_rewards_only_the_empty_prediction() -> None:
    assert m.exact_match("", []) == 1.0
    assert m.exact_match("Paris", []) == 0.0
    assert m.exact_match("", ["Paris"]) == 0.0


def test_token_f1_by_hand() -> None:
    # pred tokens [eiffel, tower, paris], gold [eiffel, tower]: P = 2/3, R = 1, F1 = 0.8.
    assert m.token_f1("The Eiffel Tower, Paris", ["Eiffel Tower"]) == pytest.approx(0.8)
    # Repeated tokens count at most as often as on both sides: pred [a1 a1 b], gold [a1 c]:
    # overlap 1, P = 1/3, R = 1/2, F1 = 2 * (1/6) / (5/6) = 0.4.
    assert m.token_f1("x x y", ["x z"]) == pytest.approx(0.4)
    # Max over aliases.
    assert m.token_f1("Paris", ["London", "Paris"]) == 1.0
    assert m.token_f1("Paris", ["London"]) == 0.0


def test_token_f1_empty_sides_follow_the_official_rule() -> None:
    assert m.token_f1("", []) == 1.0  # both empty
    assert m.token_f1("the", [""]) == 1.0  # an article alone normalises to nothing
    assert m.token_f1("", ["Paris"]) == 0.0
    assert m.token_f1("Paris", []) == 0.0


# --- support, citations ------------------------------------------------------------------------

FILE = (
    "Title\n\nFirst paragraph about Lima.\n\n"
    "Second paragraph. The quote starts here\n\nand ends here."
)
SOURCES = {"a.txt": FILE}


def _span(text: str) -> tuple[int, int]:
    start = FILE.index(text)
    return start, start + len(text)


def test_a_paragraph_containing_the_quote_supports() -> None:
    ev = [Evidence("a.txt", "about Lima")]
    start, end = _span("First paragraph about Lima.")
    assert m.supports("First paragraph about Lima.", "a.txt", start, end, ev, SOURCES)
    # Same text, other source: no.
    assert not m.supports("First paragraph about Lima.", "b.txt", start, end, ev, SOURCES)
    # No evidence (unanswerable): nothing supports.
    assert not m.supports("First paragraph about Lima.", "a.txt", start, end, [], SOURCES)


def test_a_quote_spanning_two_paragraphs_supports_both_by_span_overlap() -> None:
    ev = [Evidence("a.txt", "The quote starts here\n\nand ends here")]
    second = "Second paragraph. The quote starts here"
    third = "and ends here."
    first = "First paragraph about Lima."
    assert m.supports(second, "a.txt", *_span(second), ev, SOURCES)
    assert m.supports(third, "a.txt", *_span(third), ev, SOURCES)
    assert not m.supports(first, "a.txt", *_span(first), ev, SOURCES)


def test_a_bare_gold_file_name_matches_a_nested_source() -> None:
    ev = [Evidence("a.txt", "about Lima")]
    assert m.supports("about Lima", "news/a.txt", 0, 10, ev, {})


def test_citation_precision_and_recall() -> None:
    assert m.citation_precision([True, False, True, True]) == 0.75
    assert m.citation_precision([]) is None
    assert m.citation_recall([False, True]) == 1.0
    assert m.citation_recall([False]) == 0.0
    assert m.citation_recall([]) == 0.0


# --- retrieval ---------------------------------------------------------------------------------


def test_recall_and_mrr_at_k() -> None:
    ranked = [False, False, True, False, True]
    assert m.recall_at_k(ranked, 1) == 0.0
    assert m.recall_at_k(ranked, 3) == 1.0
    assert m.mrr_at_k(ranked, 10) == pytest.approx(1 / 3)
    assert m.mrr_at_k(ranked, 2) == 0.0
    assert m.mrr_at_k([], 10) == 0.0


def test_ndcg_by_hand() -> None:
    # Relevant at ranks 2 and 4: DCG = 1/log2(3) + 1/log2(5); ideal = 1/log2(2) + 1/log2(3).
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    idcg = 1 + 1 / math.log2(3)
    assert m.ndcg_at_k([False, True, False, True], 10) == pytest.approx(dcg / idcg)
    assert m.ndcg_at_k([True, True, False], 10) == 1.0
    assert m.ndcg_at_k([False, False], 10) == 0.0
    # Relevant only below k: nothing gained in the top k.
    assert m.ndcg_at_k([False, False, True], 2) == 0.0
    # With three relevant paragraphs known to exist, one at rank 1 is 1 / (1 + 1/log2 3 + 1/2).
    assert m.ndcg_at_k([True], 10, n_relevant=3) == pytest.approx(1 / (1 + 1 / math.log2(3) + 0.5))


# --- sentence support --------------------------------------------------------------------------

CITED = {
    1: "Foreign Minister Hugo de Zela announced the decision at a press conference in Lima.",
    2: "Prosecutors are seeking a prison sentence of up to twenty-five years for her.",
}


def test_sentences_keep_the_markers_written_after_the_full_stop() -> None:
    text = "De Zela announced it in Lima. [1] Prosecutors want 25 years [2]. Really?"
    assert m.split_sentences(text) == [
        "De Zela announced it in Lima. [1]",
        "Prosecutors want 25 years [2].",
        "Really?",
    ]
    assert m.citation_markers("a [2] b [1][2]") == [2, 1]


def test_a_sentence_echoing_its_cited_paragraph_is_supported() -> None:
    check = m.check_sentence("Hugo de Zela announced the decision in Lima [1].", [CITED[1]])
    assert check.supported
    assert check.coverage == 1.0


def test_a_name_or_number_missing_from_the_cited_text_makes_it_unsupported() -> None:
    check = m.check_sentence("The decision was announced by Dina Boluarte in Lima [1].", [CITED[1]])
    assert not check.supported
    assert check.missing_keys == ["dina", "boluarte"]
    # Digits do not match number words: a known weakness of the lexical check.
    assert not m.check_sentence("Prosecutors seek 25 years [2].", [CITED[2]]).supported


def test_low_content_word_coverage_is_unsupported() -> None:
    # Content words: asylum, granted, quickly, embassy, staff, decision -> 1 of 6 in CITED[1].
    check = m.check_sentence(
        "Asylum was granted quickly by embassy staff decision [1].", [CITED[1]]
    )
    assert check.coverage == pytest.approx(1 / 6)
    assert not check.supported


def test_a_sentence_without_citation_is_unsupported() -> None:
    assert m.sentence_support_rate("De Zela announced the decision.", CITED) == 0.0
    rate = m.sentence_support_rate(
        "Hugo de Zela announced the decision [1]. It was a surprise.", CITED
    )
    assert rate == 0.5
    assert m.sentence_support_rate("", CITED) is None


# --- statistics --------------------------------------------------------------------------------


def test_percentile_interpolates_like_numpy() -> None:
    values = [4.0, 1.0, 3.0, 2.0]
    assert m.percentile(values, 50) == 2.5
    assert m.percentile(values, 0) == 1.0
    assert m.percentile(values, 100) == 4.0
    assert m.percentile(values, 90) == pytest.approx(3.7)  # position 2.7 between 3 and 4
    assert m.percentile([], 50) is None


def test_bootstrap_ci_contains_the_mean_and_is_deterministic_by_seed() -> None:
    values = [1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0]
    lo, hi = m.bootstrap_ci(values, n=500, seed=3)
    assert lo <= statistics.fmean(values) <= hi
    assert 0.0 <= lo < hi <= 1.0
    assert m.bootstrap_ci(values, n=500, seed=3) == (lo, hi)
    assert m.bootstrap_ci([0.5], n=50) == (0.5, 0.5)
    with pytest.raises(ValueError):
        m.bootstrap_ci([])


def test_word_count_ignores_citation_markers() -> None:
    assert m.word_count("De Zela announced it [1][2]. In Lima [3].") == 6
    assert m.word_count("") == 0
