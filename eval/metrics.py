"""Metrics as small pure functions. Each docstring is the definition the report relies on.

Definitions follow /work/shared/gold-format.md; the SQuAD functions follow the official SQuAD v2.0
evaluation script; the sentence-support check is a lexical stand-in for ALCE's NLI-based citation
recall (see ``sentence_supported`` for its known weaknesses).
"""

from __future__ import annotations

import math
import random
import re
import statistics
import string
import unicodedata
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Protocol

# --- normalisation -----------------------------------------------------------------------------

_QUOTES = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u201f": '"',
        "\u2033": '"',
        "\u00ab": '"',
        "\u00bb": '"',
    }
)


def fold_accents(text: str) -> str:
    """NFKD-decompose and drop combining marks: ``"Chávez" -> "Chavez"``, ``"ﬁ" -> "fi"``."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def normalize_gold(text: str) -> str:
    """The gold-file normalisation used to find facts in an answer.

    Lower-case, accents folded (NFKD, combining marks dropped), curly quotes straightened, every
    punctuation or symbol character turned into a space, whitespace collapsed and stripped.
    ``"Betssy  Chávez’s “asylum”!" -> "betssy chavez s asylum"``.
    """
    text = fold_accents(text.translate(_QUOTES)).lower()
    # Unicode categories P* (punctuation) and S* (symbols) both separate words, e.g. "25%" or "—".
    text = "".join(" " if unicodedata.category(ch)[0] in "PS" else ch for ch in text)
    return " ".join(text.split())


_PUNCT = frozenset(string.punctuation)


def squad_normalize(text: str) -> str:
    """The official SQuAD v2.0 ``normalize_answer``, unchanged.

    Lower-case, remove ASCII punctuation (``string.punctuation``; removed, not replaced by a
    space), remove the articles ``a``/``an``/``the`` as whole words, collapse whitespace.
    ``"The  Eiffel-Tower!" -> "eiffeltower"``.
    """
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


# --- answer correctness ------------------------------------------------------------------------


def _contains_phrase(haystack: str, needle: str) -> bool:
    # Whole-word match on normalised text, so alias "25" is not found in "1925" or "250".
    return bool(needle) and f" {needle} " in f" {haystack} "


def facts_found(answer: str, facts: Sequence[Sequence[str]]) -> list[bool]:
    """For each fact, whether any of its aliases occurs in the answer.

    Both sides go through ``normalize_gold``; an alias occurs when it appears as a whole-word
    phrase of the normalised answer. An alias that normalises to nothing never matches.
    """
    norm_answer = normalize_gold(answer)
    return [
        any(_contains_phrase(norm_answer, normalize_gold(alias)) for alias in fact)
        for fact in facts
    ]


def fact_recall(answer: str, facts: Sequence[Sequence[str]]) -> float:
    """Found facts / facts (ALCE's string-exact-match recall for one item).

    Only defined for answerable items: ``facts`` must not be empty (``ValueError`` otherwise).
    """
    if not facts:
        raise ValueError("fact_recall is undefined for an item with no facts (unanswerable)")
    found = facts_found(answer, facts)
    return sum(found) / len(found)


def item_correct(answer: str, facts: Sequence[Sequence[str]], abstained: bool) -> bool:
    """Whether an item was handled correctly.

    Unanswerable (no facts): correct exactly when the service abstained. Answerable: correct when
    it did not abstain and every fact is found in the answer.
    """
    if not facts:
        return abstained
    return not abstained and all(facts_found(answer, facts))


def exact_match(prediction: str, golds: Sequence[str]) -> float:
    """SQuAD exact match: 1.0 when ``squad_normalize(prediction)`` equals that of any gold.

    Max over the gold aliases. No golds means "no answer" (SQuAD v2): the gold is the empty
    string, so an empty prediction scores 1.0 and anything else 0.0.
    """
    candidates = list(golds) or [""]
    pred = squad_normalize(prediction)
    return max(float(pred == squad_normalize(g)) for g in candidates)


def _f1_one(prediction: str, gold: str) -> float:
    pred_toks = squad_normalize(prediction).split()
    gold_toks = squad_normalize(gold).split()
    if not pred_toks or not gold_toks:
        # Official rule: both empty is a match (1), exactly one empty is a miss (0).
        return float(pred_toks == gold_toks)
    same = sum((Counter(pred_toks) & Counter(gold_toks)).values())
    if same == 0:
        return 0.0
    precision = same / len(pred_toks)
    recall = same / len(gold_toks)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, golds: Sequence[str]) -> float:
    """SQuAD token F1, max over the gold aliases.

    Tokens are ``squad_normalize(text).split()``; overlap counts repeated tokens at most as often
    as they occur on both sides (multiset intersection); F1 = 2PR/(P+R). When prediction or gold
    has no tokens, F1 is 1.0 if both are empty else 0.0. No golds means the empty gold (SQuAD v2).
    """
    candidates = list(golds) or [""]
    return max(_f1_one(prediction, g) for g in candidates)


# --- evidence and citations --------------------------------------------------------------------


class EvidenceLike(Protocol):
    source: str
    quote: str


def _same_source(paragraph_source: str, evidence_source: str) -> bool:
    # Gold names files "as they lie in the sources folder"; paragraphs in a nested folder carry a
    # relative posix path, so a bare gold file name also matches by its last component.
    if paragraph_source == evidence_source:
        return True
    return "/" not in evidence_source and PurePosixPath(paragraph_source).name == evidence_source


def _quote_spans(text: str, quote: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    if not quote:
        return spans
    at = text.find(quote)
    while at != -1:
        spans.append((at, at + len(quote)))
        at = text.find(quote, at + 1)
    return spans


def supports(
    paragraph_text: str,
    paragraph_source: str,
    paragraph_start: int,
    paragraph_end: int,
    evidence: Sequence[EvidenceLike],
    source_texts: Mapping[str, str],
) -> bool:
    """Whether a retrieved or cited paragraph supports an item.

    True when, for some evidence quote from the same source file, either the paragraph text
    contains the quote (exactly, or after collapsing whitespace), or the paragraph's character
    span ``[start, end)`` overlaps an occurrence of the quote in the source file's text
    (``source_texts[source]``). The span test keeps a quote that straddles two paragraphs
    supported by both. No evidence (unanswerable item) means nothing supports it.
    """
    for ev in evidence:
        if not _same_source(paragraph_source, ev.source) or not ev.quote:
            continue
        if ev.quote in paragraph_text or " ".join(ev.quote.split()) in " ".join(
            paragraph_text.split()
        ):
            return True
        file_text = source_texts.get(ev.source)
        if file_text is None:
            file_text = source_texts.get(paragraph_source)
        if file_text is None:
            continue
        for q_start, q_end in _quote_spans(file_text, ev.quote):
            if paragraph_start < q_end and q_start < paragraph_end:
                return True
    return False


def citation_precision(supported: Sequence[bool]) -> float | None:
    """Cited paragraphs that support the item / cited paragraphs, for one answer.

    ``None`` when the answer cites nothing (precision is undefined, not zero).
    """
    if not supported:
        return None
    return sum(supported) / len(supported)


def citation_recall(supported: Sequence[bool]) -> float:
    """1.0 when at least one cited paragraph supports the item, else 0.0 (no citations -> 0.0).

    Averaged over answerable items this is "answerable items with a supporting citation /
    answerable items".
    """
    return 1.0 if any(supported) else 0.0


# --- retrieval ---------------------------------------------------------------------------------


def recall_at_k(relevant: Sequence[bool], k: int) -> float:
    """1.0 when any of the first ``k`` ranked paragraphs is relevant (supports the item), else 0."""
    return 1.0 if any(relevant[:k]) else 0.0


def mrr_at_k(relevant: Sequence[bool], k: int = 10) -> float:
    """Reciprocal rank of the first relevant paragraph within the top ``k`` (1-based), else 0.0."""
    for rank, rel in enumerate(relevant[:k], start=1):
        if rel:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(relevant: Sequence[bool], k: int = 10, n_relevant: int | None = None) -> float:
    """Normalised discounted cumulative gain with binary relevance.

    DCG@k = sum over ranks i=1..k of rel_i / log2(i + 1). The ideal DCG puts all relevant
    paragraphs first: ``min(n_relevant, k)`` ones, where ``n_relevant`` defaults to the number of
    relevant entries in the whole ranked list given (the corpus-wide count is unknown: gold names
    quotes, not paragraphs). 0.0 when nothing is relevant.
    """
    total = sum(relevant) if n_relevant is None else n_relevant
    if total <= 0:
        return 0.0
    dcg = sum(1.0 / math.log2(i + 1) for i, rel in enumerate(relevant[:k], start=1) if rel)
    idcg = sum(1.0 / math.log2(i + 1) for i in range(1, min(total, k) + 1))
    return dcg / idcg


# --- ALCE-style sentence support ---------------------------------------------------------------

_MARKER = re.compile(r"\[(\d+)\]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_LEADING_MARKERS = re.compile(r"^\s*((?:\[\d+\]\s*)+)")
_PUNCT_ONLY = re.compile(r"^[.!?]+$")

# English function words plus reporting verbs: words that carry no claim of their own.
_STOPWORD_TEXT = """
a about above after again against all also am an and any are as at be because been before
being below between both but by can could did do does doing down during each few for from
further had has have having he her here hers herself him himself his how i if in into is it
its itself just me more most my myself no nor not now of off on once only or other our ours
ourselves out over own same she should so some such than that the their theirs them
themselves then there these they this those through to too under until up very was we were
what when where which while who whom why will with would you your yours yourself yourselves
according said says say told tells reported according s t
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())

