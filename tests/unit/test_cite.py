"""The citation check's pure logic on hand-made evidence: facts stated from source sentences,
drafts that leave the answer out, the settled part of an answer a stream may show, and answers
that must not repeat themselves."""

from __future__ import annotations

import pytest

from rag.cite import (
    AnswerStyle,
    DraftCheck,
    check_draft,
    coverage,
    draft_read,
    excerpt,
    render,
)
from rag.types import Evidence, Paragraph, Retrieved, Sentence

TEXT = (
    "Prosecutors are seeking 34 years in prison for Pedro Castillo over the failed "
    "self-coup. Castillo denies the charges."
)


def sentence(text: str, para: Paragraph | None = None) -> Sentence:
    p = para or Paragraph("p1", "a.txt", "A", 0, 0, len(text), text, "h")
    start = p.text.find(text)
    return Sentence(text, p, p.start + max(start, 0), p.start + max(start, 0) + len(text))


def evidence(*texts: str, kind: str = "number") -> Evidence:
    paragraph = Paragraph("p1", "a.txt", "A", 0, 0, len(" ".join(texts)), " ".join(texts), "h")
    sentences = [sentence(t, paragraph) for t in texts]
    return Evidence("q", kind, sentences, [Retrieved(paragraph, 1.0)], answerable=True)


@pytest.mark.parametrize(
    ("source", "stated"),
    [
        ("Castillo denies the charges.", "Castillo denies the charges."),
        ("“We will respond.”", "We will respond."),  # a pair around it all: the outer marks go
        ("“We will respond,” Jerí said.", "‘We will respond,’ Jerí said."),
        # A clause cut from mid-sentence, its quotation opened in the part left out.
        ("the administration will respond,” he said.", "The administration will respond, he said."),
        ('He said: "We will respond.', "He said: We will respond."),  # closed in another sentence
        ("the administration was “unfriendly”.", "The administration was ‘unfriendly’."),
    ],
    ids=["plain", "wrapped", "inner-pair", "stray-closing", "stray-opening", "clause"],
)
def test_a_stated_fact_nests_marks_drops_strays_and_starts_a_sentence(
    source: str, stated: str
) -> None:
    assert excerpt(sentence(source), "other", "q") == stated


def test_settled_is_empty_until_a_claim_states_the_kind_asked_for() -> None:
    ev = evidence(
        "Prosecutors are seeking 34 years in prison for Pedro Castillo over the failed self-coup.",
        "Castillo denies the charges.",
    )
    question = "What sentence does Castillo face?"
    check = DraftCheck(ev, question)
    check.add("Castillo denies the charges [2].")
    assert check.settled() == []  # a quote stating the years may still go first
    check.add("Prosecutors are seeking 34 years in prison for Castillo [1].")
    settled = check.settled()
    assert [c.text for c in settled] == [c.text for c in check.claims]
    shown, _ = render(settled, ev.retrieved)
    claims, _ = check.finish()
    final, _ = render(claims, ev.retrieved)
    assert final.startswith(shown)


def test_draft_check_one_sentence_at_a_time_equals_the_whole_draft() -> None:
    ev = evidence(
        "Prosecutors are seeking 34 years in prison for Pedro Castillo over the failed self-coup.",
        "Castillo denies the charges.",
    )
    question = "What sentence does Castillo face?"
    draft = "Castillo faces 34 years [1]. The moon is made of cheese [2]. Extra sentence [1]."
    check = DraftCheck(ev, question)
    for s in (
        "Castillo faces 34 years [1].",
        "The moon is made of cheese [2].",
        "Extra sentence [1].",
    ):
        check.add(s)
    one_by_one = render(check.finish()[0], ev.retrieved)[0]
    assert one_by_one == render(check_draft(draft, ev, question)[0], ev.retrieved)[0]


