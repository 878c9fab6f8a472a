"""Requests for an overview are told from questions by their English grammar alone."""

from __future__ import annotations

import pytest

from rag.overview import asks_for_overview


@pytest.mark.parametrize(
    "request_",
    [
        "What is this article about?",
        "what are the documents about",
        "What's the story about?",
        "Summarize the news.",
        "Please sum up the reports",
        "Can you summarise the texts?",
        "Give me a short summary.",
        "I'd like an overview of these articles.",
        "What are the main points?",
        "tl;dr",
    ],
)
def test_a_request_for_an_overview_is_recognised(request_: str) -> None:
    assert asks_for_overview(request_)


@pytest.mark.parametrize(
    "question",
    [
        "What did the report say about the harbour?",
        "What is the lighthouse about to do?",
        "Give me a summary of the keeper's duties.",  # a topic, not the sources as a whole
        "Which article mentions the storm?",
        "When was the summary published?",
        "What is the main point of the keeper's letter?",
    ],
)
def test_a_question_about_the_content_is_not(question: str) -> None:
    assert not asks_for_overview(question)
