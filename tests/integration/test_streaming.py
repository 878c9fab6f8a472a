"""Streaming shows only text the citation check has kept, never the model's raw draft.

The model here is scripted (it writes a given draft, a word at a time) so that the draft is known
to hold a false sentence; retrieval, grounding, the check and the embedder are the real ones over
the seeds. The bundled model streams through the same code in tests/api/test_server.py and the
browser test.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Iterator
from typing import Any

import pytest

from rag.answer import Answerer
from rag.pipeline import Pipeline
from rag.types import Answer, StreamEvent

QUESTION = "What prison sentence are prosecutors seeking for Betssy Chávez?"
FALSE = "The Mexican ambassador expelled Peru's ambassador"


class ScriptedModel:
    """Writes ``draft`` word by word, as a model streams; ``complete`` returns all of it."""

    backend = "scripted"
    name = "scripted"

    def __init__(self, draft: str) -> None:
        self.draft = draft

    def complete(self, messages: Any, max_tokens: int | None = None) -> str:
        return self.draft

    def stream(self, messages: Any, max_tokens: int | None = None) -> Generator[str, None, None]:
        yield from re.findall(r"\s*\S+", self.draft)

    def check(self) -> None:
        return None


def answer_both_ways(pipeline: Pipeline, draft: str) -> tuple[list[StreamEvent], Answer]:
    """The streamed events and the plain answer for QUESTION with the model writing ``draft``."""
    answerer = Answerer(ScriptedModel(draft), pipeline.selector, pipeline.settings.llm.max_tokens)
    q, resolved, retrieved, timings = pipeline._prepare(QUESTION, (), None)
    events = list(answerer.answer_stream(q, resolved, retrieved, dict(timings)))
    plain = answerer.answer(q, resolved, retrieved, dict(timings))
    return events, plain


def streamed_text(events: list[StreamEvent]) -> str:
    return "".join(e.text for e in events if e.kind == "token")


def final_answer(events: list[StreamEvent]) -> Answer:
    finals = [e.answer for e in events if e.kind == "final" and e.answer is not None]
    assert len(finals) == 1 and events[-1].kind == "final"
    return finals[0]


@pytest.mark.parametrize(
    "draft",
    [
        f"{FALSE} [1]. Prosecutors are seeking twenty-five years in prison for her [1].",
        f"{FALSE} [1].",
        "Prosecutors are seeking twenty-five years in prison for Betssy Chávez [1]. "
        f"{FALSE} [2]. And more.",
        f"{FALSE}",  # no marker, never finishes its sentence
    ],
    ids=["false-then-true", "false-only", "true-then-false", "unfinished"],
)
def test_tokens_carry_only_text_of_the_final_answer(seeded_pipeline: Pipeline, draft: str) -> None:
    events, plain = answer_both_ways(seeded_pipeline, draft)
    final = final_answer(events)
    text = streamed_text(events)
    assert FALSE not in text and "Mexican ambassador" not in final.answer
    # Every token extends what was shown and stays inside the final answer: together they
    # spell it from its start, and at the end all of it.
    shown = ""
    for event in events:
        if event.kind == "token":
            shown += event.text
            assert final.answer.startswith(shown), (shown, final.answer)
    assert text == final.answer
    assert final.answer == plain.answer  # streaming changes when text is shown, not what
    # Progress is words about the work, never answer text.
    statuses = [e.text for e in events if e.kind == "status"]
    assert statuses and all("passages" in s for s in statuses)


def test_a_kept_first_sentence_is_shown_before_the_model_finishes(
    seeded_pipeline: Pipeline,
) -> None:
    kept = "Prosecutors are seeking twenty-five years in prison for Betssy Chávez [1]."
    draft = f"{kept} Betssy Chávez was prime minister [2]. " + "More words here " * 10
    answerer = Answerer(
        ScriptedModel(draft), seeded_pipeline.selector, seeded_pipeline.settings.llm.max_tokens
    )
    q, resolved, retrieved, timings = seeded_pipeline._prepare(QUESTION, (), None)
    words_written = 0
    first_text_at: int | None = None
    model = answerer.model
    inner = model.stream

    def counting(messages: Any, max_tokens: int | None = None) -> Iterator[str]:
        nonlocal words_written
        for word in inner(messages, max_tokens):
            words_written += 1
            yield word

    model.stream = counting  # type: ignore[method-assign]
    events = []
    for event in answerer.answer_stream(q, resolved, retrieved, dict(timings)):
        if event.kind == "token" and first_text_at is None:
            first_text_at = words_written
        events.append(event)
    final = final_answer(events)
    assert first_text_at is not None and first_text_at < len(draft.split())
    assert "twenty-five years" in final.answer
    assert final.timings["first_text"] <= final.timings["total"] + 1.0


def test_an_abstention_is_streamed_as_its_text(seeded_pipeline: Pipeline) -> None:
    answerer = Answerer(
        ScriptedModel("Lima has ten million people [1]."),
        seeded_pipeline.selector,
        seeded_pipeline.settings.llm.max_tokens,
    )
    q, resolved, retrieved, timings = seeded_pipeline._prepare(
        "What is the population of Lima?", (), None
    )
    events = list(answerer.answer_stream(q, resolved, retrieved, dict(timings)))
    final = final_answer(events)
    assert final.abstained and streamed_text(events) == final.answer


class CountingModel(ScriptedModel):
    """A scripted model that counts the words it wrote and notes being stopped (closed)."""

    def __init__(self, draft: str) -> None:
        super().__init__(draft)
        self.written = 0
        self.stopped = False

    def stream(self, messages: Any, max_tokens: int | None = None) -> Generator[str, None, None]:
        self.written, self.stopped = 0, False
        try:
            for word in super().stream(messages, max_tokens):
                self.written += 1
                yield word
        finally:
            self.stopped = True


@pytest.mark.parametrize(
    "draft",
    [
        "Prosecutors are seeking twenty-five years in prison for Betssy Chávez [1]. "
        + "She was prime minister under Castillo. " * 5,
        "The answer is: " * 12,
    ],
    ids=["sentence-then-more", "loop"],
)
def test_the_model_is_stopped_once_its_draft_cannot_change_the_answer(
    seeded_pipeline: Pipeline, draft: str
) -> None:
    """One sentence, as the prompt asks (or a loop's first copy): the model is stopped there,
    its stream closed, in a plain answer and a streamed one alike, with the same answer."""
    model = CountingModel(draft)
    answerer = Answerer(model, seeded_pipeline.selector, seeded_pipeline.settings.llm.max_tokens)
    q, resolved, retrieved, timings = seeded_pipeline._prepare(QUESTION, (), None)
    plain = answerer.answer(q, resolved, retrieved, dict(timings))
    assert model.stopped and model.written < len(draft.split()) // 2
    events = list(answerer.answer_stream(q, resolved, retrieved, dict(timings)))
    assert model.stopped and model.written < len(draft.split()) // 2
    assert final_answer(events).answer == plain.answer
    assert "twenty-five years" in plain.answer and "The answer is" not in plain.answer
