"""The kind of answer a question wants, and whether a sentence holds one: language-general rules.

Only grammar lives here, nothing about a topic: question words ("who", "when", "how many"),
the grammar of numbers and of dates of any era ("430 BC", "the 12th century", "in 1066"),
and names (capitalised words that do not open the sentence). Which sentence answers is decided
by the fitted selector (``rag/selector.py``); these rules only give it one of its signals.

>>> question_kind("Which scientist showed that genes sit on chromosomes?")
'person'
>>> holds_kind("In 1910 Morgan showed that genes sit on chromosomes.", "person",
...            "Which scientist showed that genes sit on chromosomes?")
True
"""

from __future__ import annotations

import re

from rag.text import MONTHS, NUMBER_WORDS, WEEKDAYS, fold, words

KINDS = ("person", "date", "number", "place", "other")

_WH = [
    ("date", r"^\s*when\b|\bwhen\s+(?:did|was|were|is|does|do|will|had|has)\b"
     r"|\b(?:what|which|in what|in which|on what|since what)\s+(?:year|date|day|month|century|"
     r"decade|period|era|time)s?\b|\bsince when\b|\bhow long ago\b"),
    ("number", r"\bhow\s+(?:many|much|long|old|far|big|large|high|tall|deep|wide|often|fast|"
     r"heavy)\b|\bwhat(?:'s|\s+(?:is|was|are|were))?\s+(?:the\s+)?(?:percentage|percent|proportion|"
     r"number|amount|size|age|population|fraction|share|speed|distance|length|height)\b"),
    ("person", r"^\s*(?:who|whom|whose)\b|\bwho\s+(?:is|was|were|are|did|had|has|led|wrote)\b"
     r"|\b(?:what|which)\s+(?:\w+\s+)?(?:person|people|man|woman|men|women)\b"
     r"|\bname of the (?:\w+\s+)?(?:\w+(?:ist|er|or|ian|ant|ent))\b"),
    ("place", r"^\s*where\b|\bwhere\s+(?:did|was|were|is|are|does|do)\b"
     r"|\b(?:what|which|in what|in which)\s+(?:\w+\s+)?(?:city|country|place|region|town|"
     r"state|continent|island|location|area|province|nation|village|river|county)\b"),
]
_WH_RULES = [(k, re.compile(p, re.I)) for k, p in _WH]
# "Which scientist", "which emperor", "what politician": a noun for someone who does something,
# read off its ending (-ist, -er, -or, -ian, -ant, -ent), not off a list of this topic's roles.
_AGENT = re.compile(r"\b(?:which|what)\s+(?:\w+\s+)?(\w+(?:ist|er|or|ian|ant|ent))s?\b", re.I)
# Words with an agent ending that name no person ("which number", "what order").
_NOT_AGENTS = frozenset(
    """number order member other after under water paper letter matter chapter center centre
    border power layer river winter summer quarter meter metre factor sector error color colour
    member manner character percent cent event content extent component element segment
    government movement treatment agreement amendment parliament department instrument
    argument document statement settlement development environment equipment investment
    management employment moment comment current""".split()
)


def question_kind(question: str) -> str:
    """person, date, number, place or other, read off the question words.

    The earliest rule that matches decides, so "How many years after the war did Morgan ...?"
    wants a number and "When did the war end?" a date.
    """
    found = [(m.start(), k) for k, rule in _WH_RULES if (m := rule.search(question))]
    agent = _AGENT.search(question)
    if agent and fold(agent.group(1)) not in _NOT_AGENTS:
        found.append((agent.start(), "person"))
    if not found:
        return "other"
    return min(found)[1]


# --- numbers and dates ------------------------------------------------------------------------

_MONTHS = "|".join(MONTHS)
_ERA = r"(?:BC|BCE|AD|CE|B\.C\.|A\.D\.)"
_ORDINAL = r"(?:\d+(?:st|nd|rd|th)|first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|" \
    r"tenth|eleventh|twelfth|thirteenth|fourteenth|fifteenth|sixteenth|seventeenth|" \
    r"eighteenth|nineteenth|twentieth|twenty-first)"
_DATE_PATTERNS = [
    rf"\b\d{{1,4}}\s*{_ERA}(?![\w])",  # 430 BC, 79 AD
    r"\b(?:AD|CE)\s+\d{1,4}\b",
    rf"\b{_ORDINAL}[\s-]+(?:century|centuries|millennium)\b",
    r"\b\d{3,4}s\b",  # the 1990s, the 1600s
    rf"\b(?:{_MONTHS})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?\b",
    rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?(?:{_MONTHS})\b",
    rf"\b(?:{_MONTHS})\s+\d{{3,4}}\b",
]
_DATE_RE = re.compile("|".join(_DATE_PATTERNS), re.I)
_YEAR_CONTEXT = re.compile(
    r"\b(?:in|since|until|till|by|from|during|after|before|of|circa|c\.|around|between|and|to|"
    r"year|years|early|late|mid|summer|winter|spring|autumn|fall)\s+$",
    re.I,
)


