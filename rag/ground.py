"""Evidence at sentence level, and the decision whether the evidence answers the question at all.

The model is small; what it reads must be little and relevant, and whether to answer cannot be
left to it. Each part of a question asks for something of a kind (a person, a date, an age, a
place, a reason); the evidence answers it only when a sentence that shares the part's key words
also holds something of that kind that the question does not already contain. A similarity
threshold alone cannot tell "How many Peruvians live in Mexico?" from a sentence about Peruvians
in Mexico.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from rag.embed import Embedder
from rag.question import NUMERIC_KINDS, Part, parse, place_key
from rag.question import answer_types as answer_types  # re-exported: callers ask ground
from rag.question import strip_injection as strip_injection
from rag.sentences import split_clauses, split_sentences
from rag.text import (
    MONTHS,
    NUMBER_WORDS,
    WEEKDAYS,
    amount_tokens,
    amount_values,
    amounts,
    capitalised_phrases,
    content_stems,
    fold,
    has_calendar_date,
    has_date,
    stem,
    words,
)
from rag.types import Evidence, Retrieved, Sentence


def is_instruction_like(text: str) -> bool:
    """Source text addressed to an AI ('Ignore previous instructions...') is never evidence."""
    return bool(re.search(r"\b(ignore|disregard)\b[^.]*\b(instructions?|prompts?)\b", text, re.I))


# --- what a sentence holds ----------------------------------------------------------------------

_TITLES = frozenset(
    """president minister foreign former prime mr mrs ms dr judge senator general lawyer
    ambassador leader the a an in on at after before when but and her his their its while
    as if so then by with for from""".split()
)
# Capitalised words that make a phrase an institution, a document or a place, not a person.
_INSTITUTION = frozenset(
    """congress convention asylum court embassy ministry government party council committee
    commission union nations organization organisation agency bank university company
    corporation inc ltd department office police army senate assembly parliament republic
    kingdom states city province street avenue square palace house hall airport station treaty
    act law day news times post press ap afp reuters x""".split()
)
_LOCATIVE = frozenset("in at from to near between across outside inside into".split())
_NOT_NAMES = frozenset(MONTHS) | frozenset(WEEKDAYS)
_DEMONYM = re.compile(r"(an|ian|ese|ish)$")


def _tokens(text: str) -> list[tuple[int, int, str]]:
    return [(m.start(), m.end(), m.group(0)) for m in re.finditer(r"[\w'’\-]+", text)]


def _window(tokens: list[tuple[int, int, str]], start: int, end: int, reach: int) -> set[str]:
    idx = [i for i, (s, e, _) in enumerate(tokens) if s >= start and e <= end]
    if not idx:
        return set()
    lo, hi = max(0, idx[0] - reach), min(len(tokens), idx[-1] + 1 + reach)
    return {stem(fold(t)) for _, _, t in tokens[lo:hi]}


def _free_mention(text: str, key: str) -> bool:
    """The place named as itself ('Peru's government', 'Peru would not'), not as the adjective
    of another name ('Mexican President Claudia Sheinbaum', 'Mexico City')."""
    tokens = _tokens(text)
    for i, (_, _, tok) in enumerate(tokens):
        if tok[:1].isupper() and place_key(tok) == key:
            nxt = tokens[i + 1][2] if i + 1 < len(tokens) else ""
            if not nxt[:1].isupper():
                return True
    return False


def name_candidates(
    text: str,
    question: str,
    near_focus: bool,
    reach: int = 3,
    part: Part | None = None,
    sentence: str | None = None,
    title: str = "",
) -> list[str]:
    """Names of people in ``text`` that the question does not already contain.

    For 'who' questions a name must stand within a few words of the role asked about ('Her
    lawyer, Raúl Noblecilla'), or, with no role, of one of the question's own words; otherwise any
    name in a sentence that merely mentions the topic would pass for an answer. A role with an
    owner ('Mexico's ambassador') also needs the owner named in the sentence as itself.
    """
    qwords = {w.split("'")[0] for w in words(question)}
    focus = (
        {t for t, w in part.weights.items() if w >= 1.0} if part else set(content_stems(question))
    )
    tokens = _tokens(text)
    found = []
    for start, end, phrase in capitalised_phrases(text):
        parts = [w.split("'")[0] for w in words(phrase)]  # "Peru's" names Peru
        while parts and (
            parts[0] in _TITLES
            or parts[0] in _NOT_NAMES
            or (len(parts) > 1 and _DEMONYM.search(parts[0]) and parts[0] not in qwords)
        ):
            parts = parts[1:]
        parts = [w for w in parts if w not in _NOT_NAMES]
        if not parts or set(parts) & qwords or fold(" ".join(parts)) in fold(question):
            continue  # the question's own subject, or part of its name
        if set(parts) & _INSTITUTION:
            continue
        if len(parts) == 1 and _DEMONYM.search(parts[0]) and len(parts[0]) > 4:
            continue  # a demonym ('Mexican', 'Peruvian') describes, it does not name
        before = [fold(t) for s, _, t in tokens if s < start][-1:]
        if len(parts) == 1 and before and before[0] in _LOCATIVE:
            continue  # "in Lima": a place
        if near_focus:
            role = part.role if part else None
            window = _window(tokens, start, end, reach)
            if role is not None:
                if role not in window or (part and part.role_kind and part.role_kind not in window):
                    continue
                if (
                    part
                    and part.possessor
                    and not _owner_named(sentence or text, text, part.possessor, role, title)
                ):
                    continue
            elif not window & focus:
                continue
        found.append(" ".join(parts))
    return found


def _owner_named(sentence: str, unit: str, possessor: str, role: str, title: str = "") -> bool:
    """Is the role in ``unit`` the possessor's? 'Mexico's foreign minister', 'Mexican envoy X',
    'president of Peru' say so; 'Peruvian prime minister X' says it is someone else's; a bare
    'Foreign Minister X' belongs to whoever the sentence names as itself."""
    tokens = _tokens(unit)
    key = place_key(possessor)
    for i, (_, _, tok) in enumerate(tokens):
        if stem(fold(tok)) != role:
            continue
        before = [t for _, _, t in tokens[max(0, i - 3) : i]]
        after = [fold(t) for _, _, t in tokens[i + 1 : i + 3]]
        owners = [
            t
            for t in before
            if fold(t) not in _TITLES
            and (t.endswith(("'s", "’s")) or (t[:1].isupper() and fold(t) not in _TITLES))
        ]
        if len(after) == 2 and after[0] == "of":
            owners.append(after[1])
        if owners:
            return any(place_key(o) == key for o in owners)
        if {"his", "her"} & {fold(t) for t in before[-2:]}:
            return True  # "Her lawyer, Raúl Noblecilla": the owner was named before
    if _free_mention(sentence, key):
        return True
    # A sentence naming no country at all ("Foreign Minister X announced the decision") speaks of
    # the country its headline is about: the headline's first name ("Peru breaks off ...").
    title_names = [t for _, _, t in _tokens(title) if t[:1].isupper() and fold(t) not in _TITLES]
    if not title_names:
        return False
    keys = {place_key(t) for t in title_names}
    mentions = [t for _, _, t in _tokens(sentence)[1:] if t[:1].isupper() and place_key(t) in keys]
    return not mentions and place_key(title_names[0]) == key


_UNIT = r"(?:years?|months?|weeks?|days?|hours?|decades?)"
_AMOUNT = r"(?:\d+(?:[.,]\d+)?|" + "|".join(sorted(NUMBER_WORDS)) + r"|few|several|a couple of)"


def has_kind(text: str, kind: str, question: str, part: Part | None = None) -> bool:
    """Does ``text`` hold an answer of this kind that the question does not already contain?"""
    f = fold(text)
    if part is None:
        part = next((p for p in parse(question) if p.kind == kind), None)
    match kind:
        case "number":
            return bool(amount_values(text) - amount_values(question))
        case "age":
            return bool(
                re.search(r"[A-Z][\w'’]+,\s*\d{1,3},", text)
                or re.search(r"\baged?\s+\d{1,3}\b|\b\d{1,3}[- ]years?[- ]old\b", f)
            )
        case "duration":
            return bool(re.search(rf"\b{_AMOUNT}(?:[- ]\w+)?\s+{_UNIT}\b", f))
        case "count":
            head = part.head if part else None
            if head is None:
                return bool(amount_values(text) - amount_values(question))
            toks = amount_tokens(text)  # the thing counted follows its number: "34 years"
            return any(
                head in {stem(w) for w in toks[i].split("-")[1:] + toks[i + 1 : i + 4]}
                for i, _ in amounts(text)
            )
        case "date":
            return (
                has_date(text)
                and (has_calendar_date(text) or not has_date(question))
                and (part is None or _dated_near(text, part))
            )
        case "person":
            return bool(name_candidates(text, question, near_focus=True, part=part))
        case "place":
            return bool(place_phrases(text, question, part))
        case "reason":
            return bool(
                re.search(
                    r"\b(because|after|over|due to|since|as a result|in response|"
                    r"accus\w*|for|refused|so that)\b",
                    f,
                )
            )
        case _:
            return True


_DATE_WORD = re.compile(r"^(?:" + "|".join(MONTHS + WEEKDAYS) + r"|(?:1[89]|20)\d\d)$")


def _dated_near(text: str, part: Part) -> bool:
    """The date stands by what the question says happened then: 'a court ordered her release'
    next to 'September' dates the release, not 'her next court hearing'."""
    names = {t for n in part.names for t in n}
    names |= {stem(w) for _, _, n in capitalised_phrases(part.text) for w in words(n)}
    focus = {t for t, w in part.weights.items() if w >= 1.0} - names
    if not focus:
        return True
    toks = [stem(fold(t)) for _, _, t in _tokens(text)]
    near: set[str] = set()
    for i, (_, _, t) in enumerate(_tokens(text)):
        if _DATE_WORD.match(fold(t)):
            near.update(toks[max(0, i - 8) : i + 9])
    return len(focus & near) / len(focus) >= 0.4


_PLACE_NOUNS = (
    r"(?:embassy|residence|capital|city|country|house|palace|office|building|prison|court|"
    r"consulate|headquarters|ministry|hospital|airport|border|region|province|village|town)"
)


def place_phrases(text: str, question: str, part: Part | None = None) -> list[str]:
    """Where something happened: 'at the Mexican ambassador's residence', 'in Lima'; standing
    within a few words of what the question says happened there ('sought asylum at ...'), not
    only of whom it is about ('Chávez sought asylum at ...' does not say where she was born)."""
    f = fold(text)
    spans = [
        (m.start(), m.end())
        for m in re.finditer(
            rf"\b(?:in|at|to|into|inside|from|near)\s+(?:the\s+)?(?:[\w'’-]+\s+){{0,3}}?"
            rf"{_PLACE_NOUNS}\b",
            f,
        )
    ]
    qwords = set(words(question))
    for m in re.finditer(
        r"\b(?:in|at|to|into|from|near)\s+([A-Z][\w'’-]+(?:\s+[A-Z][\w'’-]+)*)", text
    ):
        if not set(words(m.group(1))) & qwords and fold(m.group(1)) not in _NOT_NAMES:
            spans.append((m.start(), m.end()))
    if part is None:
        return [text[s:e] for s, e in spans]
    names = {stem(w) for _, _, n in capitalised_phrases(part.text) for w in words(n)}
    focus = {t for t, w in part.weights.items() if w >= 1.0} - names
    tokens = _tokens(text)
    return [text[s:e] for s, e in spans if _window(tokens, s, e, 4) & focus]


# --- the evidence -----------------------------------------------------------------------------


_PRONOUN = re.compile(r"\b(he|she|his|her|him|it|its|they|their)\b", re.I)


@dataclass
class Scored:
    sentence: Sentence
    coverage: float  # weighted share of the part's key terms found in the unit and around it
    dense: float
    supports: bool  # holds an answer of the kind the part asks for
    rank: int  # paragraph rank in retrieval
    bonus: float = 0.0  # the thing asked about named; a name right by the question's words
    names_head: bool = False  # names the thing asked about ("charge" for "what charge")


@dataclass
class Unit:
    sentence: Sentence
    rank: int
    full: str  # the whole sentence a clause came from: the owner of a role may stand there


def _units(retrieved: list[Retrieved]) -> list[Unit]:
    out: list[Unit] = []
    for rank, r in enumerate(retrieved):
        p = r.paragraph
        for s in split_sentences(p.text, p.start):
            if is_instruction_like(s.text):
                continue
            pieces = split_clauses(s) if len(s.text.split()) > 28 else [s]
            for piece in pieces:
                sentence = Sentence(text=piece.text, paragraph=p, start=piece.start, end=piece.end)
                out.append(Unit(sentence, rank, s.text))
    return out


def _idf(units: list[Unit]) -> dict[str, float]:
    """Rarer words weigh more: 'Noblecilla' says more than 'Peru' in this corpus."""
    docs = [set(content_stems(u.sentence.text)) for u in units] or [set()]
    n = len(docs)
    df: dict[str, int] = {}
    for d in docs:
        for t in d:
            df[t] = df.get(t, 0) + 1
    return {t: math.log(1 + (n + 1) / (1 + c)) for t, c in df.items()} | {"": math.log(n + 2)}


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=False))
    na = math.sqrt(sum(x * x for x in a)) or 1.0
    nb = math.sqrt(sum(y * y for y in b)) or 1.0
    return dot / (na * nb)


def score_units(
    part: Part,
    units: list[Unit],
    unit_vectors: list[list[float]],
    part_vector: list[float],
    idf: dict[str, float],
) -> list[Scored]:
    # A word no source uses weighs most: a question about something the sources never mention
    # ("the population of Lima") must not pass on its other words.
    unseen = idf[""]
    weights = {t: w * idf.get(t, unseen) for t, w in part.weights.items()}
    total = sum(weights.values()) or 1.0
    context: dict[str, set[str]] = {}
    scored = []
    for u, vec in zip(units, unit_vectors, strict=True):
        s = u.sentence
        stems = set(content_stems(s.text))
        p = s.paragraph
        if _PRONOUN.search(s.text):  # "He said ...": the name said before stands for "he"
            before = p.text[: max(0, s.start - p.start)]
            stems |= {stem(w) for _, _, n in capitalised_phrases(before) for w in words(n)}
        stems = _whole_names(stems, part)
        if p.id not in context:  # the paragraph and its article's title say what "it" and "he" are
            context[p.id] = _whole_names(set(content_stems(f"{p.title} {p.text}")), part)
        own = sum(w for t, w in weights.items() if t in stems) / total
        around = sum(w for t, w in weights.items() if t in context[p.id]) / total
        names_head = bool(part.head and part.head in stems)
        bonus = 0.1 if names_head else 0.0
        if part.kind in NUMERIC_KINDS:  # one number answers "how many" best; two invite a mix-up
            bonus -= 0.05 * max(0, len({v for _, v in amounts(s.text)}) - 1)
        if part.kind == "date" and has_calendar_date(s.text):
            bonus += 0.1  # "on what date" is answered by a date, better than by "on Monday"
        names: list[str] = []
        if part.kind == "person":
            names = name_candidates(
                s.text, part.text, True, part=part, sentence=u.full, title=p.title
            )
            if part.role is None and name_candidates(s.text, part.text, True, 1, part, u.full):
                bonus += 0.15
            people = set(name_candidates(s.text, part.text, False))
            bonus -= 0.05 * max(0, len(people | set(names)) - 1)  # one name answers "who" best
        scored.append(
            Scored(
                s,
                0.65 * own + 0.35 * around,
                _cosine(part_vector, vec),
                _holds(s.text, part, stems, names),
                u.rank,
                bonus,
                names_head,
            )
        )
    return scored


_EXPECTED = re.compile(
    r"\b(?:is|are|was|were)\s+(?:expected|scheduled|due|set|likely|going)\s+to\b"
)
_PAST_QUESTION = re.compile(r"\b(?:did|has|have|had)\b|\bwas\s+\w+ed\b", re.I)


def _whole_names(stems: set[str], part: Part) -> set[str]:
    """'Chávez' names Betssy Chávez: one word of a name the question uses stands for all of it."""
    for name in part.names:
        if stems & name:
            stems = stems | name
    return stems


def _holds(text: str, part: Part, stems: set[str], names: list[str]) -> bool:
    """``names``: the people ``text`` names for a "who" part (computed once by the caller)."""
    if part.attribute and part.attribute not in stems:
        return False
    if _PAST_QUESTION.search(part.text) and _EXPECTED.search(fold(text)):
        return False  # "was expected to debate" does not say how the vote went
    if part.kind == "person":
        return bool(names)
    return has_kind(text, part.kind, part.text, part)


def _value(sc: Scored, part: Part) -> float:
    specific = part.kind != "other" or part.attribute is not None
    kind_bonus = 0.35 if sc.supports else (-0.5 if specific else 0.0)
    return 0.55 * sc.coverage + 0.45 * sc.dense + kind_bonus + sc.bonus - 0.02 * sc.rank


# Thresholds read off the seed articles' development questions; the eval's unanswerable items
# keep them honest.
MIN_COVERAGE = 0.3
MIN_DENSE = 0.3
STRONG_COVERAGE = 0.55


def supports_part(sc: Scored, part: Part) -> bool:
    if not sc.supports:
        return False
    if (part.kind in NUMERIC_KINDS or sc.names_head) and sc.coverage >= MIN_COVERAGE:
        return True  # "Chávez, 36, led ...": a typed answer by the question's words; short
        # clauses with numbers embed too loosely for the similarity to say more
    # Short clauses embed loosely: a strong word match stands on its own.
    return (sc.coverage >= MIN_COVERAGE and sc.dense >= MIN_DENSE) or sc.coverage >= STRONG_COVERAGE


_VECTORS: dict[tuple[str, str, str], list[float]] = {}
_VECTORS_MAX = 50_000


def _embed(embedder: Embedder, texts: list[str]) -> list[list[float]]:
    """Sentence vectors, remembered: the same paragraphs come back question after question."""
    key = (embedder.backend, embedder.address)
    todo = list(dict.fromkeys(t for t in texts if (*key, t) not in _VECTORS))
    if todo:
        if len(_VECTORS) + len(todo) > _VECTORS_MAX:
            _VECTORS.clear()
        for t, v in zip(todo, embedder.texts(todo), strict=True):
            _VECTORS[(*key, t)] = v
    return [_VECTORS[(*key, t)] for t in texts]


def select_evidence(
    question: str, retrieved: list[Retrieved], embedder: Embedder, max_sentences: int = 3
) -> Evidence:
    """Pick the few sentences that answer the question, one per part, and decide."""
    parts = parse(question)
    kinds = [p.kind for p in parts]
    units = _units(retrieved)
    if not units:
        return Evidence(
            question, kinds[0], [], retrieved, answerable=False, reason="nothing retrieved"
        )
    vectors = _embed(embedder, [p.text for p in parts] + [u.sentence.text for u in units])
    unit_vectors = vectors[len(parts) :]
    idf = _idf(units)  # one corpus of sentences for all parts of the question
    chosen: list[Scored] = []
    missing: list[Part] = []
    first: list[Scored] = []
    for i, part in enumerate(parts):
        scored = score_units(part, units, unit_vectors, vectors[i], idf)
        first = first or scored
        for sc in scored:  # another part asks something else: prefer other evidence for it
            if any(c.sentence.start == sc.sentence.start for c in chosen):
                sc.bonus -= 0.2
        best = max(scored, key=lambda sc, part=part: _value(sc, part))
        if not supports_part(best, part):
            missing.append(part)
            continue
        if all(c.sentence.start != best.sentence.start for c in chosen):
            chosen.append(best)
        if part.kind == "date" and not has_calendar_date(best.sentence.text):
            dated = _calendar_date_for(best, scored, part)
            if dated is not None:
                chosen.append(dated)
    if not chosen:
        best = max(first, key=lambda sc: _value(sc, parts[0]))
        reason = (
            f"no sentence both matches the question (coverage {best.coverage:.2f}, "
            f"similarity {best.dense:.2f}) and states a {'/'.join(p.kind for p in missing)}"
        )
        related = sorted(first, key=lambda sc: -_value(sc, parts[0]))
        return Evidence(
            question,
            kinds[0],
            [r.sentence for r in _distinct(related)[:2]],
            retrieved,
            answerable=False,
            reason=reason,
        )
    for sc in chosen:
        sc.sentence.score = round(_value(sc, parts[0]), 4)
    return Evidence(
        question,
        kinds[0],
        [c.sentence for c in chosen[:max_sentences]],
        retrieved,
        answerable=True,
        reason="; ".join(f"no evidence for {p.text!r}" for p in missing),
        missing=[p.text for p in missing],
    )


def _calendar_date_for(best: Scored, scored: list[Scored], part: Part) -> Scored | None:
    """A weekday is not a date: when the best date sentence says only "Monday", the sentence
    elsewhere (often in another article) that gives the calendar date completes it."""
    days = {w for w in words(best.sentence.text) if w in WEEKDAYS}
    dated = [
        sc
        for sc in scored
        if has_calendar_date(sc.sentence.text)
        and (days & set(words(sc.sentence.text)) or sc.coverage >= MIN_COVERAGE)
    ]
    if not dated:
        return None
    return max(dated, key=lambda sc: (bool(days & set(words(sc.sentence.text))), _value(sc, part)))


def _distinct(items: list[Scored]) -> list[Scored]:
    seen: set[str] = set()
    out = []
    for sc in items:
        if sc.sentence.paragraph.id not in seen:
            seen.add(sc.sentence.paragraph.id)
            out.append(sc)
    return out
