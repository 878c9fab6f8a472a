"""Sentence and clause spans with offsets, shared by windowing (index) and evidence (ground)."""

from __future__ import annotations

import re

from rag.ingest import Span

_ABBREV = frozenset(
    """mr mrs ms dr prof st jr sr gen gov sen rep lt col sgt capt no vs etc inc ltd co corp jan
    feb mar apr jun jul aug sep sept oct nov dec u.s u.k e.g i.e approx""".split()
)
# A footnote mark of text copied from the web: "power.[citation needed] Although ...", "in
# 1820.[12] The ...", "the cape.[b] Further ...". It belongs to the sentence it follows, and
# is no part of its fact.
FOOTNOTE_MARK = r"\[(?:\d{1,3}|[a-z](?:[a-z ]{2,30})?)\]"
_END = re.compile(
    rf"[.!?]+[\"'”’)\]]*(?:{FOOTNOTE_MARK})*(?=\s+[\"'“‘(\[]?[A-Z0-9ÁÉÍÓÚÑ¿¡])"
)


def split_sentences(text: str, offset: int = 0) -> list[Span]:
    """Sentences of ``text``; each span's start/end are ``offset`` + position in ``text``."""
    spans: list[Span] = []
    pos = 0
    for m in _END.finditer(text):
        before = text[pos : m.start()]
        word = re.search(r"([\w.]+)$", before)
        token = word.group(1).lower() if word else ""
        if token in _ABBREV or re.fullmatch(r"[a-z]", token):
            continue  # "Nov. 3", "J. Smith": not a sentence end
        end = m.end()
        _append(spans, text, pos, end, offset)
        pos = end
    _append(spans, text, pos, len(text), offset)
    return spans


def _append(spans: list[Span], text: str, start: int, end: int, offset: int) -> None:
    chunk = text[start:end]
    lead = len(chunk) - len(chunk.lstrip())
    trail = len(chunk) - len(chunk.rstrip())
    s, e = start + lead, end - trail
    if e > s:
        spans.append(Span(offset + s, offset + e, text[s:e]))


_CLAUSE = re.compile(r"(?:;\s+|,\s+(?=(?:and|but|while|whereas|so)\s))")


_LIST_ITEM_WORDS = 4  # "internal divisions": a list's items are a few words each


def closes_list(head: str, cut: str, tail: str) -> bool:
    """Whether the ``cut`` between ``head`` and ``tail`` (", " before "and ...") ends a list
    rather than starting a clause: "failed due to poor management, internal divisions, and
    effective scouts" names three causes, and a clause cut before the last would state two as
    if they were all."""
    if not (cut.startswith(",") and tail.startswith("and ")):
        return False
    _, comma, last = head.rpartition(",")
    return bool(comma) and len(last.split()) <= _LIST_ITEM_WORDS


def split_clauses(sentence: Span, min_words: int = 6) -> list[Span]:
    """Long sentences split at '; ' and ', and ...' when both halves can stand alone."""
    parts: list[Span] = []
    pos = 0
    text = sentence.text
    for m in _CLAUSE.finditer(text):
        head = text[pos : m.start()]
        if closes_list(head, m.group(0), text[m.end() :]):
            continue
        if len(head.split()) >= min_words and len(text[m.end() :].split()) >= min_words:
            _append(parts, text, pos, m.start(), sentence.start)
            pos = m.end()
    _append(parts, text, pos, len(text), sentence.start)
    # A clause that starts "and ..." reads better without it; the span still points at the source.
    return [_drop_conjunction(p) for p in parts]


_CONJUNCTION = re.compile(r"(?:and|but|while|whereas|so)\s+")
# A news dateline: the place (in capitals) the story was filed from, perhaps a date or a
# wire service, then a dash: "LIMA, November 3, 2025 - ", "WASHINGTON (AP) — ". It says where
# the report was written, not what the sentence states.
_DATELINE = re.compile(
    r"^[A-Z][A-Z.'’-]+(?:\s+[A-Z][A-Z.'’-]+)*(?:,\s*[^,\n–—-]{2,30}?)*\s*(?:\([^)\n]{1,30}\)\s*)?"
    r"[-–—]+\s+(?=\S)"
)


def _drop_conjunction(span: Span) -> Span:
    return _without_opening(span, _CONJUNCTION)


def strip_dateline(span: Span) -> Span:
    """The sentence without the dateline that opens its paragraph, offsets kept true."""
    return _without_opening(span, _DATELINE)


def _without_opening(span: Span, opening: re.Pattern[str]) -> Span:
    """``span`` without the ``opening`` it starts with; whole when nothing would be left."""
    m = opening.match(span.text)
    if not m or len(span.text) == m.end():
        return span
    return Span(span.start + m.end(), span.end, span.text[m.end() :])


def windows(text: str, offset: int, max_words: int) -> list[Span]:
    """Consecutive sentences packed into windows of at most ``max_words`` words."""
    out: list[Span] = []
    current: list[Span] = []
    count = 0
    pieces: list[Span] = []
    for s in split_sentences(text, offset):
        words = s.text.split()
        if len(words) <= max_words:
            pieces.append(s)
            continue
        # A single over-long sentence: cut at word boundaries.
        for m in re.finditer(rf"(?:\S+\s*){{1,{max_words}}}", s.text):
            _append(pieces, s.text, m.start(), m.end(), s.start)
    for piece in pieces:
        n = len(piece.text.split())
        if current and count + n > max_words:
            out.append(_join(text, offset, current))
            current, count = [], 0
        current.append(piece)
        count += n
    if current:
        out.append(_join(text, offset, current))
    return out


def _join(text: str, offset: int, spans: list[Span]) -> Span:
    start, end = spans[0].start, spans[-1].end
    return Span(start, end, text[start - offset : end - offset])
