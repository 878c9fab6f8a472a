"""Citations are checked, not trusted.

The model writes ``[n]`` after what it takes from evidence sentence n. Each sentence of its draft is
checked against what it cites; markers pointing nowhere are dropped; a sentence its citation does
not support is replaced by the supporting source sentence, quoted; the citation list holds only
what the final text cites, numbered in order of first appearance.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.ground import has_kind, name_candidates
from rag.sentences import split_sentences
from rag.text import (
    STOPWORDS,
    amount_tokens,
    amounts,
    capitalised_phrases,
    content_stems,
    fold,
    is_english_word,
    numbers,
    words,
)
from rag.types import CheckDecision, Citation, Evidence, Retrieved, Sentence

_MARKER = re.compile(r"\s*\[(\d{1,3})\]")
MIN_SUPPORT = 0.7
# Small models open with filler that is not a claim about the sources.
_FILLER = re.compile(
    r"^(?:(?:the )?answer(?: to (?:the|your) question)?(?: is)?\s*[:,-]?\s*"
    r"|according to (?:the )?sources?,?\s*|based on (?:the )?sources?,?\s*)",
    re.I,
)  # share of a sentence's content words that its cited text must contain


@dataclass
class Claim:
    text: str  # without markers
    cites: list[Sentence]


def parse_markers(text: str) -> tuple[str, list[int]]:
    return _MARKER.sub("", text).strip(), [int(n) for n in _MARKER.findall(text)]


def supported(claim: str, cited: list[Sentence]) -> tuple[bool, str]:
    """Offline lexical check: content words covered, and every number and name present."""
    if not cited:
        return False, "cites nothing"
    source = " ".join(s.text for s in cited)
    claim_stems = content_stems(claim)
    if not claim_stems:
        return False, "says nothing checkable"
    source_stems = set(content_stems(source))
    coverage = sum(t in source_stems for t in claim_stems) / len(claim_stems)
    if coverage < MIN_SUPPORT:
        return False, f"only {coverage:.0%} of its words are in the cited text"
    missing_numbers = numbers(claim) - numbers(source)
    if missing_numbers:
        return False, f"number(s) {sorted(missing_numbers)} not in the cited text"
    misattached = _misattached_number(claim, source)
    if misattached:
        return False, misattached
    source_words = set(words(source))
    for _, _, phrase in capitalised_phrases(claim):
        name_words = [w for w in words(phrase) if w not in STOPWORDS]
        if name_words and not set(name_words) <= source_words:
            return False, f"name {phrase!r} not in the cited text"
    return True, f"{coverage:.0%} of its words in the cited text"


def _misattached_number(claim: str, source: str) -> str | None:
    """'A 25-year sentence for Castillo' passes a word check against 'a 25-year sentence for her
    and 34 years in prison for Castillo'; the number standing nearest Castillo there is 34."""
    src_numbers = amounts(source)
    if len({v for _, v in src_numbers}) < 2:
        return None
    src_tokens = amount_tokens(source)
    for _, value in amounts(claim):
        if value not in {v for _, v in src_numbers}:
            continue
        for start, _, phrase in capitalised_phrases(claim):
            surname = words(phrase)[-1].split("'")[0]
            if start == len(claim) - len(claim.lstrip()) and is_english_word(surname):
                continue  # "Prosecutors seek ...": a capital that only opens the sentence
            spots = [i for i, t in enumerate(src_tokens) if t.split("'")[0] == surname]
            if not spots:
                continue
            nearest = min(src_numbers, key=lambda nv: min(abs(nv[0] - i) for i in spots))
            if nearest[1] != value:
                return f"the source gives {phrase} {nearest[1]}, not {value}"
    return None


def states_answer(claim: str, cited: list[Sentence], kind: str, question: str) -> bool:
    """For who/where questions the claim must name whom its source names, not another person
    that happens to stand in the same paragraph."""
    if kind not in ("person", "place"):
        return True
    names = {
        fold(n)
        for s in cited
        for n in name_candidates(s.text, question, near_focus=kind == "person")
    }
    return not names or any(n in fold(claim) for n in names)


