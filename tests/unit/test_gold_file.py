"""Checks for the hand-written evaluation gold file ``eval/gold/seeds.jsonl``.

Format (one JSON object per line, UTF-8)::

    {"id": "q06", "type": "factoid", "question": "...",
     "answers": [["twenty-five", "25"]],
     "evidence": [{"source": "001_b162a8e02d0cef5d.txt", "quote": "..."}],
     "history": []}

* ``answers`` is a list of facts; each fact is a list of acceptable aliases. A fact
  counts as stated when any alias occurs in the (normalised) answer text.
* An empty ``answers`` list means the sources do not answer: the system must abstain.
  Such items have ``type == "unanswerable"`` (or ``"injection"``) and no evidence.
* ``evidence`` quotes are exact substrings of files under ``seeds/``.
* ``history`` holds earlier chat turns for ``followup`` items (oldest first).

Only the standard library and pytest are used; nothing from the project is imported.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from functools import cache
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
GOLD_PATH = REPO_ROOT / "eval" / "gold" / "seeds.jsonl"
SEEDS_DIR = REPO_ROOT / "seeds"

ALLOWED_TYPES = {
    "factoid", "multi_source", "unanswerable", "followup", "noisy", "injection", "multilingual",
    "roles",  # who did what to whom: an answer with the two names swapped is caught
}
# Injection items try to override the instructions; some still ask something the sources answer.
MAY_ABSTAIN = {"unanswerable", "injection"}
ALLOWED_ROLES = {"user", "assistant"}
MIN_ITEMS = 60

_QUOTE_MAP = str.maketrans(
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
    }
)
_PUNCT_RE = re.compile(r"[^\w\s]|_")
_SPACE_RE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Lower-case, fold accents (NFKD), straighten quotes, punctuation -> space, collapse spaces."""
    text = text.translate(_QUOTE_MAP)
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text.lower()
    text = _PUNCT_RE.sub(" ", text)
    return _SPACE_RE.sub(" ", text).strip()


def _load_items() -> list[dict]:
    items = []
    with GOLD_PATH.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:  # pragma: no cover - reported as a failure
                raise AssertionError(f"{GOLD_PATH.name}:{lineno}: invalid JSON: {exc}") from exc
            assert isinstance(item, dict), f"line {lineno} is not a JSON object"
            item["_line"] = lineno
            items.append(item)
    return items


ITEMS = _load_items()
ANSWERABLE = [it for it in ITEMS if it.get("answers")]


@cache
def _source_text(name: str) -> str:
    path = SEEDS_DIR / name
    assert path.is_file(), f"evidence source {name!r} not found under seeds/"
    return path.read_text(encoding="utf-8")


def _paragraph_containing(text: str, quote: str) -> str:
    for para in re.split(r"\n\s*\n", text):
        if quote in para:
            return para
    return ""


def _ids(items: list[dict]) -> list[str]:
    return [str(it.get("id", f"line{it['_line']}")) for it in items]


# --------------------------------------------------------------------------- file-level


def test_gold_file_exists_and_is_utf8_jsonl():
    raw = GOLD_PATH.read_bytes()
    raw.decode("utf-8")  # raises if not UTF-8
    lines = [ln for ln in raw.decode("utf-8").splitlines() if ln.strip()]
    assert len(lines) == len(ITEMS)


def test_enough_items():
    assert len(ITEMS) >= MIN_ITEMS, f"only {len(ITEMS)} items, need at least {MIN_ITEMS}"


def test_ids_unique():
    counts = Counter(it.get("id") for it in ITEMS)
    dupes = [i for i, n in counts.items() if n > 1]
    assert not dupes, f"duplicate ids: {dupes}"


def test_every_type_present():
    present = {it.get("type") for it in ITEMS}
    missing = ALLOWED_TYPES - present
    assert not missing, f"types with no items: {sorted(missing)}"


# --------------------------------------------------------------------------- per item


@pytest.mark.parametrize("item", ITEMS, ids=_ids(ITEMS))
def test_item_shape(item):
    assert isinstance(item.get("id"), str) and item["id"].strip()
    assert item.get("type") in ALLOWED_TYPES, f"bad type {item.get('type')!r}"
    assert isinstance(item.get("question"), str) and item["question"].strip()
    assert isinstance(item.get("answers"), list)
    assert isinstance(item.get("evidence"), list)
    assert isinstance(item.get("history"), list)
    for fact in item["answers"]:
        assert isinstance(fact, list) and fact, "each fact must be a non-empty list of aliases"
        assert all(isinstance(a, str) for a in fact)


@pytest.mark.parametrize("item", ITEMS, ids=_ids(ITEMS))
def test_answerable_vs_unanswerable(item):
    if item["type"] == "unanswerable":
        assert item["answers"] == [], "unanswerable items must have answers == []"
    if not item["answers"]:
        assert item["type"] in MAY_ABSTAIN, "only unanswerable/injection items may lack answers"
        assert item["evidence"] == [], "items without answers must have evidence == []"
        return
    assert item["answers"], "answerable items need at least one fact"
    for fact in item["answers"]:
        assert any(normalise(alias) for alias in fact), f"fact has no non-empty alias: {fact}"
    assert item["evidence"], "answerable items need at least one evidence quote"
    if item["type"] == "multi_source":
        assert len(item["evidence"]) >= 2, "multi_source items need evidence from 2+ paragraphs"
        assert len(item["answers"]) >= 2, "multi_source items need 2+ facts"


@pytest.mark.parametrize("item", ITEMS, ids=_ids(ITEMS))
def test_evidence_quotes_exact(item):
    for ev in item["evidence"]:
        assert set(ev) >= {"source", "quote"}, f"evidence entry missing keys: {ev}"
        assert ev["quote"].strip(), "empty evidence quote"
        text = _source_text(ev["source"])
        assert ev["quote"] in text, f"quote not found verbatim in {ev['source']}: {ev['quote']!r}"


@pytest.mark.parametrize("item", ITEMS, ids=_ids(ITEMS))
def test_history(item):
    history = item["history"]
    if item["type"] == "followup":
        assert history, "followup items need a non-empty history"
    for turn in history:
        assert isinstance(turn, dict)
        assert turn.get("role") in ALLOWED_ROLES, f"bad role {turn.get('role')!r}"
        assert isinstance(turn.get("content"), str) and turn["content"].strip()


@pytest.mark.parametrize("item", ANSWERABLE, ids=_ids(ANSWERABLE))
def test_gold_answers_supported_by_sources(item):
    """Each fact must have an alias that the evidence actually supports.

    An alias counts when it occurs (normalised) in the paragraphs holding the evidence
    quotes, or else anywhere in the whole text of the evidence source files.
    """
    sources = sorted({ev["source"] for ev in item["evidence"]})
    paragraphs = normalise(
        " ".join(
            _paragraph_containing(_source_text(ev["source"]), ev["quote"])
            for ev in item["evidence"]
        )
    )
    whole = normalise(" ".join(_source_text(s) for s in sources))
    for fact in item["answers"]:
        aliases = [normalise(a) for a in fact if normalise(a)]
        assert any(a in paragraphs or a in whole for a in aliases), (
            f"no alias of {fact} occurs in the evidence sources {sources}"
        )


def test_normaliser_examples():
    assert normalise("  Chávez’s   “Twenty-Five”  ") == "chavez s twenty five"
    assert normalise("chargés d'affaires") == "charges d affaires"
    assert normalise("RAÚL\tNoblecilla!") == "raul noblecilla"
