"""Evidence at sentence level, and the decision whether the evidence answers the question at all.

The model is small; what it reads must be little and relevant, and whether to answer cannot be
left to it. A question asks for something of a kind (a person, a date, a number, a place, a
reason); the evidence answers it only when a sentence that shares the question's key terms also
holds something of that kind that the question does not already contain. A similarity threshold
alone cannot tell "How many Peruvians live in Mexico?" from a sentence about Peruvians in Mexico.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from rag.embed import Embedder
from rag.sentences import split_clauses, split_sentences
from rag.text import (
    MONTHS,
    WEEKDAYS,
    capitalised_phrases,
    content_stems,
    fold,
    has_calendar_date,
    has_date,
    numbers,
    stem,
    words,
)
from rag.types import Evidence, Retrieved, Sentence

# --- the question ---------------------------------------------------------------------------

_INJECTION = re.compile(
    r"(ignore|disregard|forget|override)\b[^.?!]*\b(instructions?|prompts?|rules|above|previous|system)"
    r"|\b(you are now|act as|pretend to be|new instructions|system prompt|jailbreak)\b"
    r"|\b(reply|respond|answer|say|print|output|write)\s+(only\s+)?(with\s+)?[\"'“]?[A-Z0-9]{3,}\b[\"'”]?"
    r"|\bfrom your own knowledge\b|\bwithout (using |looking at )?the sources\b"
    r"|\bthe (correct |right |real )?answer is\b|\bdo(n't| not) cite\b"
    r"|^(say|reply|respond|answer|output|print|write)\b",
    re.IGNORECASE,
)


def strip_injection(question: str) -> tuple[str, bool]:
    """Remove sentences that try to give the assistant instructions; keep the actual question."""
    parts = re.split(r"(?<=[.?!:;])\s+", question.strip())
    kept = [p for p in parts if not _INJECTION.search(p)]
    if len(kept) == len(parts):
        return question.strip(), False
    return " ".join(kept).strip(), True


def is_instruction_like(text: str) -> bool:
    """Source text addressed to an AI ('Ignore previous instructions...') is never evidence."""
    return bool(re.search(r"\b(ignore|disregard)\b[^.]*\b(instructions?|prompts?)\b", text, re.I))


_TYPE_RULES: list[tuple[str, re.Pattern[str]]] = [
    (
        "reason",
        re.compile(r"^\s*why\b|\bfor what reason\b|\bwhat (was|is) the reason\b|\bwhy did\b", re.I),
    ),
    (
        "date",
        re.compile(
            r"^\s*when\b|\bwhat (date|day|year|month)\b|\bwhich (date|day|year|month)\b"
            r"|\bsince when\b|\bon what (date|day)\b|\bin (what|which) (year|month)\b",
            re.I,
        ),
    ),
    (
        "number",
        re.compile(
            r"\bhow (many|much|long|old)\b|\bwhat age\b|\bhow many years\b"
            r"|\bwhat (prison )?(sentence|term|penalty|percentage|number|amount)\b"
            r"|\bhow (big|large|high)\b",
            re.I,
        ),
    ),
    (
        "person",
        re.compile(
            r"^\s*(who|whom|whose|whos|who's)\b|\bwho\b"
            r"|\bwhich (official|minister|person|politician|"
            r"president|lawyer|leader)\b|\bname of\b|\bwhat is the name\b",
            re.I,
        ),
    ),
    (
        "place",
        re.compile(
            r"^\s*where\b|\bwhere\b|\bin which (city|country|place)\b|\bwhich (city|country)\b"
            r"|\bwhat (city|country)\b",
            re.I,
        ),
    ),
]


def answer_types(question: str) -> list[str]:
    """The kinds of answer asked for, in the order they are asked ('who ... and when ...')."""
    found: list[tuple[int, str]] = []
    for kind, rule in _TYPE_RULES:
        m = rule.search(question)
        if m:
            found.append((m.start(), kind))
    kinds = [k for _, k in sorted(found)]
    return kinds or ["other"]


def has_kind(text: str, kind: str, question: str) -> bool:
    """Does ``text`` hold an answer of this kind that the question does not already contain?"""
    match kind:
        case "number":
            return bool(numbers(text) - numbers(question)) or bool(
                re.search(r"\b(years?|months?|weeks?|days?)\b", fold(text)) and numbers(text)
            )
        case "date":
            return has_date(text) and (has_calendar_date(text) or not has_date(question))
        case "person" | "place":
            return bool(name_candidates(text, question, near_focus=kind == "person"))
        case "reason":
            return bool(
                re.search(
                    r"\b(because|after|over|due to|since|as a result|in response|"
                    r"accus\w*|for\b|over)\b",
                    fold(text),
                )
            )
        case _:
            return True


_TITLES = {
    "president",
    "minister",
    "foreign",
    "former",
    "prime",
    "mr",
    "mrs",
    "ms",
    "dr",
    "judge",
    "senator",
    "general",
    "lawyer",
    "ambassador",
    "leader",
    "the",
    "a",
    "an",
    "in",
    "on",
    "at",
    "after",
    "before",
    "when",
    "but",
    "and",
    "her",
    "his",
    "their",
    "its",
    "lima",
}
_NOT_NAMES = set(MONTHS) | set(WEEKDAYS)


def name_candidates(text: str, question: str, near_focus: bool, reach: int = 3) -> list[str]:
    """Capitalised names in ``text`` that the question does not already contain.

    For 'who' questions a name must stand within a few words of one of the question's own terms
    ('Her lawyer, Raúl Noblecilla'), or any name in a sentence that merely mentions the topic would
    pass for an answer ('...asylum at the Mexican ambassador's residence' does not say who the
    ambassador is).
    """
    qwords = set(words(question))
    focus = set(content_stems(question))
    tokens = [(m.start(), m.end(), m.group(0)) for m in re.finditer(r"[\w'’\-]+", text)]
    found = []
    for start, end, phrase in capitalised_phrases(text):
        parts = [w.split("'")[0] for w in words(phrase)]  # "Peru's" names Peru
        while parts and (
            parts[0] in _TITLES
            or parts[0] in _NOT_NAMES
            or (len(parts) > 1 and re.search(r"(an|ian|ese|ish)$", parts[0]))
        ):
            parts = parts[1:]
        parts = [w for w in parts if w not in _NOT_NAMES]
        if not parts or set(parts) <= qwords or fold(" ".join(parts)) in fold(question):
            continue
        if len(parts) == 1 and re.search(r"(an|ian|ese|ish)$", parts[0]):
            continue  # a demonym ('Mexican', 'Peruvian') describes, it does not name
        if near_focus:
            idx = [i for i, (s, e, _) in enumerate(tokens) if s >= start and e <= end]
            if not idx:
                continue
            # The phrase's own title words count: "Foreign Minister Hugo de Zela".
            lo, hi = max(0, idx[0] - reach), min(len(tokens), idx[-1] + 1 + reach)
            window = {stem(fold(t)) for _, _, t in tokens[lo:hi]}
            if not window & focus:
                continue
        found.append(" ".join(parts))
    return found


# --- the evidence -----------------------------------------------------------------------------


@dataclass
class Scored:
    sentence: Sentence
    coverage: float  # IDF-weighted share of the question's key terms found in the unit
    dense: float
    kinds: dict[str, bool]
    rank: int  # paragraph rank in retrieval
    tight: float = 0.0  # a name standing right by the question's own words ("Foreign Minister X")


def _units(retrieved: list[Retrieved]) -> list[tuple[Sentence, int]]:
    out: list[tuple[Sentence, int]] = []
    for rank, r in enumerate(retrieved):
        p = r.paragraph
        for s in split_sentences(p.text, p.start):
            if is_instruction_like(s.text):
                continue
            pieces = split_clauses(s) if len(s.text.split()) > 28 else [s]
            for piece in pieces:
                out.append(
                    (Sentence(text=piece.text, paragraph=p, start=piece.start, end=piece.end), rank)
                )
    return out


def _idf_weights(question_stems: list[str], units: list[tuple[Sentence, int]]) -> dict[str, float]:
    """Rarer question words weigh more: 'Noblecilla' says more than 'Peru' in this corpus."""
    docs = [set(content_stems(s.text)) for s, _ in units] or [set()]
    n = len(docs)
    return {t: math.log(1 + (n + 1) / (1 + sum(t in d for d in docs))) for t in set(question_stems)}


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=False))
    na = math.sqrt(sum(x * x for x in a)) or 1.0
    nb = math.sqrt(sum(y * y for y in b)) or 1.0
    return dot / (na * nb)


def score_units(
    question: str, retrieved: list[Retrieved], embedder: Embedder, kinds: list[str]
) -> list[Scored]:
    units = _units(retrieved)
    if not units:
        return []
    q_stems = content_stems(question)
    weights = _idf_weights(q_stems, units)
    total = sum(weights.values()) or 1.0
    vectors = embedder.texts([question] + [s.text for s, _ in units])
    qv = vectors[0]
    scored = []
    context: dict[str, set[str]] = {}
    for (s, rank), vec in zip(units, vectors[1:], strict=True):
        stems = set(content_stems(s.text))
        p = s.paragraph
        if p.id not in context:  # the paragraph and its article's title say what "it" and "he" are
            context[p.id] = set(content_stems(f"{p.title} {p.text}"))
        own = sum(w for t, w in weights.items() if t in stems) / total
        around = sum(w for t, w in weights.items() if t in context[p.id]) / total
        coverage = 0.65 * own + 0.35 * around
        tight = (
            0.15 if "person" in kinds and name_candidates(s.text, question, True, reach=1) else 0.0
        )
        scored.append(
            Scored(
                s,
                coverage,
                _cosine(qv, vec),
                {k: has_kind(s.text, k, question) for k in kinds},
                rank,
                tight,
            )
        )
    return scored


def _value(sc: Scored, kind: str) -> float:
    specific = kind != "other"
    kind_bonus = 0.35 if sc.kinds.get(kind) else (-0.5 if specific else 0.0)
    return 0.55 * sc.coverage + 0.45 * sc.dense + kind_bonus + sc.tight - 0.02 * sc.rank


# Thresholds read off the seed articles' development questions; the eval's unanswerable items
# keep them honest.
MIN_COVERAGE = 0.3
MIN_DENSE = 0.3
STRONG_COVERAGE = 0.55


def supports_kind(sc: Scored, kind: str) -> bool:
    if kind != "other" and not sc.kinds.get(kind):
        return False
    # Short clauses embed loosely: a strong word match stands on its own.
    return (sc.coverage >= MIN_COVERAGE and sc.dense >= MIN_DENSE) or sc.coverage >= STRONG_COVERAGE


def select_evidence(
    question: str, retrieved: list[Retrieved], embedder: Embedder, max_sentences: int = 3
) -> Evidence:
    """Pick the few sentences that answer the question, one per kind asked for, and decide."""
    kinds = answer_types(question)
    scored = score_units(question, retrieved, embedder, kinds)
    if not scored:
        return Evidence(
            question, kinds[0], [], retrieved, answerable=False, reason="nothing retrieved"
        )
    chosen: list[Scored] = []
    missing: list[str] = []
    for kind in kinds:
        best = max(scored, key=lambda sc: _value(sc, kind))
        if supports_kind(best, kind):
            if best not in chosen:
                chosen.append(best)
        else:
            missing.append(kind)
    # A weekday is not a date: when the best date sentence says only "Monday", look for the
    # sentence elsewhere (often in another article) that gives the calendar date.
    if "date" in kinds and chosen and not any(has_calendar_date(c.sentence.text) for c in chosen):
        days = {w for c in chosen for w in words(c.sentence.text) if w in WEEKDAYS}
        dated = [
            sc
            for sc in scored
            if has_calendar_date(sc.sentence.text)
            and (days & set(words(sc.sentence.text)) or sc.coverage >= MIN_COVERAGE)
        ]
        if dated:
            chosen.append(
                max(
                    dated,
                    key=lambda sc: (bool(days & set(words(sc.sentence.text))), _value(sc, "date")),
                )
            )
    if not chosen:
        best = max(scored, key=lambda sc: _value(sc, kinds[0]))
        reason = (
            f"no sentence both matches the question (coverage {best.coverage:.2f}, "
            f"similarity {best.dense:.2f}) and states a {'/'.join(missing or kinds)}"
        )
        related = sorted(scored, key=lambda sc: -_value(sc, kinds[0]))
        return Evidence(
            question,
            kinds[0],
            [r.sentence for r in _distinct(related)[:2]],
            retrieved,
            answerable=False,
            reason=reason,
        )
    for sc in chosen:
        sc.sentence.score = round(_value(sc, kinds[0]), 4)
    return Evidence(
        question,
        kinds[0],
        [c.sentence for c in chosen[:max_sentences]],
        retrieved,
        answerable=True,
        reason="",
    )


def _distinct(items: list[Scored]) -> list[Scored]:
    seen: set[str] = set()
    out = []
    for sc in items:
        if sc.sentence.paragraph.id not in seen:
            seen.add(sc.sentence.paragraph.id)
            out.append(sc)
    return out
