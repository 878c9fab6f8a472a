"""Requests for an overview ("What is this article about?", "Summarize the news."): answered
with the opening sentence of each source the question retrieves, since an article's lead says
what it is about. Every other question goes to the selector behind.

Only the grammar of such requests in English lives here (summarize, overview, what ... about),
with the nouns a reader uses for what they read; nothing about any topic.

>>> asks_for_overview("What is this article about?")
True
>>> asks_for_overview("Give me a quick summary of the report.")
True
>>> asks_for_overview("What did the report say about the harbour?")
False
"""

from __future__ import annotations

import re
from collections.abc import Callable

from rag.selector import EvidenceSelector
from rag.sentences import split_sentences
from rag.types import Evidence, Paragraph, ResolvedQuestion, Retrieved, Sentence

_READ = (
    r"(?:articles?|stor(?:y|ies)|texts?|documents?|pieces?|news|reports?|sources?|files?|"
    r"papers?|posts?|notes?)"
)
_REQUESTS = [
    # "Summarize the news", "Please sum up the articles", "tl;dr"
    r"^(?:please\s+)?(?:can you\s+|could you\s+)?(?:summari[sz]e|sum up|recap|tl;?dr)\b",
    # "Give me a (short) summary / an overview" (asked for: "the summary" is one that exists),
    # not "a summary of the keeper's duties"; "What's the gist?"
    r"\b(?:a|an)\s+(?:short\s+|brief\s+|quick\s+)?(?:summary|overview|rundown|recap)\b"
    rf"(?!\s+of\s+(?!(?:the|this|these|those|that|my|our)\s+{_READ}\b))|\bthe\s+gist\b",
    # "What is this article about?", "What are the sources about?"
    rf"^\s*what(?:'s|’s|\s+is|\s+are|\s+was|\s+were)\s+(?:the|this|these|those|that|my|our)\s+"
    rf"{_READ}\s+(?:all\s+)?about\s*\??\s*$",
    # "What are the main points?", "What are the key points of the article?"
    r"^\s*what\s+are\s+the\s+(?:main|key)\s+(?:points|facts|takeaways)\b",
]
_REQUEST = re.compile("|".join(f"(?:{r})" for r in _REQUESTS), re.I)


def asks_for_overview(question: str) -> bool:
    return bool(_REQUEST.search(question.strip()))


class OverviewSelector:
    """An ``EvidenceSelector`` in front of another: a request for an overview gets the opening
    sentence of each of the first ``max_sources`` sources among the retrieved paragraphs. The
    fitted selector would decline it: no sentence answers "What is this article about?" the
    way a sentence answers a question, so its chance of an answer is low."""

    def __init__(
        self,
        inner: EvidenceSelector,
        paragraphs: Callable[[str], list[Paragraph]],
        max_sources: int = 2,
    ) -> None:
        self.inner = inner
        self.paragraphs = paragraphs  # a source's stored paragraphs, in order
        self.max_sources = max_sources

    def select(self, question: ResolvedQuestion, retrieved: list[Retrieved]) -> Evidence:
        if not asks_for_overview(question.text) or not retrieved:
            return self.inner.select(question, retrieved)
        sources = list(dict.fromkeys(r.paragraph.source for r in retrieved))[: self.max_sources]
        leads: list[Retrieved] = []
        sentences: list[Sentence] = []
        for source in sources:
            lead = next(iter(self.paragraphs(source)), None)
            spans = split_sentences(lead.text, lead.start) if lead else []
            if lead is None or not spans:
                continue
            leads.append(Retrieved(paragraph=lead, score=1.0))
            sentences.append(Sentence(spans[0].text, lead, spans[0].start, spans[0].end))
        if not sentences:
            return self.inner.select(question, retrieved)
        return Evidence(
            question.text,
            "other",
            sentences,
            leads,
            answerable=True,
            reason="a request for an overview: the opening sentence of each source",
        )