def quote(s: Sentence) -> str:
    text = s.text.strip().strip('“”"')
    return f"“{text}”"


def check_draft(
    draft: str, evidence: Evidence, question: str, max_claims: int = 2
) -> tuple[list[Claim], list[CheckDecision]]:
    ev = evidence.sentences
    decisions: list[CheckDecision] = []
    claims: list[Claim] = []
    used: set[int] = set()
    for span in split_sentences(_FILLER.sub("", draft.strip())):
        text, marks = parse_markers(span.text)
        if not text or len(claims) >= max_claims:
            if text:
                decisions.append(CheckDecision(span.text, "dropped", "answer already complete"))
            continue
        bad = [n for n in marks if not 1 <= n <= len(ev)]
        cites = [ev[n - 1] for n in dict.fromkeys(marks) if 1 <= n <= len(ev)]
        note = f"; dropped marker(s) {bad} pointing nowhere" if bad else ""
        ok, why = supported(text, cites)
        if not ok and not cites:
            # Uncited but perhaps true: look for the evidence sentence that supports it.
            for i, s in enumerate(ev):
                if supported(text, [s])[0]:
                    cites, ok, why = [s], True, f"cited [{i + 1}] for it (it had no marker)"
                    break
        if ok and not states_answer(text, cites, evidence.answer_type, question):
            ok, why = False, f"does not state the {evidence.answer_type} its source gives"
        if ok and not set(content_stems(text)) - set(content_stems(question)):
            ok, why = False, "only restates the question"
        if ok:
            claims.append(Claim(text, cites))
            used.update(ev.index(s) for s in cites)
            decisions.append(CheckDecision(span.text, "kept", why + note))
            continue
        idx = next((i for i in range(len(ev)) if i not in used), None)
        if idx is None:
            decisions.append(CheckDecision(span.text, "dropped", why + note))
            continue
        used.add(idx)
        claims.append(Claim(quote(ev[idx]), [ev[idx]]))
        decisions.append(CheckDecision(span.text, "replaced", why + note, replacement=ev[idx].text))
    # The answer must state what was asked for, from every piece of evidence chosen for it.
    kind = evidence.answer_type
    if not any(has_kind(c.text, kind, question) for c in claims):
        for i, s in enumerate(ev):
            if i not in used:
                claims.insert(0, Claim(quote(s), [s]))
                used.add(i)
                decisions.append(
                    CheckDecision(
                        "",
                        "added",
                        f"the draft did not state the {kind} asked for",
                        replacement=s.text,
                    )
                )
                break
    for i, s in enumerate(ev):
        if i not in used:
            claims.append(Claim(quote(s), [s]))
            used.add(i)
            decisions.append(
                CheckDecision(
                    "", "added", "evidence for another part of the question", replacement=s.text
                )
            )
    return claims, decisions


def render(
    claims: list[Claim], retrieved: list[Retrieved], supports: bool = True
) -> tuple[str, list[Citation]]:
    """Final text with [n] numbered by first appearance; one citation per cited paragraph."""
    scores = {r.paragraph.id: r.score for r in retrieved}
    numbers_by_paragraph: dict[str, int] = {}
    citations: list[Citation] = []
    parts: list[str] = []
    for claim in claims:
        marks = []
        for s in claim.cites:
            p = s.paragraph
            if p.id not in numbers_by_paragraph:
                numbers_by_paragraph[p.id] = len(numbers_by_paragraph) + 1
                citations.append(
                    Citation(
                        n=numbers_by_paragraph[p.id],
                        source=p.source,
                        title=p.title,
                        paragraph=p.index,
                        start=p.start,
                        end=p.end,
                        text=p.text,
                        score=round(scores.get(p.id, 0.0), 6),
                        paragraph_id=p.id,
                        supports=supports,
                        quote_start=s.start,
                        quote_end=s.end,
                    )
                )
            marks.append(f"[{numbers_by_paragraph[p.id]}]")
        body = claim.text.rstrip()
        if body and body[-1] not in '.!?”"':
            body += "."
        parts.append(f"{body} {''.join(dict.fromkeys(marks))}".strip())
    return " ".join(parts), citations