def test_a_sentence_the_answer_already_says_is_not_said_again() -> None:
    # Reported: "What sentence does Castillo face?" gave the quoted sentence [1], then the same
    # sentence unquoted with [1] again: the first draft sentence was replaced by the quote, the
    # second copied the source and passed the check.
    source = (
        "Prosecutors are seeking 34 years in prison for Pedro Castillo, who has been detained "
        "since he was arrested."
    )
    ev = evidence(source)
    question = "What sentence does Castillo face?"
    draft = f"Castillo was pardoned by the president in May [1]. {source[:-1]} [1]."
    claims, decisions = check_draft(draft, ev, question)
    text, _ = render(claims, ev.retrieved)
    assert text.count("34 years in prison") == 1, text
    assert [d.action for d in decisions] == ["replaced", "dropped"]
    assert "repeats" in decisions[-1].reason


CONCERT = (
    "The orchestra toured Europe in the spring, and its last concert was given in Vienna, "
    "where the composer had lived."
)
WHERE = "Where was the orchestra's last concert given?"


def test_coverage_is_the_share_of_what_the_source_adds_to_the_question() -> None:
    # Of the source's clauses, the one about what is asked ("its last concert was given in
    # Vienna") adds one word to the question: Vienna. The tour and the composer are asides.
    assert coverage("The orchestra toured Europe in the spring.", [CONCERT], WHERE) == 0.0
    assert coverage("The last concert was in Vienna.", [CONCERT], WHERE) == 1.0
    assert coverage(CONCERT, [CONCERT], WHERE) == 1.0
    # A source of one clause: every content word it adds counts (Vienna, city, composer).
    plain = "The orchestra's last concert was given in Vienna, the composer's city."
    assert coverage("It was given in Vienna.", [plain], WHERE) == 1 / 3
    assert coverage("anything", ["The orchestra's last concert."], WHERE) == 1.0  # adds nothing


def test_quoted_speech_and_who_said_it_are_separate_clauses() -> None:
    # Asked who the speaker is, what was said is the aside: a draft that repeats only the
    # quote says nothing about her.
    said = '"The bridge will reopen in May," harbour engineer Ana Ruiz told the council.'
    who = "Who is Ana Ruiz?"
    assert coverage("The bridge will reopen in May.", [said], who) == 0.0
    assert coverage("Ana Ruiz, the harbour engineer, told the council.", [said], who) == 1.0
    # Asked what was said, the attribution is the aside.
    assert coverage("The bridge will reopen in May.", [said], "When will the bridge reopen?") == 1.0
    # A quoted phrase inside a clause is no speech: "as 'unsafe,' adding that ..." stays one.
    phrase = "The council described the bridge as 'unsafe,' adding that repairs would take a year."
    asked = "How did the council describe it?"
    assert coverage("The council called it unsafe.", [phrase], asked) < 1.0


def test_a_supported_draft_that_leaves_the_answer_out_is_replaced_by_its_sources_fact() -> None:
    # Every word of the draft is in its source, so the support check passes it; it names a
    # place too, so the kind check does. What it leaves out is the answer.
    ev = evidence(CONCERT, kind="place")
    claims, decisions = check_draft("The orchestra toured Europe in the spring [1].", ev, WHERE)
    text, citations = render(claims, ev.retrieved)
    assert "Vienna" in text and [c.n for c in citations] == [1]
    assert decisions[0].action == "replaced"
    assert "says only 0% of what its source adds" in decisions[0].reason


def test_a_draft_that_states_its_sources_fact_is_kept_in_the_models_words() -> None:
    ev = evidence(CONCERT, kind="place")
    draft = (
        "After touring Europe in the spring, its last concert was in Vienna, where the composer "
        "lived [1]."
    )
    claims, decisions = check_draft(draft, ev, WHERE)
    assert [d.action for d in decisions] == ["kept"]
    assert claims[0].text == draft.replace(" [1]", "")


def test_without_a_coverage_bound_every_supported_draft_is_trusted() -> None:
    ev = evidence(CONCERT, kind="place")
    draft = "The orchestra toured Europe in the spring [1]."
    claims, decisions = check_draft(draft, ev, WHERE, style=AnswerStyle(min_coverage=0.0))
    assert [d.action for d in decisions] == ["kept"]
    assert "Vienna" not in render(claims, ev.retrieved)[0]


def test_an_incomplete_second_sentence_on_a_source_already_stated_is_dropped() -> None:
    ev = evidence(CONCERT, kind="place")
    draft = "The orchestra toured Europe in the spring [1]. It toured Europe [1]."
    claims, decisions = check_draft(draft, ev, WHERE)
    assert [d.action for d in decisions] == ["replaced", "dropped"]
    assert "the answer states it already" in decisions[1].reason
    assert len(claims) == 1