SUPPORT_THRESHOLD = 0.5


_MARKER_RE = re.compile(r"\s*\[\d+\]")


def split_sentences(answer: str) -> list[str]:
    """Split an answer into sentences at ``.``/``!``/``?`` followed by whitespace.

    Citation markers written after the full stop (``"... in Lima. [2]"``) stay with the sentence
    they follow. Abbreviations such as "U.S. Army" are split wrongly; answers are short enough for
    that to be rare.
    """
    sentences: list[str] = []
    for part in _SENTENCE_END.split(answer.strip()):
        lead = _LEADING_MARKERS.match(part)
        if sentences and lead:
            sentences[-1] = f"{sentences[-1]} {lead.group(1).strip()}"
            part = part[lead.end() :]
        part = part.strip()
        if part and not (sentences and _PUNCT_ONLY.match(part)):
            sentences.append(part)
    return sentences


def citation_markers(text: str) -> list[int]:
    """The distinct ``[n]`` marker numbers in ``text``, in order of first appearance."""
    seen: list[int] = []
    for m in _MARKER.finditer(text):
        n = int(m.group(1))
        if n not in seen:
            seen.append(n)
    return seen


def content_words(text: str) -> list[str]:
    """Normalised (``normalize_gold``) tokens of ``text`` without ``[n]`` markers and stopwords."""
    return [w for w in normalize_gold(_MARKER.sub(" ", text)).split() if w not in STOPWORDS]


