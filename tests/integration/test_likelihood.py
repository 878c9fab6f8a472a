"""The question likelihood from the bundled SmolLM2: a sentence the question was asked about
makes the question likelier than a sentence about something else, and the reranking it drives
reorders only the selector's best few sentences, by the committed weight."""

from __future__ import annotations

import json
import threading

import pytest

from rag.errors import BackendUnavailable
from rag.features import Candidate
from rag.likelihood import OwnModel, QuestionLikelihood
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
    from rag.config import Settings
    from rag.llm import default_chat_gguf

    gguf = default_chat_gguf(Settings())
    return QuestionLikelihood(OwnModel(lambda: gguf).lease)


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


def test_the_chat_model_lends_its_weights_and_still_answers_the_same(
    likelihood: QuestionLikelihood,
) -> None:
    from llama_index.core.llms import ChatMessage

    from rag.config import Settings
    from rag.llm import LlamaCppChatModel, default_chat_gguf

    chat = LlamaCppChatModel(default_chat_gguf(Settings()), max_tokens=12)
    ask = [ChatMessage(role="user", content="Name a colour.")]
    chat.complete(ask)
    # Asked again, the chat reuses the prompt it has cached (and llama.cpp's one-token step
    # may round differently from the whole prompt's batch, so the words can differ from the
    # first answer's): this is the answer to expect while the cache holds the prompt.
    before = chat.complete(ask)
    with chat.lease() as llama:
        cached = llama.n_tokens
    borrowed = QuestionLikelihood(chat.lease)
    # The same weights give the same scores in a context of another size...
    assert borrowed.score(QUESTION, [CONCERT, BARLEY]) == pytest.approx(
        likelihood.score(QUESTION, [CONCERT, BARLEY]), abs=1e-3
    )
    # ...the chat's cached tokens are put back, and its next answer, which reuses them all,
    # is the one it gave before.
    with chat.lease() as llama:
        assert llama.n_tokens == cached > 0
    assert chat.complete(ask) == before


def test_the_rerank_is_off_by_default_and_on_auto_borrows_the_bundled_chat_model() -> None:
    from rag.config import Settings
    from rag.embed import build_embedder
    from rag.llm import LlamaCppChatModel, default_chat_gguf
    from rag.wiring import build_selector

    built: list[str] = []

    def chat_model() -> LlamaCppChatModel:
        built.append("chat")
        return LlamaCppChatModel(default_chat_gguf(Settings()))

    default = Settings(embed={"backend": "hash"})
    assert build_selector(build_embedder(default), default, chat_model).rerank is None
    auto = Settings(embed={"backend": "hash"}, select={"rerank": "auto"})
    rerank = build_selector(build_embedder(auto), auto, chat_model).rerank
    assert rerank is not None and isinstance(rerank.scorer, QuestionLikelihood)
    fitted = json.loads(DEFAULT_RERANK.read_text(encoding="utf-8"))
    assert (rerank.top, rerank.weight, rerank.max_gap) == (
        fitted["top"],
        fitted["weight"],
        fitted["max_gap"],
    )
    assert rerank.scorer.score(QUESTION, [CONCERT])[0] < 0.0
    assert built == ["chat"]
    # A server's model cannot be read token by token: on auto there is then no rerank (a copy
    # of SmolLM2 would cost memory and this machine's CPU), and asked for, the scorer loads a
    # copy of its own.
    served = Settings(
        embed={"backend": "hash"}, llm={"backend": "ollama"}, select={"rerank": "auto"}
    )
    assert build_selector(build_embedder(served), served, chat_model).rerank is None
    asked = Settings(
        embed={"backend": "hash"}, llm={"backend": "ollama"}, select={"rerank": "likelihood"}
    )
    rerank = build_selector(build_embedder(asked), asked, chat_model).rerank
    assert rerank is not None and rerank.scorer.score(QUESTION, [CONCERT])[0] < 0.0
    assert built == ["chat"]
    off = Settings(embed={"backend": "hash"}, select={"rerank": "none"})
    assert build_selector(build_embedder(off), off, chat_model).rerank is None