def test_a_long_facts_relative_clause_keeps_the_noun_it_describes() -> None:
    # 36 words: stated by its clause that answers. That clause ("who founded the festival")
    # describes the person asked for, who stands before it.
    text = (
        "The orchestra cancelled its spring tour after the fire, and the ensemble of Clara "
        "Weiss, who founded the festival in Graz, performed the concerts in the cathedral "
        "instead during the long summer months of that difficult year."
    )
    fact = excerpt(sentence(text), "person", "Who founded the festival in Graz?")
    assert fact.startswith("The ensemble of Clara Weiss, who founded the festival in Graz")


@pytest.mark.parametrize(
    ("draft", "first"),
    [
        ("to this question is: The harbour reopened [1].", "The harbour reopened [1]."),
        ("The answer to your question is: May [1].", "May [1]."),
        ("Based on the sources, the harbour reopened [1].", "the harbour reopened [1]."),
        ("To the north lies a river [1].", "To the north lies a river [1]."),
    ],
)
def test_opening_filler_is_no_claim_and_is_dropped(draft: str, first: str) -> None:
    # The prompt ends with "Answer:", so a small model may go on "to this question is: ...".
    from rag.cite import draft_sentences

    assert draft_sentences(draft)[0] == first


def test_a_draft_that_gives_the_question_words_its_source_lacks_is_replaced() -> None:
    # Most of the draft's words are in its source, but "resettled" is not "killed": the word
    # that ties the answer to the question is one the source never says.
    source = "The British resettled many Acadians across the provinces, and some went to France."
    ev = evidence(source, kind="other")
    question = "Where did the British kill many Acadians?"
    claims, decisions = check_draft(
        "The British killed many Acadians across the provinces [1].", ev, question
    )
    assert decisions[0].action == "replaced"
    assert "['kill']" in decisions[0].reason and "resettled" in claims[0].text


def test_a_long_fact_cut_short_keeps_every_item_of_its_list() -> None:
    # ", and" that ends a list is no clause boundary: cut there, the answer would give two of
    # three causes as if they were all.
    text = (
        "The expedition set out from the coast in early spring with forty mules and six guides; "
        "it failed, due to a combination of poor maps, broken bridges, and heavy rains."
    )
    fact = excerpt(sentence(text), "other", "Why did it fail?", 20)
    assert fact.endswith("poor maps, broken bridges, and heavy rains.")


def test_a_stated_fact_drops_the_footnote_marks_of_its_source() -> None:
    # "[12]" in the answer would read as a citation of a twelfth source.
    text = "Trade grew after the colonies won independence in 1820.[12]"
    assert excerpt(sentence(text), "date", "q") == (
        "Trade grew after the colonies won independence in 1820."
    )


def test_a_draft_is_read_to_the_end_of_its_first_sentence_and_no_further() -> None:
    assert draft_read("Castillo was removed in", 1) is None  # still writing its sentence
    assert draft_read("Castillo was removed in 2022.", 1) is None  # the next may be a list
    assert draft_read("Castillo was removed in 2022. He", 1) == "Castillo was removed in 2022."
    assert draft_read("The answer is: Castillo was removed. He", 1) == "Castillo was removed."
    assert draft_read("Castillo was removed in 2022. He", 2) is None
    assert draft_read("Castillo was removed in 2022. He denies it. But", 0) is None


def test_a_list_number_is_no_sentence_of_the_draft() -> None:
    assert draft_read("1. Castillo was removed", 1) is None
    assert draft_read("1. Castillo was removed. 2", 1) == "1. Castillo was removed."


def test_a_looping_draft_is_cut_after_its_first_copy() -> None:
    loop = "The answer is: The answer is: The answer is:"
    assert draft_read(loop, 1) == "The answer is:"
    assert draft_read(f"Lima is large. {loop}", 0) == "Lima is large. The answer is:"
    assert draft_read("It rose 10 10 10", 0) == "It rose 10"
    assert draft_read("The answer is: The answer is:", 1) is None  # twice is not yet a loop