def key_tokens(text: str) -> list[str]:
    """Tokens that must appear verbatim in the cited text: numbers, dates and capitalised names.

    A token is key when it contains a digit, or starts with an upper-case letter, is not a
    stopword and is not the text's first word (capitals there say nothing about names). Returned
    normalised.
    """
    keys: list[str] = []
    for i, raw in enumerate(_MARKER.sub(" ", text).split()):
        has_digit = any(ch.isdigit() for ch in raw)
        is_name = i > 0 and raw.lstrip("\"'(“‘")[:1].isupper()
        if not (has_digit or is_name):
            continue
        keys.extend(tok for tok in normalize_gold(raw).split() if tok not in STOPWORDS)
    return keys


@dataclass(frozen=True)
class SentenceCheck:
    sentence: str
    markers: list[int]
    coverage: float
    missing_keys: list[str]
    supported: bool


def check_sentence(
    sentence: str, cited_texts: Sequence[str], threshold: float = SUPPORT_THRESHOLD
) -> SentenceCheck:
    """The lexical support check for one answer sentence against the texts it cites.

    Supported when (a) it cites at least one text, (b) the share of its content words (see
    ``content_words``) found among the cited texts' normalised tokens is >= ``threshold``, and
    (c) every key token (numbers, dates, capitalised names; see ``key_tokens``) is among them.
    A sentence with no content words passes (b) trivially.

    Known weaknesses: a faithful paraphrase ("25" for "twenty-five", "left" for "departed") is
    counted unsupported; a sentence reusing the cited words in a false combination ("Mexico broke
    off relations with Peru") is counted supported; names are matched as words, not people.
    """
    markers = citation_markers(sentence)
    cited_vocab: set[str] = set()
    for t in cited_texts:
        cited_vocab.update(normalize_gold(t).split())
    words = content_words(sentence)
    coverage = (sum(w in cited_vocab for w in words) / len(words)) if words else 1.0
    missing = [k for k in dict.fromkeys(key_tokens(sentence)) if k not in cited_vocab]
    ok = bool(cited_texts) and coverage >= threshold and not missing
    return SentenceCheck(sentence, markers, coverage, missing, ok)


