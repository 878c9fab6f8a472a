"""Follow-up questions resolved against the conversation before retrieval.

"What sentence do prosecutors seek for her?" after a question about Betssy Chávez becomes
"What sentence do prosecutors seek for Betssy Chávez?". Pronouns for people take the most recent
multi-word name; a question that still leans on the previous turn ("And who announced it?") gets
that turn's topic attached, so retrieval sees the words it needs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.text import (
    STOPWORDS,
    WH_WORDS,
    capitalised_phrases,
    content_stems,
    is_english_word,
    words,
)
from rag.types import ResolvedQuestion, Turn

_PERSON_OBJ = re.compile(r"\b(she|he|him|her|herself|himself)\b", re.I)
_POSSESSIVE = re.compile(r"\b(his|hers|her)\b(?=\s+[a-z])", re.I)
_THING = re.compile(r"\b(it|that|this|they|them|there|then|the decision|the move)\b", re.I)
_ELLIPTICAL_START = re.compile(
    r"^\s*(and|but|so|also|what about|how about|and what about)\b[\s,]*", re.I
)
# Capitalised words that open a question or a sentence without naming anyone: grammar only.
_NOT_NAMES = frozenset(
    """The A An In On At What Who When Where Why How Which And But So Is Are Was Did Does Do Can
    Tell Her His She He They It I Yes No According""".split()
)
_PARTICLES = frozenset("de del la las los da do dos van von y".split())
_OPENS_WITH_PERSON = re.compile(r"^\W*(?:he|she)\b", re.I)


def _names(text: str) -> list[str]:
    """Names of two or more words, without the titles before them: "Foreign Minister Hugo de
    Zela" -> "Hugo de Zela". A title is read off its form, not off a list of roles: leading
    words of the dictionary are dropped while two name words remain ("President Jose Jerí" ->
    "Jose Jerí"; "Rose Smith" stays whole)."""
    out = []
    for _, _, phrase in capitalised_phrases(text):
        parts = phrase.split()
        while parts and parts[0] in _NOT_NAMES:
            parts = parts[1:]
        while len(_name_words(parts)) > 2 and is_english_word(parts[0].lower()):
            parts = parts[1:]
        if len(parts) >= 2:
            out.append(" ".join(parts))
    return out


def _single_names(text: str) -> list[str]:
    """One-word names inside a question ("What did Marreiros say?"): capitalised words that do
    not open it and are not question words."""
    out = []
    for start, _, phrase in capitalised_phrases(text):
        parts = phrase.split()
        if start == len(text) - len(text.lstrip()):
            parts = parts[1:]  # the question's first word is capitalised by grammar
        if len(parts) == 1 and parts[0] not in _NOT_NAMES:
            out.append(parts[0])
    return out


def _name_words(parts: list[str]) -> list[str]:
    """The words of a name with each particle joined to the next: "Hugo de Zela" is two."""
    return [w for i, w in enumerate(parts) if not (i and parts[i - 1] in _PARTICLES)]


def _topic(question: str) -> str:
    """The previous question without its question words: what the conversation is about."""
    kept = [
        w
        for w in re.findall(r"[\w'’\-]+", question)
        if w.lower() not in WH_WORDS and w.lower() not in STOPWORDS
    ]
    return " ".join(kept)


def resolve_question(question: str, history: Sequence[Turn]) -> str:
    """The resolved question as one string, context in parentheses (for display)."""
    return str(resolve(question, history))


def resolve(question: str, history: Sequence[Turn]) -> ResolvedQuestion:
    """Pronouns replaced by the conversation's last name; the topic of the previous question
    attached as context when the question leans on it."""
    q = question.strip()
    if not history:
        return ResolvedQuestion(q)
    users = [t.content for t in history if t.role == "user"]
    last_user = users[-1] if users else ""
    last_assistant = next((t.content for t in reversed(history) if t.role == "assistant"), "")
    names = (
        _names(last_user)
        # An answer that opens with "He"/"She" is about the person the user just asked about,
        # even one named by surname alone ("What did Marreiros say?" / "He said ..."): the names
        # inside that answer are what he said, not whom the next "he" means.
        or (_single_names(last_user) if _OPENS_WITH_PERSON.match(last_assistant) else [])
        or _names(last_assistant)
        or [n for u in reversed(users[:-1]) for n in _names(u)]
    )
    resolved = q
    if names:
        name = names[0]
        resolved = _POSSESSIVE.sub(f"{name}'s", resolved, count=1)
        resolved = _PERSON_OBJ.sub(name, resolved, count=1)
    elliptical = _ELLIPTICAL_START.match(resolved)
    if elliptical:
        resolved = resolved[elliptical.end() :]
        resolved = resolved[:1].upper() + resolved[1:]
    # A question that names its own subject ("Who is Betssy Chávez?") starts a new topic.
    names_itself = bool(_names(q))
    leans_on_context = (
        bool(elliptical)
        or bool(_THING.search(resolved))
        or (len(content_stems(resolved)) <= 2 and not names_itself)
    )
    if leans_on_context and (elliptical or resolved == q):
        topic = _topic(last_user)
        new_words = set(words(topic)) - set(words(resolved))
        if topic and new_words:
            return ResolvedQuestion(resolved, topic)
    return ResolvedQuestion(resolved)
