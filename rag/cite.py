"""Citations are checked, not trusted.

The model writes ``[n]`` after what it takes from evidence sentence n. Each sentence of its draft is
checked against what it cites; markers pointing nowhere are dropped; a sentence its citation does
not support is replaced by the fact stated from its evidence sentence (``excerpt``); the citation
list holds only what the final text cites, numbered in order of first appearance.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.config import AnswerSettings
from rag.kinds import holds_kind, names
from rag.sentences import FOOTNOTE_MARK, closes_list, split_sentences
from rag.text import (
    STOPWORDS,
    amount_tokens,
    amounts,
    capitalised_phrases,
    content_stems,
    fold,
    is_english_word,
    numbers,
    stem,
    words,
)
from rag.types import CheckDecision, Citation, Evidence, Retrieved, Sentence

_MARKER = re.compile(r"\s*\[(\d{1,3})\]")
MIN_SUPPORT = 0.7  # share of a sentence's content words that its cited text must contain
# Small models open with filler that is not a claim about the sources; the prompt ends with
# "Answer:", so a draft may go on from there ("to this question is: ...").
_FILLER = re.compile(
    r"^(?:(?:the )?answer(?: to (?:the|this|your) question)?(?: is)?\s*[:,-]?\s*"
    r"|to (?:the|this|your) question(?: is)?\s*[:,-]?\s*"
    r"|according to (?:the )?sources?,?\s*|based on (?:the )?sources?,?\s*)",
    re.I,
)


_DEFAULTS = AnswerSettings()  # the defaults live with the settings that override them


@dataclass(frozen=True)
class AnswerStyle:
    """How the answer states its facts; both numbers are fitted (``python -m eval.fit_answer``).

    ``fact_words``: an evidence sentence up to this long is stated whole; a longer one is cut to
    its clause that most likely holds the answer (``excerpt``).
    ``min_coverage``: a draft sentence must carry at least this share of what its evidence adds
    to the question (the fact's content words the question does not use). A small model's
    draft that copies its source's words but leaves the answer out passes the support check;
    this check replaces it with the fact. 0 trusts every supported draft.
    ``draft_sentences``: how many complete draft sentences are read before the model is
    stopped (``draft_read``); 0 reads the whole draft.
    """

    fact_words: int = _DEFAULTS.fact_words
    min_coverage: float = _DEFAULTS.min_draft_coverage
    draft_sentences: int = _DEFAULTS.draft_sentences


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
    reversed_roles = reversal(claim, source)
    if reversed_roles:
        return False, reversed_roles
    swapped = pronoun_swap(claim, source)
    if swapped:
        return False, swapped
    added = _added_phrase(claim, source_stems)
    if added:
        return False, f"adds {added!r}, which the cited text does not say"
    return True, f"{coverage:.0%} of its words in the cited text"


def _added_phrase(claim: str, source_stems: set[str]) -> str | None:
    """Two content words in a row that the source lacks: a phrase the draft added ("granted
    asylum *in a remote location*"), not a word put for another ("remain" for "stay")."""
    run: list[str] = []
    for w in words(claim):
        stems = content_stems(w)
        if not stems:
            continue  # a stopword neither breaks nor extends a run
        if stems[0] in source_stems:
            run = []
            continue
        run.append(w)
        if len(run) == 2:
            return " ".join(run)
    return None


_PRONOUNS = frozenset("he she it they him her them his hers its their theirs".split())


def pronoun_swap(claim: str, source: str) -> str | None:
    """'a co-author of her failed attempt' against 'a co-author of his failed attempt': the
    claim copies the source's words on both sides of a pronoun but changes the pronoun, and
    with it whose attempt it was. Pronouns are stopwords, so no word check sees it."""
    src = words(source)
    around: dict[tuple[str, str], set[str]] = {}
    for j in range(1, len(src) - 1):
        around.setdefault((src[j - 1], src[j + 1]), set()).add(src[j])
    said = words(claim)
    for i in range(1, len(said) - 1):
        there = around.get((said[i - 1], said[i + 1]), set())
        if said[i] in _PRONOUNS and said[i] not in there and there & _PRONOUNS:
            was = sorted(there & _PRONOUNS)[0]
            return f"says '{' '.join(said[i - 1 : i + 2])}'; the cited text has {was!r} there"
    return None


# Where a clause ends: who does what is read within one clause only.
_BOUNDARY = re.compile(
    r"^(?:[,;:()]|that|which|who|whom|whose|because|while|whereas|although|as|"
    r"but|when|after|before|if|since)$",
    re.I,
)
_PASSIVE = frozenset("is are was were be been being".split())


def _tokens(text: str) -> list[str]:
    return re.findall(r"[\w'’-]+|[,;:()\u201c\u201d\"]", text)


def _name_at(tokens: list[str]) -> list[frozenset[str] | None]:
    """For each token, the name it belongs to (the words of its run of capitalised words,
    folded), or None. A capital that opens the sentence counts too: only names both texts
    share are compared."""
    out: list[frozenset[str] | None] = [None] * len(tokens)
    i = 0
    while i < len(tokens):
        j = i
        while j < len(tokens) and tokens[j][:1].isupper() and _base(tokens[j]) not in STOPWORDS:
            j += 1
        if j > i:
            phrase = frozenset(_base(t) for t in tokens[i:j])
            for k in range(i, j):
                out[k] = phrase
            i = j
        else:
            i += 1
    return out


def _base(token: str) -> str:
    return fold(token.split("'")[0].split("’")[0])


Name = frozenset[str]


def _roles(text: str) -> list[tuple[Name, str, str]]:
    """(name, word, side) for each word of ``text`` and each name in the same clause: side is
    "doer" for the name that stands nearest before the word ("Mexico granted"), or after it in
    a passive ("was granted by Mexico"); "done-to" for a name after the word ("granted ... to
    Chávez"). Word order within a clause, no parser: enough to see two names swapped."""
    toks = _tokens(text)
    owner = _name_at(toks)
    out: list[tuple[Name, str, str]] = []
    for i, t in enumerate(toks):
        if owner[i] or _BOUNDARY.match(t) or fold(t) in STOPWORDS or not t[:1].isalpha():
            continue
        w = stem(fold(t))
        before: list[Name] = []
        j = i - 1  # back to the clause's start
        while j >= 0 and not _BOUNDARY.match(toks[j]):
            name = owner[j]
            if name is not None and (not before or before[-1] != name):
                before.append(name)
            j -= 1
        before.reverse()  # in text order: the doer is the name nearest before the word
        after: list[Name] = []
        k = i + 1
        while k < len(toks) and not _BOUNDARY.match(toks[k]):
            name = owner[k]
            if name is not None and (not after or after[-1] != name):
                after.append(name)
            k += 1
        passive = i > 0 and fold(toks[i - 1]) in _PASSIVE and fold(toks[min(i + 1, k - 1)]) == "by"
        doers, done_to = (after[:1], before) if passive else (before[-1:], after)
        out += [(n, w, "doer") for n in doers] + [(n, w, "done-to") for n in done_to]
    return out


def reversal(claim: str, source: str) -> str | None:
    """'The Saxons conquered the Normans' against 'The Normans conquered the Saxons': the
    claim's doer of a shared word stands only on the receiving side of that word in the
    source. Word overlap alone would call it supported."""
    src = _roles(source)
    for name, w, side in _roles(claim):
        if side != "doer":
            continue
        sides = {s for n, ww, s in src if ww == w and name <= n}
        if "done-to" in sides and "doer" not in sides:
            return f"the cited text has {' '.join(sorted(name)).title()} on the other side of {w!r}"
    return None


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
    asked = set(words(question))
    found = {fold(n) for s in cited for _, n in names(s.text) if not set(words(n)) <= asked}
    return not found or any(n in fold(claim) for n in found)


_OPENING = "“"
_CLOSING = "”"


def _nest_quotes(text: str) -> str:
    """Double quotation marks in a sentence the answer states: a pair wrapping all of it is dropped,
    other pairs become single marks, and a mark without its partner (its quotation began or
    ends in another sentence) is removed."""
    marks: list[tuple[int, bool]] = []  # (position, opens)
    for i, ch in enumerate(text):
        if ch in _OPENING + _CLOSING + '"':
            opens = ch == _OPENING or (ch == '"' and (i == 0 or text[i - 1] in " (\n"))
            marks.append((i, opens))
    pairs: dict[int, int] = {}
    stack: list[int] = []
    for i, opens in marks:
        if opens:
            stack.append(i)
        elif stack:
            pairs[stack.pop()] = i
    paired = set(pairs) | set(pairs.values())
    wrapped = pairs.get(0) == len(text.rstrip(".!?")) - 1 or pairs.get(0) == len(text) - 1
    out = []
    for i, ch in enumerate(text):
        if ch not in _OPENING + _CLOSING + '"':
            out.append(ch)
        elif i in paired and not (wrapped and (i == 0 or i == pairs[0])):
            out.append("‘" if i in pairs else "’")
    return "".join(out)


_CLAUSE_SPLIT = re.compile(
    r"[;:]\s+|,\s+(?=(?:which|who|whom|whose|where|while|whereas|but|although|and|as)\b)"
    r"|\s+[–—]\s+"
    r"|,\s+(?=[\"“‘])"  # 'She said, "...': who said it, then what was said
)
# '"We will leave," the minister said': a sentence that opens with quoted speech ends it at its
# closing quote. Mid-sentence, a closed quote is a phrase ("as 'unsafe,' adding that").
_SPEECH_THEN_SPEAKER = re.compile(r"^\s*[\"“‘].*?[,!?][\"”’]\s+")


def _clauses(text: str) -> list[str]:
    m = _SPEECH_THEN_SPEAKER.match(text)
    head, rest = ([m.group(0)], text[m.end() :]) if m else ([], text)
    pieces: list[str] = []
    pos = 0
    for cut in _CLAUSE_SPLIT.finditer(rest):
        if closes_list(rest[pos : cut.start()], cut.group(0), rest[cut.end() :]):
            continue  # the last item of a list, not a clause of its own
        pieces.append(rest[pos : cut.start()])
        pos = cut.end()
    pieces.append(rest[pos:])
    return [p for p in head + pieces if p and p.strip(" ,")]


_FOOTNOTE_MARK = re.compile(rf"(?<=\S){FOOTNOTE_MARK}")
_RELATIVE = re.compile(r"(?:who|whom|whose|which)\b", re.I)
_NOUN_PHRASE_WORDS = 8  # a piece this short before a relative clause is the noun it describes
_LEADING_LINK = re.compile(r"^(?:and|but|as|while|whereas|although)\s+", re.I)


def excerpt(s: Sentence, kind: str, question: str, max_words: int = AnswerStyle.fact_words) -> str:
    """The fact, stated short, from the evidence sentence: the sentence itself when short, else
    its clause that holds an answer of the kind asked for and most of the question's words. The
    whole sentence stays in the citation."""
    # Footnote marks of text copied from the web ("[12]", "[citation needed]") are no part of
    # the fact, and a number in brackets would read as one of the answer's own citations.
    text = _nest_quotes(_FOOTNOTE_MARK.sub("", s.text).strip())
    text = text[:1].upper() + text[1:]  # a clause from mid-sentence still reads as a sentence
    if len(text.split()) <= max_words:
        return text
    # Asides in brackets say least, unless one holds the kind of answer asked for.
    text = re.sub(
        r"\s*\([^()]*\)",
        lambda m: m.group(0) if kind != "other" and holds_kind(m.group(0), kind, question) else "",
        text,
    )
    if len(text.split()) <= max_words:
        return text
    pieces = [p.strip(" ,") for p in _clauses(text)]
    q = set(content_stems(question))

    def score(piece: str) -> float:
        stems = set(content_stems(piece))
        kind_ok = kind != "other" and holds_kind(piece, kind, question)
        return 2.0 * kind_ok + len(stems & q) / (len(q) or 1) + 0.2 * bool(stems - q)

    best = max(range(len(pieces)), key=lambda i: score(pieces[i]))
    chosen = pieces[best]
    nxt = pieces[best + 1] if best + 1 < len(pieces) else ""
    prev = pieces[best - 1] if best else ""
    # A relative clause says something of the noun before it ("the ensemble of Clara Weiss |
    # who founded the festival"): the noun and the clause are stated together, whichever of
    # the two answers (the noun alone, a few words, is no statement; the clause alone does not
    # say whom it is about, often the person or thing a who/which question asks for).
    if _RELATIVE.match(nxt) and len(chosen.split()) <= _NOUN_PHRASE_WORDS:
        chosen = f"{_LEADING_LINK.sub('', chosen)}, {nxt}"
    elif prev and _RELATIVE.match(chosen):
        before = _LEADING_LINK.sub("", prev).split()
        short = len(before) <= _NOUN_PHRASE_WORDS
        lead = " ".join(before) if short else "… " + " ".join(before[-6:])
        chosen = f"{lead}, {chosen}"
    else:
        # A clause too short to stand alone takes its neighbour ("in 1066 | the Normans came").
        if len(chosen.split()) < 6:
            chosen = f"{chosen}, {nxt}" if nxt else f"{prev}, {chosen}" if prev else chosen
        if best and chosen[:1].islower():  # "were the people who ...": keep who it is about
            chosen = " ".join(pieces[0].split()[:4]) + " … " + chosen
    words_ = chosen.split()
    if len(words_) > max_words + 8:
        chosen = " ".join(words_[: max_words + 8]) + " …"
    return chosen[:1].upper() + chosen[1:]


def coverage(claim: str, facts: list[str], question: str) -> float:
    """Share of what ``facts`` add to ``question`` (content words it does not use) that
    ``claim`` says too. Of each fact, only its clause with most of the question's words
    counts (its clauses with most, when several share as many): the other clauses are asides
    ("..., and they are seeking ..."), and a claim that repeats them can still leave out the
    answer."""
    q = set(content_stems(question))
    new: set[str] = set()
    for f in facts:
        stems = [set(content_stems(p)) for p in _clauses(f) or [f]]
        most = max(len(t & q) for t in stems)
        # Clauses that tie are all about the question, as far as its words tell.
        for t in stems:
            if len(t & q) == most:
                new |= t - q
    if not new:
        return 1.0
    return len(new & set(content_stems(claim))) / len(new)


def draft_sentences(draft: str) -> list[str]:
    """The draft's sentences as the check reads them: opening filler dropped."""
    return [span.text for span in split_sentences(_FILLER.sub("", draft.strip()))]


_WORD = re.compile(r"\S+")
_A_WORD = re.compile(r"[^\W\d_]{2,}")
_LOOP_COPIES = 3  # a phrase written three times over in a row: the model is looping


def draft_read(draft: str, sentences: int) -> str | None:
    """The draft the answer is made from once reading more of it cannot help, else None.

    Read far enough: its first ``sentences`` complete sentences (the prompt asks for one; a
    small model goes on to restate or stray from its sources, and every token costs time), or,
    when it loops ("The answer is: The answer is: ..."), the text up to the loop's first
    copy. The model can be stopped there.
    """
    spans = [m.span() for m in _WORD.finditer(draft)]
    for n in range(1, len(spans) // _LOOP_COPIES + 1):
        tails = [
            [draft[a:b] for a, b in spans[len(spans) - (k + 1) * n : len(spans) - k * n]]
            for k in range(_LOOP_COPIES)
        ]
        if all(t == tails[0] for t in tails):
            return draft[: spans[len(spans) - (_LOOP_COPIES - 1) * n - 1][1]]
    if sentences:
        body = _FILLER.sub("", draft.strip())
        # "1." opening a numbered list is no sentence of the answer: one counts with a word.
        complete = [s for s in split_sentences(body)[:-1] if _A_WORD.search(s.text)]
        if len(complete) >= sentences:
            return body[: complete[sentences - 1].end]
    return None


class DraftCheck:
    """The citation check, one draft sentence at a time, so a stream can show each kept sentence
    as soon as nothing later in the draft can change it.

    ``add`` checks one sentence; ``settled`` is the claims that ``finish`` can no longer move or
    remove; ``finish`` completes the answer (the kind asked for, evidence for other parts).
    """

    def __init__(
        self,
        evidence: Evidence,
        question: str,
        max_claims: int = 2,
        style: AnswerStyle = AnswerStyle(),
    ) -> None:
        self.evidence = evidence
        self.question = question
        self.max_claims = max_claims
        self.style = style
        self.claims: list[Claim] = []
        self.decisions: list[CheckDecision] = []
        self.used: set[int] = set()

    def add(self, sentence: str) -> None:
        ev = self.evidence.sentences
        text, marks = parse_markers(sentence)
        if not text or len(self.claims) >= self.max_claims:
            if text:
                self.decisions.append(CheckDecision(sentence, "dropped", "answer already complete"))
            return
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
        kind = self.evidence.answer_type
        if ok and not states_answer(text, cites, kind, self.question):
            ok, why = False, f"does not state the {kind} its source gives"
        stems, asked = set(content_stems(text)), set(content_stems(self.question))
        if ok and not stems - asked:
            ok, why = False, "only restates the question"
        if ok:
            # The question's words are what tie an answer to it: "X announced the break" for
            # "Who announced ...?" cited to a sentence with no "announced" in it states what its
            # source does not, however many of the other words it shares.
            unsaid = (stems & asked) - set(content_stems(" ".join(c.text for c in cites)))
            if unsaid:
                ok, why = False, f"states {sorted(unsaid)} of the question; its source does not"
        if ok:
            said = coverage(text, [self._fact(s) for s in cites], self.question)
            if said < self.style.min_coverage:
                # Supported but incomplete: its own source's fact takes its place, once.
                why = f"says only {said:.0%} of what its source adds to the question"
                fresh = [i for i in map(ev.index, cites) if i not in self.used]
                if not fresh:
                    self.decisions.append(
                        CheckDecision(sentence, "dropped", why + "; the answer states it already")
                    )
                    return
                self._replace(sentence, fresh[0], why + note)
                return
        if ok and self._repeats(text):
            # A draft sentence replaced by its source's quote, then the source copied again.
            self.decisions.append(
                CheckDecision(sentence, "dropped", "repeats what the answer already says")
            )
            return
        if ok:
            self.claims.append(Claim(text, cites))
            self.used.update(ev.index(s) for s in cites)
            self.decisions.append(CheckDecision(sentence, "kept", why + note))
            return
        idx = next((i for i in range(len(ev)) if i not in self.used), None)
        if idx is None:
            self.decisions.append(CheckDecision(sentence, "dropped", why + note))
            return
        self._replace(sentence, idx, why + note)

    def _replace(self, sentence: str, idx: int, why: str) -> None:
        ev = self.evidence.sentences
        self.used.add(idx)
        self.claims.append(Claim(self._fact(ev[idx]), [ev[idx]]))
        self.decisions.append(CheckDecision(sentence, "replaced", why, replacement=ev[idx].text))

    def _fact(self, s: Sentence) -> str:
        return excerpt(s, self.evidence.answer_type, self.question, self.style.fact_words)

    def _repeats(self, text: str) -> bool:
        """Every content word of ``text`` is already in the answer: it would say nothing new."""
        said = {t for c in self.claims for t in content_stems(c.text)}
        return bool(said) and set(content_stems(text)) <= said

    def _states_kind(self) -> bool:
        kind = self.evidence.answer_type
        return any(holds_kind(c.text, kind, self.question) for c in self.claims)

    def settled(self) -> list[Claim]:
        """Claims already in their final place: ``finish`` only puts an excerpt *first* when no
        claim states the kind asked for, and otherwise only appends."""
        return list(self.claims) if self._states_kind() else []

    def _restate(self, claims: list[Claim], decisions: list[CheckDecision], kind: str) -> None:
        for n, claim in enumerate(claims):
            held = [s for s in claim.cites if holds_kind(s.text, kind, self.question)]
            if held:
                claims[n] = Claim(self._fact(held[0]), [held[0]])
                decisions.append(
                    CheckDecision(
                        claim.text,
                        "replaced",
                        f"does not state the {kind} asked for; its source does",
                        replacement=held[0].text,
                    )
                )
                return

    def finish(self) -> tuple[list[Claim], list[CheckDecision]]:
        ev = self.evidence.sentences
        claims, decisions, used = list(self.claims), list(self.decisions), set(self.used)
        # The answer must state what was asked for, from every piece of evidence chosen for it.
        kind = self.evidence.answer_type
        if not self._states_kind():
            for i, s in enumerate(ev):
                if i not in used:
                    claims.insert(0, Claim(self._fact(s), [s]))
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
            else:
                # Every sentence is cited already, by claims that leave out what was asked ("The
                # old bridge will remain open ..." from "..., which opened in 1958, will stay
                # open ..."): the first whose source holds it is stated as its source states it.
                self._restate(claims, decisions, kind)
        for i, s in enumerate(ev):
            if i not in used:
                claims.append(Claim(self._fact(s), [s]))
                used.add(i)
                decisions.append(
                    CheckDecision(
                        "", "added", "evidence for another part of the question", replacement=s.text
                    )
                )
        return claims, decisions


def check_draft(
    draft: str,
    evidence: Evidence,
    question: str,
    max_claims: int = 2,
    style: AnswerStyle = AnswerStyle(),
) -> tuple[list[Claim], list[CheckDecision]]:
    check = DraftCheck(evidence, question, max_claims, style)
    for sentence in draft_sentences(draft):
        check.add(sentence)
    return check.finish()


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
