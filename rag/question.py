"""What a question asks for: its parts, the kind of answer each wants, and the words that matter.

Evidence selection needs more than a bag of words. "On what date did Peru announce it, and who
announced it?" is two questions, each answered by a different sentence; "How old is she?" wants a
number that is an age, not the year in the same sentence; "Who is Mexico's ambassador?" is
answered by a name standing by the word *ambassador* and tied to Mexico, not by any name in a
sentence about ambassadors. This module reads those facts off the question text; ``ground``
scores sentences against them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rag.text import capitalised_phrases, content_stems, fold, stem

_INJECTION = re.compile(
    r"(ignore|disregard|forget|override)\b[^.?!]*\b(instructions?|prompts?|rules|above|previous|system|"
    r"sources?|articles?|documents?|context)"
    r"|\b(you are now|act as|pretend to be|new instructions|system prompt|jailbreak)\b"
    r"|\b(reply|respond|answer|say|print|output|write)\s+(only\s+)?(with\s+)?[\"'“]?(?-i:[A-Z0-9]{3,})\b[\"'”]?"
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


# Chat spelling of question words; the spelling corrector leaves them alone because "wat" and
# "wen" are words of their own.
_WH_SPELLING = {
    "wat": "what",
    "wot": "what",
    "wich": "which",
    "whitch": "which",
    "wen": "when",
    "wher": "where",
    "whos": "who is",
    "who's": "who is",
    "hw": "how",
}


def normalise_wh(question: str) -> str:
    def fix(m: re.Match[str]) -> str:
        return _WH_SPELLING.get(m.group(0).lower(), m.group(0))

    return re.sub(r"\b[\w']+\b", fix, question.replace("’", "'"))


_TYPE_RULES: list[tuple[str, re.Pattern[str]]] = [
    ("reason", re.compile(r"^\s*why\b|\bfor what reason\b|\bwhat (was|is) the reason\b", re.I)),
    (
        "date",
        re.compile(
            r"^\s*when\b|\bwhat (date|day|year|month)\b|\bwhich (date|day|year|month)\b"
            r"|\bsince when\b|\bon what (date|day)\b|\bin (what|which) (year|month)\b",
            re.I,
        ),
    ),
    ("age", re.compile(r"\bhow old\b|\bwhat age\b|\bat what age\b", re.I)),
    ("duration", re.compile(r"\b(for )?how long\b", re.I)),
    ("count", re.compile(r"\bhow many\b", re.I)),
    (
        "number",
        re.compile(
            r"\bhow much\b|\bwhat (prison )?(sentence|term|penalty|percentage|number|amount)\b"
            r"|\bhow (big|large|high)\b",
            re.I,
        ),
    ),
    (
        "person",
        re.compile(
            r"^\s*(who|whom|whose)\b|\bwho\b|\bwhich (official|minister|person|politician|"
            r"president|lawyer|leader|judge|ambassador)\b|\bname of\b|\bwhat is the name\b",
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
# Words that only say which kind of answer is wanted.
_TRIGGERS = {
    "age": ("old", "age"),
    "duration": ("long",),
    "count": ("many",),
    "date": ("date", "day", "year", "month"),
    "person": ("name",),
    "place": ("city", "country", "place"),
    "number": ("much", "number", "amount"),
}
_ALL_TRIGGERS = frozenset(t for words in _TRIGGERS.values() for t in content_stems(" ".join(words)))
NUMERIC_KINDS = frozenset({"number", "age", "duration", "count"})


def answer_types(question: str) -> list[str]:
    """The kinds of answer asked for, in the order they are asked ('who ... and when ...')."""
    question = normalise_wh(question)
    found: list[tuple[int, str]] = []
    for kind, rule in _TYPE_RULES:
        m = rule.search(question)
        if m:
            found.append((m.start(), kind))
    kinds = [k for _, k in sorted(found)]
    return kinds or ["other"]


# Nouns that name what a person is; a "who is X's <role>" question is answered by a name that
# stands by the role word, not by any name in a sentence on the topic.
ROLES = frozenset(
    """president minister lawyer attorney judge ambassador prosecutor spokesman spokeswoman
    spokesperson mayor governor chief director secretary chairman chairwoman ceo founder wife
    husband son daughter mother father driver successor predecessor premier chancellor king queen
    envoy consul senator deputy head""".split()
)
_GENERIC_ROLES = frozenset({"leader", "official", "politician", "person", "figure", "people"})
_ROLE_ADJECTIVES = frozenset(
    """foreign prime current former new interior finance defence defense justice vice deputy
    chief acting the a an""".split()
)
_ROLE_KINDS = frozenset("foreign prime interior finance defence defense justice vice".split())
_AUX = frozenset(
    """is are was were does do did will would can could has have had might may should must
    shall been be""".split()
)
_PREPOSITIONS = frozenset(
    "between of in on at for to from with by under over about against during since".split()
)


@dataclass
class Part:
    """One question inside the question, with what its answer must look like."""

    text: str
    kind: str
    weights: dict[str, float] = field(default_factory=dict)  # stem -> weight (before IDF)
    head: str | None = None  # stem of the thing asked about: "what charge" -> "charg"
    role: str | None = None  # stem of the role a "who is" question names: "minist"
    possessor: str | None = None  # whose role: "Mexico's ambassador" -> "mexico"
    names: list[set[str]] = field(default_factory=list)  # stems of each name: {betssi, chavez}
    role_kind: str | None = None  # "foreign" in "foreign minister": must match too
    attribute: str | None = None  # "what is the population of Lima" -> "popul": must be named


def _head_noun(part: str) -> str | None:
    """'What criminal charge does ...' -> 'charge'; 'How many Peruvians live ...' -> 'Peruvians'."""
    m = re.search(r"\b(?:what|which|how many)\s+((?:[\w'-]+\s+){0,3})", part, re.I)
    if not m:
        return None
    head = None
    for w in m.group(1).split():
        lw = fold(w)
        if lw in _AUX or lw in _PREPOSITIONS:
            break
        head = lw
    return head


def _role(part: str) -> tuple[str | None, str | None, str | None]:
    """The role and its possessor in 'Who is Mexico's ambassador in Lima?' / 'the name of the
    judge' / 'Which minister ...'. Generic words ('leader', 'official') are no role."""
    m = re.search(
        r"\bwho\s+(?:is|was|are|were)\s+(?:the\s+)?(.+)$|\bname of (?:the\s+)?(.+)$"
        r"|\bwhich\s+(.+)$",
        part,
        re.I,
    )
    if not m:
        return None, None, None
    phrase = next(g for g in m.groups() if g)
    tokens = re.findall(r"[\w'’-]+", phrase)
    for i, tok in enumerate(tokens):
        lw = fold(tok).replace("’", "'")
        if lw in _GENERIC_ROLES or lw in _AUX:
            return None, None, None
        if lw in ROLES:
            possessor = None
            for t in tokens[max(0, i - 3) : i]:
                b = fold(t).replace("’", "'")
                if b in _ROLE_ADJECTIVES or b in _AUX:
                    continue
                if b.endswith("'s") or t[:1].isupper():  # "Mexico's", "Mexican", "Peru"
                    possessor = b.removesuffix("'s")
            after = [fold(t) for t in tokens[i + 1 : i + 3]]
            if len(after) == 2 and after[0] == "of":
                possessor = after[1]
            prev = fold(tokens[i - 1]) if i else ""
            modifier = prev if prev in _ROLE_KINDS else None  # a foreign, not a prime, minister
            return stem(lw), possessor, modifier
    return None, None, None


