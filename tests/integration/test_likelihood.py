"""The question likelihood from the bundled SmolLM2: a sentence the question was asked about
makes the question likelier than a sentence about something else, and the reranking it drives
reorders only the selector's best few sentences, by the committed weight."""

from __future__ import annotations

import json
import threading

import pytest

from rag.errors import BackendUnavailable
from rag.features import Candidate
from rag.likelihood import QuestionLikelihood
from rag.selector import DEFAULT_RERANK, Rerank
from rag.types import Paragraph, Sentence

pytestmark = pytest.mark.slow

CONCERT = (
    "The orchestra toured Europe in the spring, and its last concert was given in Vienna, "
    "where the composer had lived."
)
BARLEY = "Farmers in the valley grow barley and keep sheep on the upper slopes."
QUESTION = "Where was the orchestra's last concert given?"


@pytest.fixture(scope="module")
def likelihood() -> QuestionLikelihood:
    return QuestionLikelihood()


def test_the_sentence_a_question_is_about_makes_it_likelier(likelihood: QuestionLikelihood) -> None:
    about, other = likelihood.score(QUESTION, [CONCERT, BARLEY])
    assert about > other
    assert about < 0.0  # a mean log-probability


def test_scores_are_the_same_one_at_a_time_and_from_threads(
    likelihood: QuestionLikelihood,
) -> None:
    alone = likelihood.score(QUESTION, [CONCERT, BARLEY])
    results: list[list[float]] = []
    def run() -> None:
        results.append(likelihood.score(QUESTION, [CONCERT, BARLEY]))

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [alone] * 3


def candidate(text: str) -> Candidate:
    p = Paragraph("p", "a.txt", "A", 0, 0, len(text), text, "h")
    return Candidate(Sentence(text, p, 0, len(text)), rank=0, position=0)


def test_the_rerank_reorders_the_best_sentences_by_the_fitted_weight(
    likelihood: QuestionLikelihood,
) -> None:
    rerank = Rerank.load(likelihood, DEFAULT_RERANK)
    assert rerank.top >= 2 and rerank.weight > 0
    ranked = [candidate(BARLEY), candidate(CONCERT), candidate("A third sentence.")]
    lm = likelihood.score(QUESTION, [BARLEY, CONCERT])
    # The sentence model prefers the barley sentence by less than the likelihood's difference
    # (weighted) and by less than the lead at which the rerank stands aside.
    margin = 0.5 * min(rerank.weight * (lm[1] - lm[0]), rerank.max_gap)
    rerank.apply(QUESTION, ranked, [margin, 0.0, -50.0])
    assert ranked[0].sentence.text == CONCERT
    # A clear lead is kept without asking the model.
    asked: list[str] = []

    class Counting:
        def score(self, question: str, sentences: list[str]) -> list[float]:
            asked.append(question)
            return likelihood.score(question, sentences)

    ranked = [candidate(BARLEY), candidate(CONCERT)]
    Rerank(Counting(), top=2, weight=100.0, max_gap=1.0).apply(QUESTION, ranked, [1.0, 0.0])
    assert ranked[0].sentence.text == BARLEY and asked == []
    Rerank(Counting(), top=2, weight=100.0, max_gap=1.5).apply(QUESTION, ranked, [1.0, 0.0])
    assert ranked[0].sentence.text == CONCERT and asked == [QUESTION]


class _Down:
    def score(self, question: str, sentences: list[str]) -> list[float]:
        raise BackendUnavailable("likelihood", "nowhere", "not loaded")


def test_without_the_likelihood_the_sentence_models_order_stands() -> None:
    # _Down raises on any call: a lead of 0.1 under max_gap asks for the signal, and gets none.
    ranked = [candidate(BARLEY), candidate(CONCERT)]
    Rerank(_Down(), top=2, weight=4.0).apply(QUESTION, ranked, [0.1, 0.0])
    assert [c.sentence.text for c in ranked] == [BARLEY, CONCERT]


def test_the_rerank_is_chosen_by_configuration() -> None:
    from rag.config import Settings
    from rag.embed import build_embedder
    from rag.wiring import build_selector

    default = Settings(embed={"backend": "hash"})
    assert build_selector(build_embedder(default), default).rerank is None
    on = Settings(embed={"backend": "hash"}, select={"rerank": "likelihood"})
    rerank = build_selector(build_embedder(on), on).rerank
    assert rerank is not None and isinstance(rerank.scorer, QuestionLikelihood)
    fitted = json.loads(DEFAULT_RERANK.read_text(encoding="utf-8"))
    assert (rerank.top, rerank.weight, rerank.max_gap) == (
        fitted["top"],
        fitted["weight"],
        fitted["max_gap"],
    )
