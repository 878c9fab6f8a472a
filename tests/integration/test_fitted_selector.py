"""The fitted selector over real MiniLM and embedded Chroma, on text no rule or fit was written
for: it picks the sentence that answers, and declines what the text does not say."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.config import Settings
from rag.selector import FittedSelector
from rag.types import ResolvedQuestion
from rag.wiring import build_pipeline

pytestmark = pytest.mark.slow

ARTICLE = """Genetics

Gregor Mendel studied inheritance in pea plants in the garden of his abbey in Brno. He published
his laws of inheritance in 1866, but they were largely ignored for three decades.

In 1910 Thomas Hunt Morgan showed that genes sit on chromosomes, working with fruit flies at
Columbia University. His students mapped the first genes along a chromosome.

The structure of DNA was described in 1953 by James Watson and Francis Crick, using X-ray images
taken by Rosalind Franklin. The double helix explained how genetic information is copied.

Morgan's Fly Room was run from day to day by its lab manager, Calvin Bridges, who bred and
counted the flies.
"""


@pytest.fixture(scope="module")
def genetics(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("genetics")
    (root / "src").mkdir()
    (root / "src" / "genetics.txt").write_text(ARTICLE, encoding="utf-8")
    p = build_pipeline(Settings(data_dir=root / "data", sources_dir=root / "src"))
    p.ingest(Path(root / "src"))
    return p


def _select(p, question: str):
    _, retrieved = p.retrieve(question)
    return p.selector.select(ResolvedQuestion(question), retrieved)


def test_the_sentence_that_answers_is_chosen(genetics) -> None:
    ev = _select(genetics, "Which scientist showed that genes sit on chromosomes?")
    assert ev.answerable and "Morgan" in ev.sentences[0].text
    ev = _select(genetics, "When was the structure of DNA described?")
    assert ev.answerable and "1953" in ev.sentences[0].text
    assert ev.confidence is not None and ev.confidence >= genetics.selector.inner.threshold


def test_a_question_the_text_does_not_answer_is_declined(genetics) -> None:
    ev = _select(genetics, "What is the population of Lima?")
    assert not ev.answerable and "threshold" in ev.reason


def test_a_question_about_something_the_text_never_covers_is_declined_as_such(genetics) -> None:
    # The commonest unanswerable question over one's own folder: about something else
    # entirely. The covered model turns it away, and nothing in the text answers it (0).
    ev = _select(genetics, "Who won the football World Cup in 2018?")
    assert not ev.answerable and "cover" in ev.reason and ev.confidence == 0.0
    # A question about what the text does cover passes the same guard.
    ev = _select(genetics, "Who took the X-ray images of DNA?")
    assert ev.answerable and "Franklin" in ev.sentences[0].text


def test_a_question_asking_two_things_gets_a_sentence_for_each(genetics) -> None:
    # Read as one question, the second part's sentence (Morgan's) scores well below the
    # first's; read as a question of its own, it is the answer.
    ev = _select(genetics, "In what year did Mendel publish his laws, and where did Morgan work?")
    texts = " ".join(s.text for s in ev.sentences)
    assert ev.answerable and len(ev.sentences) == 2
    assert "1866" in texts and "Columbia" in texts


def test_each_part_of_a_two_part_question_reads_its_own_paragraphs(genetics) -> None:
    # With one paragraph retrieved for the whole question (Mendel's, which shares more of its
    # words), the second part is still answered from the paragraph retrieved for it, and that
    # paragraph comes back with the evidence so the answer can cite it.
    question = "In what year did Mendel publish his laws, and where did Morgan work?"
    _, retrieved = genetics.retrieve(question, top_k=1)
    assert ["Mendel" in r.paragraph.text for r in retrieved] == [True]
    ev = genetics.selector.select(ResolvedQuestion(question), retrieved)
    texts = " ".join(s.text for s in ev.sentences)
    assert ev.answerable and "1866" in texts and "Columbia" in texts
    read = {r.paragraph.id for r in ev.retrieved}
    assert {s.paragraph.id for s in ev.sentences} <= read


def test_a_yes_no_question_is_answered_by_the_sentence_that_states_it(genetics) -> None:
    ev = _select(genetics, "Were Mendel's laws ignored?")
    assert ev.answerable and "largely ignored" in ev.sentences[0].text
    ev = _select(genetics, "Did Franklin take the X-ray images?")
    assert ev.answerable and "Rosalind Franklin" in ev.sentences[0].text
    # A word no sentence holds leaves it to the fitted decision, which declines.
    assert not _select(genetics, "Did Mendel win a Nobel prize?").answerable


def test_a_yes_no_question_the_fitted_decision_declines_is_answered_by_the_sentence_with_its_words(
    genetics,
) -> None:
    # SQuAD, the fit's data, has no yes/no questions, so a short one may score below the
    # threshold (here forced: a threshold no question reaches). The sentence holding all its
    # words answers it, the name it uses perhaps earlier in the paragraph ("they" for Mendel's
    # laws); a question with a word no sentence holds is still declined.
    strict = FittedSelector(genetics.embedder, threshold=0.999)

    def select(question: str):
        _, retrieved = genetics.retrieve(question)
        return strict.select(ResolvedQuestion(question), retrieved)

    ev = select("Were Mendel's laws ignored?")
    assert ev.answerable and "largely ignored" in ev.sentences[0].text and "yes/no" in ev.reason
    assert not select("Did Mendel win a Nobel prize?").answerable


def test_who_holds_a_title_is_read_off_the_name_beside_it(genetics) -> None:
    # "Who is the ...?" is the commonest question about a story, and SQuAD asks it too rarely
    # for the fit to learn that the answer stands beside the title.
    ev = _select(genetics, "Who was the lab manager of the Fly Room?")
    assert ev.answerable and "Calvin Bridges" in ev.sentences[0].text
    assert "title" in ev.reason
    # Whose lab manager the apposition does not say; another owner than the paragraph's is
    # left to the fitted decision.
    assert "title" not in _select(genetics, "Who was Franklin's lab manager?").reason


def test_a_request_for_an_overview_gets_the_opening_sentence_of_the_source(genetics) -> None:
    # No sentence answers "What is this text about?" the way a sentence answers a question;
    # an article's opening says what it is about.
    ev = _select(genetics, "What is this text about?")
    assert ev.answerable and "overview" in ev.reason
    assert [s.text for s in ev.sentences] == [
        "Gregor Mendel studied inheritance in pea plants in the garden of his abbey in Brno."
    ]
    first = ev.sentences[0]
    source_text = ARTICLE
    assert source_text[first.start : first.end].split() == first.text.split()
