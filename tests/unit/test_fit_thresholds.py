"""Choosing where to abstain: the thresholds are read off out-of-fold chances within a bound on
wrong abstention, and the questions that test it are built from the data, not written by hand."""

from __future__ import annotations

import numpy as np

from eval.fit import choose_threshold, choose_thresholds, swap_a_name
from rag.selector import DEFAULT_MODEL, SelectorModel


def test_the_threshold_is_the_largest_within_the_wrong_abstention_bound() -> None:
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.2, 0.1, 0.5, 0.3])
    answerable = np.array([True, True, True, True, True, False, False, False])
    t = choose_threshold(p, answerable, max_wrong=0.2)
    assert t == 0.6  # 0.2 (one of five answerable) is declined; 0.6 would be a second
    assert (p[answerable] < t).mean() <= 0.2


def test_the_covered_guard_takes_its_small_share_and_the_answerable_model_the_rest() -> None:
    rng = np.random.default_rng(0)
    answerable = rng.random(1000) < 0.5
    p = np.where(answerable, rng.beta(5, 3, 1000), rng.beta(3, 5, 1000))
    covered = rng.beta(8, 2, 1000)
    t, c = choose_thresholds(p, covered, answerable, max_wrong=0.10, max_wrong_covered=0.02)
    turned_away = covered < c
    assert 0.0 < turned_away[answerable].mean() <= 0.02
    assert ((p < t) | turned_away)[answerable].mean() <= 0.10
    # The answerable model's own threshold, alone, would spend the whole bound.
    assert t <= choose_threshold(p, answerable, 0.10)


def test_a_name_the_sources_hold_is_swapped_for_one_they_never_mention() -> None:
    held = " the planet mars has two moons phobos and deimos discovered by asaph hall "
    pool = ["Asaph Hall", "Jupiter", "Ganymede"]
    got = swap_a_name("Which moons of Mars did Asaph Hall discover?", held, pool, seed="q1")
    assert got is not None
    question, name = got
    assert name in ("Jupiter", "Ganymede")  # never a name the sources mention
    assert question in (
        f"Which moons of {name} did Asaph Hall discover?",
        f"Which moons of Mars did {name} discover?",
    )
    assert got == swap_a_name("Which moons of Mars did Asaph Hall discover?", held, pool, "q1")
    # Nothing to swap: the question names nothing the sources hold.
    assert swap_a_name("How many moons are there?", held, pool, seed="q2") is None


def test_the_committed_model_guards_against_questions_the_sources_never_cover() -> None:
    model = SelectorModel.load(DEFAULT_MODEL)
    assert model.covered is not None and 0.0 < model.covered_threshold < 1.0
    held = model.about["held_out"]
    off = held["report, asked of sources without their article"]
    assert all(v["questions"] > 100 and v["abstention"] > 0.5 for v in off.values())
    assert held["report"]["wrong_abstention"] <= 0.10
