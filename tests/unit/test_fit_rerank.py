"""Fitting the rerank: how often the answer sentence comes first for a weight, and the committed
parameters with the figures they were chosen on."""

from __future__ import annotations

import json

import numpy as np

from eval.fit_rerank import reranked_share, top1
from rag.selector import DEFAULT_RERANK


def test_top1_counts_the_answer_first_under_the_combined_score() -> None:
    # Question 1: the sentence model is right and the likelihood agrees; question 2: it is wrong
    # by 1.0 and the likelihood prefers the answer by 0.5.
    data = [
        (np.array([2.0, 1.0]), np.array([-2.0, -3.0]), np.array([1.0, 0.0])),
        (np.array([2.0, 1.0]), np.array([-3.0, -2.5]), np.array([0.0, 1.0])),
    ]
    assert top1(data, top=2, weight=0.0) == 0.5
    assert top1(data, top=2, weight=4.0) == 1.0  # 1.0 - 4 x 0.5 < 0: the answer goes first
    assert top1(data, top=1, weight=4.0) == 0.5  # a depth of one reorders nothing
    # The best leads by 1.0 in both: a question is reranked only when the lead is smaller.
    assert top1(data, top=2, weight=4.0, max_gap=1.0) == 0.5
    assert top1(data, top=2, weight=4.0, max_gap=1.5) == 1.0
    assert reranked_share(data, 1.0) == 0.0 and reranked_share(data, None) == 1.0


def test_the_committed_rerank_states_how_it_was_fitted() -> None:
    d = json.loads(DEFAULT_RERANK.read_text(encoding="utf-8"))
    assert d["top"] >= 2 and d["weight"] >= 0.0
    about = d["about"]
    assert about["command"].startswith("python -m eval.fit_rerank")
    held = about["answer_first"]["held out (SQuAD 7-8)"]
    assert held["questions"] > 300 and 0.0 < held["before"] <= 1.0