def place_key(word: str) -> str:
    """'Mexico', 'Mexico's', 'Mexican' -> 'mexi': a country and its demonym share a key."""
    return fold(word).replace("’", "'").removesuffix("'s")[:4]


_CONTEXT = re.compile(r"^(.*?)\s*\(([^()]*)\)\s*\??\s*$", re.S)
_SPLIT = re.compile(
    r",?\s+and\s+(?=(?:who|whom|whose|what|when|where|which|why|how|on what|in what|at what|"
    r"under which|for how)\b)",
    re.I,
)
CONTEXT_WEIGHT = 0.35  # words from the conversation or the question's other part
_PRONOUN = re.compile(r"\b(she|he|her|him|his|they|them|their)\b", re.I)
# "What is the population of Lima?" asks for an attribute the sources must name; "Which treaty
# ..." asks for an instance, which they may name otherwise ("the Caracas Convention").
_ATTRIBUTE = re.compile(r"\bwhat\s+(?:is|was|are|were)\s+(?:the\s+)?([a-z]+)\s+of\b", re.I)


def parse(question: str) -> list[Part]:
    """Split into parts, each with its kind and weighted key words.

    A follow-up resolved as "question (topic words)" carries its topic in parentheses: those words
    say what the conversation is about, and weigh less than the question's own words.
    """
    question = normalise_wh(question)
    m = _CONTEXT.match(question)
    main, context = (m.group(1), m.group(2)) if m else (question, "")
    pieces = [p.strip(" ,") for p in _SPLIT.split(main) if p.strip(" ,")] or [main]
    parts = []
    for i, piece in enumerate(pieces):
        weights: dict[str, float] = {}
        others = " ".join(p for j, p in enumerate(pieces) if j != i)
        for t in content_stems(f"{others} {context}"):
            if t not in _ALL_TRIGGERS:
                weights[t] = CONTEXT_WEIGHT
        if _PRONOUN.search(piece):  # "and how old is she?": she is the other part's person
            for _, _, name in capitalised_phrases(others):
                for t in content_stems(name):
                    weights[t] = 1.0
        kind = answer_types(piece)[0]
        triggers = set(content_stems(" ".join(_TRIGGERS.get(kind, ()))))
        for t in content_stems(piece):
            if t not in triggers:  # "old" in "how old" names the kind, not the topic
                weights[t] = 1.0
        role, possessor, modifier = _role(piece) if kind == "person" else (None, None, None)
        head = _head_noun(piece)
        attribute = _ATTRIBUTE.search(piece)
        parts.append(
            Part(
                text=piece,
                kind=kind,
                weights=weights,
                head=stem(head) if head else None,
                role=role,
                possessor=possessor,
                role_kind=stem(modifier) if modifier else None,
                names=[
                    set(content_stems(n))
                    for _, _, n in capitalised_phrases(f"{piece} {others}")
                    if len(content_stems(n)) > 1
                ],
                attribute=stem(fold(attribute.group(1))) if attribute else None,
            )
        )
    return parts