def is_year(text: str, start: int, end: int) -> bool:
    """A bare three- or four-digit number that is a year, not a count.

    "in 1066" and "1066, the Normans" are years; "Some 2000 troops" and "1500 men" count
    something: a plain number followed by a lower-case word names how many of it there are.
    """
    token = text[start:end]
    if not token.isdigit() or not 3 <= len(token) <= 4 or token.startswith("0"):
        return False
    after = text[end:]
    nxt = re.match(r"\s+([A-Za-z][\w-]*)", after)
    before = text[:start]
    plausible = len(token) == 4 and 1000 <= int(token) <= 2199
    if _YEAR_CONTEXT.search(before):
        return not (nxt and nxt.group(1).islower() and nxt.group(1) not in _YEAR_FOLLOWERS)
    if plausible and nxt and _ARTICLE_BEFORE.search(before) and not _plural(nxt.group(1)):
        return True  # "a 2022 coup", "the 1969 landing": one thing, so not a count of them
    if nxt and nxt.group(1).islower() and nxt.group(1) not in _YEAR_FOLLOWERS:
        return False  # "2000 troops"
    return plausible


_IRREGULAR_PLURALS = frozenset(
    "men women children people feet teeth mice geese cattle police personnel staff".split()
)


def _plural(word: str) -> bool:
    w = word.lower()
    return w in _IRREGULAR_PLURALS or (w.endswith("s") and not w.endswith("ss"))


_ARTICLE_BEFORE = re.compile(r"\b(?:a|an|the|its|his|her|their|our|this|that)\s+$", re.I)


_YEAR_FOLLOWERS = frozenset(
    """and or but when while as after before until the a an to in on at by with which that
    was were is are had has have saw marked brought""".split()
)


def dates(text: str) -> list[str]:
    """Dates of any era: '430 BC', 'the 12th century', 'March 3', 'in 1066', 'the 1990s'."""
    found = [m.group(0) for m in _DATE_RE.finditer(text)]
    taken = [m.span() for m in _DATE_RE.finditer(text)]
    for m in re.finditer(r"\b\d{3,4}\b", text):
        if any(s <= m.start() < e for s, e in taken):
            continue
        if is_year(text, m.start(), m.end()):
            found.append(m.group(0))
    for w in words(text):
        if w in WEEKDAYS:
            found.append(w)
    return found


_NUM = re.compile(r"\b\d+(?:[.,]\d+)*(?:\s*(?:%|percent|per cent))?")


def quantities(text: str) -> list[str]:
    """Numbers that count or measure ('2000 troops', 'thirty-four', '12.5%'), not dates."""
    date_spans = [m.span() for m in _DATE_RE.finditer(text)]
    out = []
    for m in _NUM.finditer(text):
        if any(s <= m.start() < e for s, e in date_spans):
            continue
        if is_year(text, m.start(), m.end()):
            continue
        out.append(m.group(0).strip())
    for w in words(text):
        head = w.split("-")[0]
        if head in NUMBER_WORDS and head not in ("one", "half"):
            out.append(w)
    return out


# --- names and places -------------------------------------------------------------------------

_CAP = re.compile(r"(?<![\w'’-])[A-ZÀ-Ý][\w'’-]*(?:\s+(?:(?:de|del|la|van|von|da|di|le|of)\s+)?"
                  r"[A-ZÀ-Ý][\w'’-]*)*")
_LOCATIVE = re.compile(r"\b(?:in|at|from|to|near|into|across|throughout|within|towards?)\s+"
                       r"(?:the\s+)?$", re.I)
_NOT_NAMES = frozenset(MONTHS) | frozenset(WEEKDAYS) | frozenset(
    "i the a an in on at he she it they we his her its their this that these those".split()
)


def names(text: str) -> list[tuple[int, str]]:
    """Capitalised phrases that are names: (start, phrase). A capital that only opens the
    sentence is no name unless the next word is capitalised too ('Isaac Newton showed ...')."""
    out = []
    for m in _CAP.finditer(text):
        phrase = m.group(0)
        toks = phrase.split()
        opening = not text[: m.start()].strip() or text[: m.start()].rstrip()[-1:] in ".!?\"“:"
        if opening and len(toks) == 1:
            continue
        if opening and fold(toks[0]) in _NOT_NAMES:
            toks = toks[1:]
        toks = [t for t in toks if fold(t) not in _NOT_NAMES]
        if not toks or all(fold(t) in _NOT_NAMES for t in toks):
            continue
        out.append((m.start(), " ".join(toks)))
    return out


def places(text: str) -> list[str]:
    """Names after a locative preposition: 'in Normandy', 'at the Palace of Holyroodhouse'."""
    return [p for s, p in names(text) if _LOCATIVE.search(text[:s])]


def _new(found: list[str], question: str) -> bool:
    q = set(words(question))
    return any(not set(words(f)) <= q for f in found if words(f))


