"""The fitted evidence selector: a logistic model fitted in numpy, its parameters in one JSON
file, and the decision it makes over real MiniLM signals on text no rule was written for."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rag.features import QUESTION_FEATURES, QUESTION_SIGNS, SENTENCE_FEATURES
from rag.selector import DEFAULT_MODEL, Logistic, SelectorModel, fit_logistic


def test_logistic_fit_finds_the_signal_that_separates_the_classes() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3))
    y = (2.0 * x[:, 1] - 0.1 > rng.normal(scale=0.3, size=400)).astype(float)
    model = fit_logistic(x, y, ("noise", "signal", "other"), l2=0.1)
    assert abs(model.weights[1]) > 5 * max(abs(model.weights[0]), abs(model.weights[2]))
    accuracy = ((model.prob(x) > 0.5) == (y == 1)).mean()
    assert accuracy > 0.9


def test_a_weight_fitted_against_its_stated_direction_is_held_at_zero() -> None:
    """A data set's artefact (here: the first signal, which should raise the chance, lowers it)
    is not learned when the signal's direction is given; the others are fitted as before."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(500, 3))
    y = (x[:, 1] - 0.8 * x[:, 0] > rng.normal(scale=0.5, size=500)).astype(float)
    names = ("match", "signal", "free")
    free = fit_logistic(x, y, names, l2=0.1)
    signed = fit_logistic(x, y, names, l2=0.1, signs=[1, 1, 0])
    assert free.weights[0] < -1.0
    assert signed.weights[0] == 0.0 and signed.weights[1] > 1.0
    assert fit_logistic(x, y, names, l2=0.1, signs=[-1, 1, 0]).weights[0] < -1.0


def test_the_quadratic_model_learns_what_one_signal_means_given_another() -> None:
    """A sentence answers when it is similar to the question *and* holds the kind asked for:
    an interaction no weighted sum of the two signals can draw, which the products can."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(600, 2))
    y = (x[:, 0] * x[:, 1] > 0).astype(float)
    names = ("similarity", "kind")
    linear = fit_logistic(x, y, names, l2=0.1)
    quadratic = fit_logistic(x, y, names, l2=0.1, pairs=True)

    def accuracy(m: Logistic) -> float:
        return float(((m.prob(x) > 0.5) == (y == 1)).mean())

    assert accuracy(linear) < 0.7 and accuracy(quadratic) > 0.9
    again = Logistic.from_dict(json.loads(json.dumps(quadratic.to_dict())), names)
    assert again.pairs and np.allclose(again.logit(x), quadratic.logit(x), atol=1e-4)


def test_every_question_signal_has_a_stated_direction_and_the_committed_models_keep_it() -> None:
    assert set(QUESTION_SIGNS) == set(QUESTION_FEATURES)
    assert set(QUESTION_SIGNS.values()) <= {-1, 0, 1}
    model = SelectorModel.load(DEFAULT_MODEL)
    for fitted in (model.answerable, model.covered):
        assert fitted is not None
        for name, weight in zip(fitted.names, fitted.weights, strict=True):
            assert weight * QUESTION_SIGNS[name] >= 0, (name, weight)


def test_the_committed_model_loads_and_states_how_it_was_fitted() -> None:
    model = SelectorModel.load(DEFAULT_MODEL)
    assert model.sentence.names == SENTENCE_FEATURES
    assert model.answerable.names == QUESTION_FEATURES
    assert 0.0 < model.threshold < 1.0
    about = model.about
    assert about["command"].startswith("python -m eval.fit")
    fitted, reported = about["fitted_on"]["squad_articles"], about["reported_on"]["squad_articles"]
    assert fitted and reported and set(fitted).isdisjoint(reported)
    assert set(about["threshold_chosen_on"]["squad_articles"]).isdisjoint(reported)
    assert DEFAULT_MODEL.stat().st_size < 25_000_000


def test_a_model_fitted_for_other_features_is_refused(tmp_path: Path) -> None:
    d = json.loads(DEFAULT_MODEL.read_text(encoding="utf-8"))
    d["sentence_model"]["features"] = ["cos"]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(d), encoding="utf-8")
    with pytest.raises(ValueError, match="refit"):
        SelectorModel.load(path)


def test_a_question_asking_two_things_is_read_as_two_questions() -> None:
    from rag.selector import two_parts
    from rag.types import ResolvedQuestion

    first, second = two_parts(
        ResolvedQuestion("Who wrote the opera, and in what year was it first staged?")
    )
    assert first.text == "Who wrote the opera?"
    assert second.text == "In what year was it first staged?"
    # "it" in the second is the first's opera: the second leans on the first, as a follow-up
    # does. The first stands on its own words: the second's would pull it to its sentence.
    assert "opera" in second.context and first.context == ""
    first, second = two_parts(
        ResolvedQuestion("When did Marie Curie win her first prize, and where was she born?")
    )
    assert second.text == "Where was Marie Curie born?"
    # A first part with next to no words of its own shares the second's.
    first, _ = two_parts(
        ResolvedQuestion("On what day, and in what year, did the bridge open to traffic?")
    )
    assert first.text == "On what day?" and "bridge" in first.context
    assert two_parts(ResolvedQuestion("Which two rivers meet at the city?")) == []
    assert two_parts(ResolvedQuestion("Who wrote it and when?")) == []


def _question_signals(question: str, best: str) -> dict[str, float]:
    from rag.features import Candidate, Extraction, question_features
    from rag.types import Paragraph, Sentence

    para = Paragraph("p1", "a.txt", "", 0, 0, len(best), best, "h")
    cand = Candidate(Sentence(best, para, 0, len(best)), rank=0, position=0)
    cand.features = np.zeros(len(SENTENCE_FEATURES))
    ex = Extraction(question, "other", [cand], ["x"], {"x": 1.0}, 1.0, {"p1": {"x"}})
    f = question_features(ex, [cand], [0.0])
    return {k: float(v) for k, v in zip(QUESTION_FEATURES, f, strict=True)}


def test_a_question_that_negates_what_its_best_sentence_states_is_flagged() -> None:
    # SQuAD 2.0 writes unanswerable questions by negating the text ("What did Mendel not
    # publish?"); a "not" somewhere in the sentence that answers says nothing of the kind.
    def negation(q: str, best: str) -> float:
        return _question_signals(q, best)["negation_unmatched"]

    assert negation("What did Mendel not publish?", "Mendel published his laws.") == 1.0
    assert negation("What did Mendel publish?", "He did not publish in 1860.") == 0.0
    assert negation("What did Mendel never publish?", "He never published it.") == 0.0


def test_a_year_or_a_name_the_best_paragraph_does_not_hold_is_flagged() -> None:
    # Or by swapping a year, figure or name for one the text does not give.
    best = "In 1866 Gregor Mendel published his laws of inheritance."
    held = _question_signals("What did Gregor Mendel publish in 1866?", best)
    swapped = _question_signals("What did Thomas Morgan publish in 1867?", best)
    assert held["numbers_unheld"] == 0.0 and held["names_unheld"] == 0.0
    assert swapped["numbers_unheld"] == 1.0 and swapped["names_unheld"] == 1.0
    asks_none = _question_signals("What did he publish?", best)
    assert asks_none["numbers_unheld"] == 0.0 and asks_none["names_unheld"] == 0.0
