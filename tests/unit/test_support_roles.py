"""A claim is supported only when its cited text says the same thing, including who did what to
whom: word overlap alone would pass a sentence with its two names swapped."""

from __future__ import annotations

from rag.cite import excerpt, pronoun_swap, reversal, supported
from rag.types import Paragraph, Sentence


def sentence(text: str) -> Sentence:
    p = Paragraph("p0", "a.txt", "T", 0, 0, len(text), text, "h")
    return Sentence(text, p, 0, len(text))


def test_two_names_swapped_around_the_verb_are_a_reversal() -> None:
    source = "The Normans conquered the Saxons in 1066."
    assert reversal("The Saxons conquered the Normans.", source)
    assert reversal("The Normans conquered the Saxons.", source) is None
    ok, why = supported("The Saxons conquered the Normans.", [sentence(source)])
    assert not ok and "Saxons" in why


def test_a_pronoun_changed_between_the_sources_own_words_changes_whose_it_is() -> None:
    # Pronouns are stopwords, so every content word of the claim is in its source.
    source = "The minister was accused of joining his failed attempt to seize the palace."
    claim = "The minister was accused of joining her failed attempt to seize the palace."
    ok, why = supported(claim, [sentence(source)])
    assert not ok and "'his'" in why
    assert pronoun_swap("He joined his failed attempt.", source) is None
    # A pronoun where the source has a name or another word is not a swap of pronouns.
    assert pronoun_swap("Curie won her prize.", "Curie won the prize.") is None


def test_a_phrase_the_claim_adds_to_its_source_is_not_supported() -> None:
    # Most of its words are the source's, but "in a remote location" is the draft's own.
    source = "The city council said on Friday that the former minister is being granted asylum."
    ok, why = supported(
        "The city council said on Friday that the former minister is being granted asylum in a "
        "remote location.",
        [sentence(source)],
    )
    assert not ok and "remote location" in why
    # One word put for another is a paraphrase, not an addition.
    claim = "The city council said on Friday that the former minister is receiving asylum."
    assert supported(claim, [sentence(source)])[0]


def test_a_passive_source_names_its_doer_after_by() -> None:
    source = "Harold was defeated by William at Hastings."
    assert reversal("William defeated Harold.", source) is None
    assert reversal("Harold defeated William.", source)


def test_the_doer_of_a_nested_verb_counts_too() -> None:
    source = (
        "Venice rejected Genoa's offer as unfair, insisting that ceding the island to Pisa "
        "was a matter for the council and no business of Genoa's envoys."
    )
    assert reversal("Venice rejected Genoa's offer to cede the island to Pisa.", source)
    assert reversal("Venice rejected Genoa's offer.", source) is None


def test_an_apposition_between_name_and_verb_is_no_reversal() -> None:
    source = "Marie Curie, who was born in Warsaw, discovered polonium with Pierre Curie."
    assert reversal("Marie Curie discovered polonium.", source) is None


def test_a_long_evidence_sentence_is_stated_by_its_clause_that_answers() -> None:
    s = sentence(
        "The Normans (Norman: Nourmands; Latin: Normanni) were the people who in the 10th and "
        "11th centuries gave their name to Normandy, a region in France, which was later ruled "
        "by dukes descended from Rollo."
    )
    question = "In what century did the Normans give their name to Normandy?"
    # Within the limit the sentence is stated whole, less its asides in brackets; beyond it,
    # by the clause that answers.
    assert excerpt(s, "date", question, max_words=30).endswith("descended from Rollo.")
    short = excerpt(s, "date", question, max_words=22)
    assert "10th and 11th centuries" in short and "Latin" not in short
    assert len(short.split()) <= 25
    assert excerpt(sentence("Rollo ruled Normandy."), "person", "Who ruled?") == (
        "Rollo ruled Normandy."
    )


def test_an_aside_in_brackets_stays_when_it_holds_what_was_asked() -> None:
    s = sentence(
        "Although the bridge across the estuary (which was not finished until 1932) carried "
        "trains and later cars, its tolls were resented by the farmers of the valley for decades."
    )
    # A sentence longer than the limit (the default states this one whole).
    assert "1932" in excerpt(s, "date", "When was the bridge across the estuary finished?", 22)
    assert "1932" not in excerpt(s, "other", "What did the farmers resent?", 22)