# "How much will the bridge cost?" asks for a sum of money, not any number ("four traffic
# lanes"): a price, cost, fee or payment is an amount with a currency (English words for the
# world's currencies and their signs, or millions and billions of something unnamed).
_ASKS_MONEY = re.compile(
    r"\bhow\s+much\b.*\b(?:cost|costs|costing|pay|pays|paid|paying|spend|spends|spent|"
    r"charge|charges|charged|worth|sell|sold|buy|bought|earn|earns|earned|owe|owes|owed|fund|"
    r"funds|funded)\b"
    r"|\bwhat\s+(?:is|was|will\s+be|would\s+be)\s+(?:the\s+)?(?:\w+\s+)?(?:cost|price|fee|"
    r"fine|budget|salary|fare|bill)\b",
    re.I,
)
# "How much did the price rise?" asks for a change, often a share ("two percent a year").
_ASKS_CHANGE = re.compile(
    r"\b(?:increase|increased|rise|rose|risen|fall|fell|fallen|drop|dropped|grow|grew|grown|"
    r"raise|raised|cut|reduce|reduced|change|changed)\b",
    re.I,
)
_MONEY = re.compile(
    r"[$€£¥₹]\s*\d|\d(?:[\d.,]*)\s*(?:million|billion|trillion|m|bn)?\s*(?:dollars?|euros?|"
    r"pounds?|yen|yuan|crowns?|kronor|kroner|krona|krone|pesos?|francs?|rupees?|roubles?|"
    r"rubles?|cents?|pence|dinars?|reais|real|rand|won|shekels?|lira|liras|zloty|forints?|"
    r"sterling|USD|EUR|GBP)\b|\b\d[\d.,]*\s*(?:million|billion|trillion)\b",
    re.I,
)


def asks_money(question: str) -> bool:
    return bool(_ASKS_MONEY.search(question)) and not _ASKS_CHANGE.search(question)


def holds_kind(text: str, kind: str, question: str) -> bool:
    """Does ``text`` hold something of ``kind`` that the question does not already contain?"""
    match kind:
        case "date":
            return _new(dates(text), question)
        case "number" if asks_money(question):
            return _new([m.group(0) for m in _MONEY.finditer(text)], question)
        case "number":
            return _new(quantities(text), question)
        case "person":
            return _new([p for _, p in names(text)], question)
        case "place":
            return _new(places(text), question) or _new([p for _, p in names(text)], question)
        case _:
            return True


def kind_flags(text: str, question: str) -> dict[str, bool]:
    """For each kind, whether ``text`` holds a new one: the selector's answer-kind signal."""
    return {k: holds_kind(text, k, question) for k in KINDS if k != "other"}


def has_month_or_weekday(text: str) -> bool:
    return any(w in MONTHS or w in WEEKDAYS for w in words(text))


# --- who holds a title ------------------------------------------------------------------------

# "Who is the mayor?", "Who was Peru's foreign minister?", "Who is the chief of police in Lima?":
# the title asked about, without what it is of ("of Eastfield", "Peru's").
_ASKS_TITLE = re.compile(
    r"^\s*who\s+(?:is|was|are|were)\s+(?:the\s+)?(?:(?:current|new|former|then)\s+)?"
    r"(?:(?P<owner>[\w-]+)['’]s\s+)?(?P<title>(?:(?!(?:of|for|in|at|to|on)\b)[a-z][\w-]*\s+){0,2}"
    r"(?!(?:of|for|in|at|to|on)\b)[a-z][\w-]*)"
    r"(?:\s+(?:of|for|in|at|to|on)\s+(?P<of>[^?]*))?\s*\??\s*$",
    re.IGNORECASE,
)
_NOT_TITLES = frozenset(
    "a an the it he she they this that there responsible able elected eligible".split()
)


def asked_title(question: str) -> str | None:
    """The title a "Who is the ...?" question asks the holder of, or None."""
    m = _ASKS_TITLE.match(question)
    if m is None:
        return None
    title = m.group("title").lower()
    if title.split()[0] in _NOT_TITLES or title.endswith(("ed", "ing")):
        return None  # "Who was elected ...?", "Who is leading ...?": a verb, not a title
    return title


def title_owner(question: str) -> str:
    """Whose title a "Who is ...?" question asks about: "Peru" of "Who is Peru's foreign
    minister?", "Eastfield" of "Who is the mayor of Eastfield?"; "" when it names no one."""
    m = _ASKS_TITLE.match(question)
    if m is None:
        return ""
    return " ".join(g for g in (m.group("owner"), m.group("of")) if g).strip()


def holder(title: str, text: str, question: str) -> str | None:
    """The name standing in apposition with ``title`` in ``text`` ("Mayor Dolores Whitcombe",
    "civil protection chief Vidir Reynisson", "Dolores Whitcombe, the mayor,"), if it is not a
    name the question already gives."""
    t = r"\s+".join(re.escape(w) for w in title.split())
    asked = set(words(question))
    for m in re.finditer(rf"\b{t},?\s+(?P<name>(?-i:{_CAP.pattern}))", text, re.IGNORECASE):
        name = m.group("name")
        if name[:1].isupper() and not set(words(name)) <= asked:
            return name
    for s, name in names(text):
        after = text[s + len(name) :]
        apposed = re.match(
            rf",\s+(?:the|its|his|her|their)\s+(?:[\w'’-]+\s+){{0,2}}{t}\b", after, re.I
        )
        if apposed and not set(words(name)) <= asked:
            return name
    return None