def sentence_checks(
    answer: str, cited: Mapping[int, str], threshold: float = SUPPORT_THRESHOLD
) -> list[SentenceCheck]:
    """Check every sentence of ``answer``; a sentence's ``[n]`` markers pick texts from ``cited``.

    A marker with no entry in ``cited`` contributes no text; a sentence without markers is
    therefore unsupported (ALCE: every statement needs a citation).
    """
    checks = []
    for sentence in split_sentences(answer):
        texts = [cited[n] for n in citation_markers(sentence) if n in cited]
        checks.append(check_sentence(sentence, texts, threshold))
    return checks


def sentence_support_rate(
    answer: str, cited: Mapping[int, str], threshold: float = SUPPORT_THRESHOLD
) -> float | None:
    """Supported sentences / sentences of one answer (``None`` for an answer with no sentences)."""
    checks = sentence_checks(answer, cited, threshold)
    if not checks:
        return None
    return sum(c.supported for c in checks) / len(checks)


# --- statistics --------------------------------------------------------------------------------


def mean(values: Sequence[float]) -> float | None:
    """Arithmetic mean; ``None`` for no values."""
    return sum(values) / len(values) if values else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0..100) with linear interpolation between closest ranks.

    Same as ``numpy.percentile(values, q)`` (its default "linear" method): position
    ``(n - 1) * q / 100`` in the sorted values. ``None`` for no values.
    """
    if not values:
        return None
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q must be within 0..100, got {q}")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def bootstrap_ci(
    values: Sequence[float],
    stat: Callable[[Sequence[float]], float] = statistics.fmean,
    n: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of ``stat`` over ``values``.

    Draw ``n`` resamples of the same size with replacement (``random.Random(seed)``, so the
    interval is reproducible), compute ``stat`` on each, and return the
    ``(1 - confidence) / 2`` and ``1 - (1 - confidence) / 2`` percentiles of those statistics.
    Raises ``ValueError`` for no values.
    """
    if not values:
        raise ValueError("bootstrap_ci needs at least one value")
    rng = random.Random(seed)
    pool = list(values)
    stats = [stat(rng.choices(pool, k=len(pool))) for _ in range(n)]
    tail = (1 - confidence) / 2 * 100
    lo = percentile(stats, tail)
    hi = percentile(stats, 100 - tail)
    assert lo is not None and hi is not None  # stats is never empty here
    return lo, hi


def word_count(text: str) -> int:
    """Whitespace-separated tokens with a letter or digit, once ``[n]`` markers are removed."""
    return sum(1 for tok in _MARKER.sub(" ", text).split() if any(ch.isalnum() for ch in tok))


# --- the summary's metrics, as the report and the CLI explain them -----------------------------

SUMMARY_METRICS: dict[str, str] = {
    "n": "Items in the group.",
    "answer_recall": "Found facts / facts, mean over answerable items (an abstention finds none).",
    "item_accuracy": "Items handled correctly: every fact found, or abstained when unanswerable.",
    "exact_match": "SQuAD exact match against the best alias (abstention = empty prediction).",
    "f1": "SQuAD token F1 against the best alias (abstention = empty prediction).",
    "words_median": "Median words per answer, over answers that did not abstain.",
    "words_p90": "90th percentile of words per answer, over answers that did not abstain.",
    "abstention_rate": "Unanswerable items where the service abstained.",
    "wrong_abstention_rate": "Answerable items where the service abstained.",
    "citation_precision": "Cited paragraphs that support the item / cited paragraphs, mean over "
    "answerable items that cite.",
    "citation_recall": "Answerable items with at least one supporting citation.",
    "sentence_support_rate": "Answer sentences passing the lexical support check against the "
    "paragraphs they cite (ALCE-style), mean over answers.",
    "role_reversal_rate": "Answers with a sentence that puts a name on the other side of an "
    "action than the gold evidence quote does (who did what to whom swapped).",
    "recall@1": "Answerable items with an evidence paragraph ranked first.",
    "recall@3": "Answerable items with an evidence paragraph in the top 3 retrieved.",
    "recall@5": "Answerable items with an evidence paragraph in the top 5 retrieved.",
    "recall@10": "Answerable items with an evidence paragraph in the top 10 retrieved.",
    "mrr@10": "Mean reciprocal rank of the first evidence paragraph within the top 10.",
    "ndcg@10": "Mean nDCG@10 with binary relevance (paragraph supports the item).",
    "latency_p50": "Median seconds per item (one ask, or one retrieve in retrieval-only runs).",
    "latency_p95": "95th percentile of seconds per item.",
}

LOWER_IS_BETTER = frozenset(
    {
        "wrong_abstention_rate",
        "role_reversal_rate",
        "latency_p50",
        "latency_p95",
        "words_median",
        "words_p90",
    }
)


def abstention_curve(
    confidences: Sequence[float], answerable: Sequence[bool], steps: int = 20
) -> list[dict[str, float]]:
    """Abstention on unanswerable items against wrong abstention on answerable ones, as the
    threshold on the selector's P(some sentence answers) moves from 0 to 1: at threshold t the
    service abstains on every item whose confidence is below t.

    >>> abstention_curve([0.2, 0.9, 0.4, 0.8], [False, True, False, True], steps=2)[1]
    {'threshold': 0.5, 'abstention': 1.0, 'wrong_abstention': 0.0}
    """
    pos = [c for c, a in zip(confidences, answerable, strict=True) if a]
    neg = [c for c, a in zip(confidences, answerable, strict=True) if not a]
    out = []
    for i in range(steps + 1):
        t = i / steps
        out.append(
            {
                "threshold": round(t, 4),
                "abstention": round(sum(c < t for c in neg) / len(neg), 4) if neg else 0.0,
                "wrong_abstention": round(sum(c < t for c in pos) / len(pos), 4) if pos else 0.0,
            }
        )
    return out


def role_reversed(answer: str, quotes: Sequence[str]) -> bool:
    """Whether a sentence of the answer puts a name on the other side of an action than the
    gold evidence does ("Mexico broke off relations with Peru" against the quote "Peru broke
    off diplomatic relations with Mexico"). Word overlap scores such an answer as correct."""
    from rag.cite import reversal

    sentences = [_MARKER_RE.sub("", s) for s in split_sentences(answer)]
    return any(reversal(s, q) for s in sentences for q in quotes)
