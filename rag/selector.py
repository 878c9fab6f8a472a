"""Evidence selection and abstention behind one small interface.

An ``EvidenceSelector`` takes a question and the retrieved paragraphs and returns ``Evidence``:
the sentences that answer it, or a decision that none does. ``wiring.py`` chooses the
implementation; the pipeline only calls ``select``.

``FittedSelector`` scores every candidate sentence with a logistic model over general signals
(``rag/features.py``) and decides whether to answer with a second logistic model over the best
candidates' signals. Both models' weights, the abstention threshold, what they were fitted on and
their held-out figures live in one JSON file (``rag/models/selector.json``), written by
``python -m eval.fit`` and loaded by default. A refit changes data, not code.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rag.embed import Embedder
from rag.errors import BackendUnavailable
from rag.features import (
    QUESTION_FEATURES,
    SENTENCE_FEATURES,
    Candidate,
    Extraction,
    VectorCache,
    extract,
    question_features,
)
from rag.followup import resolve
from rag.kinds import asked_title, holder, names, title_owner
from rag.likelihood import SentenceScorer
from rag.text import content_stems
from rag.types import Evidence, ResolvedQuestion, Retrieved, Turn

log = logging.getLogger(__name__)
DEFAULT_MODEL = Path(__file__).parent / "models" / "selector.json"
DEFAULT_RERANK = Path(__file__).parent / "models" / "rerank.json"
# "When did ..., and who ...?", "On what day, and on what date ...?": a second question joined
# to the first by "and", its question word perhaps after a preposition.
_TWO_PARTS = re.compile(
    r",?\s+and\s+(?=(?:(?:on|in|at|by|for|from|to|with|of|about)\s+)?"
    r"(?:who|whom|whose|what|when|where|which|why|how)\b)",
    re.I,
)
_AUXILIARIES = (
    r"(?:did|does|do|is|was|were|are|am|has|have|had|will|would|can|could|should|shall|may|"
    r"might|must)"
)
# "On what day, and ...": a first part that opens with a preposition and has no verb of its
# own is only a phrase of the second's question.
_FRAGMENT = re.compile(r"^\s*(?:on|in|at|by|for|from|to|with|of|about|during|since|until)\s", re.I)
_AUXILIARY = re.compile(rf"\b{_AUXILIARIES}\b", re.I)
# "Were flights affected?", "Did the court rule ...?": a question that asks whether something
# holds opens with an auxiliary verb (English grammar), perhaps negated ("Wasn't it ...?").
_YES_NO = re.compile(
    rf"^\s*(?:(?:and|so|but)\s+)?(?:{_AUXILIARIES}|isn't|aren't|wasn't|weren't|didn't|"
    r"doesn't|don't|hasn't|haven't|hadn't|can't|won't)\b",
    re.I,
)


class EvidenceSelector(Protocol):
    def select(self, question: ResolvedQuestion, retrieved: list[Retrieved]) -> Evidence: ...


@dataclass(frozen=True)
class Logistic:
    """A fitted logistic model: standardise, dot, sigmoid. With ``pairs`` the standardised
    features are followed by every product of two of them (squares included): a quadratic
    model, still one weight vector in JSON, that can weigh one signal by another (the kind
    asked for with the similarity, say)."""

    names: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float
    pairs: bool = False

    def logit(self, x: np.ndarray) -> np.ndarray:
        return _expand((x - self.mean) / self.scale, self.pairs) @ self.weights + self.bias

    def prob(self, x: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.logit(x)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "features": list(self.names),
            "mean": [round(float(v), 6) for v in self.mean],
            "scale": [round(float(v), 6) for v in self.scale],
            "weights": [round(float(v), 6) for v in self.weights],
            "bias": round(float(self.bias), 6),
            "pairs": self.pairs,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], expected: tuple[str, ...]) -> Logistic:
        names = tuple(d["features"])
        if names != expected:
            raise ValueError(
                f"selector model features {names} do not match the code's {expected}: refit "
                "with `python -m eval.fit`"
            )
        return cls(
            names,
            np.asarray(d["mean"], dtype=np.float64),
            np.asarray(d["scale"], dtype=np.float64),
            np.asarray(d["weights"], dtype=np.float64),
            float(d["bias"]),
            bool(d.get("pairs", False)),
        )


def _expand(z: np.ndarray, pairs: bool) -> np.ndarray:
    if not pairs:
        return z
    i, j = np.triu_indices(z.shape[1])
    return np.hstack([z, z[:, i] * z[:, j]])


def fit_logistic(
    x: np.ndarray,
    y: np.ndarray,
    names: tuple[str, ...],
    l2: float = 1.0,
    sample_weight: np.ndarray | None = None,
    iters: int = 50,
    pairs: bool = False,
    signs: Sequence[int] | None = None,
) -> Logistic:
    """L2-regularised logistic regression by Newton's method (numpy only); ``pairs``: the
    quadratic model (``Logistic``).

    ``signs``: per feature, +1 or -1 for the only direction its weight may take (0: either).
    A weight fitted the other way is held at zero and the rest refitted, one at a time, the
    worst first (an active set)."""
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    z = np.hstack([_expand((x - mean) / scale, pairs), np.ones((len(x), 1))])
    sw = np.ones(len(x)) if sample_weight is None else sample_weight
    want = np.zeros(z.shape[1])
    if signs is not None:
        want[: len(signs)] = signs
    free = np.ones(z.shape[1], dtype=bool)
    while True:
        w = np.zeros(z.shape[1])
        w[free] = _newton(z[:, free], y, sw, l2, iters)
        wrong = np.where(want * w < 0, -want * w, 0.0)
        if not wrong.any():
            return Logistic(names, mean, scale, w[:-1], float(w[-1]), pairs)
        free[int(np.argmax(wrong))] = False


def _newton(z: np.ndarray, y: np.ndarray, sw: np.ndarray, l2: float, iters: int) -> np.ndarray:
    """Weights of the logistic model on ``z``, whose last column is the bias (not penalised)."""
    w = np.zeros(z.shape[1])
    reg = np.full(z.shape[1], l2)
    reg[-1] = 0.0
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-(z @ w)))
        grad = z.T @ (sw * (p - y)) + reg * w
        hess = (z * (sw * p * (1 - p))[:, None]).T @ z + np.diag(reg + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-7:
            break
    return w


def fit_listwise(
    groups: list[tuple[np.ndarray, np.ndarray]],
    names: tuple[str, ...],
    l2: float = 0.01,
    iters: int = 300,
    rate: float = 0.5,
) -> Logistic:
    """A conditional-logit (softmax) ranker: for each question, its candidates' scores compete
    for the probability of holding the answer. ``groups``: (features, labels) per question with
    at least one positive label. The bias is fitted afterwards so that sigmoid(score) is a
    calibrated per-sentence chance over the same data."""
    allx = np.vstack([x for x, _ in groups])
    mean = allx.mean(axis=0)
    scale = allx.std(axis=0)
    scale[scale < 1e-9] = 1.0
    zs = [((x - mean) / scale, y / y.sum()) for x, y in groups]
    w = np.zeros(len(mean))
    for _ in range(iters):
        grad = np.zeros_like(w)
        for z, t in zs:
            s = z @ w
            p = np.exp(s - s.max())
            p /= p.sum()
            grad += z.T @ (p - t)
        w -= rate * (grad / len(zs) + l2 * w)
    scores = np.concatenate([z @ w for z, _ in zs])
    labels = np.concatenate([y for _, y in groups])
    calib = fit_logistic(scores[:, None], labels, ("score",), l2=0.0)
    a = calib.weights[0] / calib.scale[0]
    b = calib.bias - a * calib.mean[0]
    return Logistic(names, mean, scale, w * a, float(b))


@dataclass(frozen=True)
class SelectorModel:
    """The sentence model; P(some sentence answers) and its threshold; and, when fitted with
    questions asked of sources that do not hold their subject, P(the sources cover what the
    question asks about) and its threshold. The two kinds of unanswerable question differ:
    one asked of the article it is about but not answered there (SQuAD 2.0's kind) is close to
    its sentences, one about something the sources never cover is not, and one logistic model
    fitted on both fits neither well (``python -m eval.fit`` prints both figures)."""

    sentence: Logistic
    answerable: Logistic
    threshold: float  # answer when P(some sentence answers) >= threshold
    about: dict[str, Any]
    covered: Logistic | None = None
    covered_threshold: float = 0.0  # ... and P(the sources cover it) >= covered_threshold

    @classmethod
    def load(cls, path: Path = DEFAULT_MODEL) -> SelectorModel:
        d = json.loads(Path(path).read_text(encoding="utf-8"))
        covered = d.get("covered_model")
        return cls(
            Logistic.from_dict(d["sentence_model"], SENTENCE_FEATURES),
            Logistic.from_dict(d["answerable_model"], QUESTION_FEATURES),
            float(d["threshold"]),
            d.get("about", {}),
            None if covered is None else Logistic.from_dict(covered, QUESTION_FEATURES),
            float(d.get("covered_threshold", 0.0)),
        )

    def chances(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """P(some sentence answers) and P(the sources cover what is asked), per row of question
        features (``rag.features.question_features``)."""
        covered = np.ones(len(q)) if self.covered is None else self.covered.prob(q)
        return self.answerable.prob(q), covered

    def confidence(
        self, p_answerable: np.ndarray | float, p_covered: np.ndarray | float
    ) -> np.ndarray:
        """The chance the selector reports and abstains below ``threshold`` on: P(some sentence
        answers), 0 where the sources do not cover the question (nothing there answers it)."""
        return np.where(p_covered < self.covered_threshold, 0.0, p_answerable)

    def to_dict(self) -> dict[str, Any]:
        out = {
            "about": self.about,
            "threshold": round(self.threshold, 6),
            "sentence_model": self.sentence.to_dict(),
            "answerable_model": self.answerable.to_dict(),
        }
        if self.covered is not None:
            out["covered_threshold"] = round(self.covered_threshold, 6)
            out["covered_model"] = self.covered.to_dict()
        return out


@dataclass(frozen=True)
class Rerank:
    """The sentence model's best ``top`` sentences reordered by their logit plus ``weight`` x
    a second signal (``rag/likelihood.py``), when the best leads the second by less than
    ``max_gap`` logits: further ahead, the signal changed no answer in the fit data and only
    cost time. All three fitted by ``python -m eval.fit_rerank``.
    """

    scorer: SentenceScorer
    top: int
    weight: float
    max_gap: float = float("inf")

    @classmethod
    def load(cls, scorer: SentenceScorer, path: Path = DEFAULT_RERANK) -> Rerank:
        d = json.loads(Path(path).read_text(encoding="utf-8"))
        gap = d.get("max_gap")
        return cls(scorer, int(d["top"]), float(d["weight"]), float("inf" if gap is None else gap))

    def needed(self, logits: Sequence[float]) -> bool:
        """Whether the best ``top`` are close enough for the second signal to be asked."""
        return min(self.top, len(logits)) >= 2 and logits[0] - logits[1] < self.max_gap

    def order(self, logits: Sequence[float], extra: Sequence[float]) -> list[int]:
        """The best ``top`` positions, by logit + weight x the second signal."""
        n = min(self.top, len(logits), len(extra))
        return sorted(range(n), key=lambda i: -(logits[i] + self.weight * extra[i]))

    def apply(self, question: str, ranked: list[Candidate], logits: list[float]) -> None:
        """Reorders the head of ``ranked`` in place."""
        if not self.needed(logits):
            return
        head = ranked[: self.top]
        try:
            extra = self.scorer.score(question, [c.sentence.text for c in head])
        except BackendUnavailable as exc:
            # A ranking signal, not the answer: without it the sentence model's order stands.
            log.warning("reranking skipped: %s", exc)
            return
        ranked[: len(head)] = [head[i] for i in self.order(logits, extra)]


@dataclass
class Scored:
    """One question's candidates ranked by the sentence model, and P(answerable)."""

    extraction: Extraction
    ranked: list[Candidate]
    p_answerable: float
    logits: list[float] = field(default_factory=list)  # of ``ranked``, in order
    p_covered: float = 1.0  # P(the sources cover what the question asks about)


class FittedSelector:
    """Picks the sentence(s) most likely to hold the answer; abstains when P(answerable) is
    below the fitted threshold."""

    def __init__(
        self,
        embedder: Embedder,
        model: SelectorModel | Path = DEFAULT_MODEL,
        max_sentences: int = 2,
        threshold: float | None = None,
        rerank: Rerank | None = None,
        retrieve: Callable[[str, int], list[Retrieved]] | None = None,
    ) -> None:
        self.embedder = embedder
        # Retrieval for each part of a two-part question; without it a part reads the whole's
        # paragraphs, where the part's own can rank below the top k.
        self.retrieve = retrieve
        self._model = model
        self._threshold = threshold
        self.rerank = rerank
        self._lock = threading.Lock()
        self.max_sentences = max_sentences
        self.cache = VectorCache()

    @property
    def model(self) -> SelectorModel:
        """Loaded on first use: commands that never select evidence never read the file."""
        with self._lock:
            if isinstance(self._model, Path):
                self._model = SelectorModel.load(self._model)
            return self._model

    @property
    def threshold(self) -> float:
        return self.model.threshold if self._threshold is None else self._threshold

    def score(self, question: ResolvedQuestion, retrieved: list[Retrieved]) -> Scored:
        ex = extract(question.text, retrieved, self.embedder, self.cache, question.context)
        if not ex.candidates:
            return Scored(ex, [], 0.0)
        x = np.stack([c.features for c in ex.candidates])
        logits = self.model.sentence.logit(x)
        order = np.argsort(-logits, kind="stable")
        ranked = [ex.candidates[i] for i in order]
        for c, lg in zip(ranked, logits[order], strict=True):
            c.prob = float(1.0 / (1.0 + np.exp(-lg)))
        ranked_logits = [float(v) for v in logits[order]]
        p, p_covered = self.model.chances(question_features(ex, ranked, ranked_logits)[None, :])
        return Scored(ex, ranked, float(p[0]), ranked_logits, float(p_covered[0]))

    def _answers(self, s: Scored) -> bool:
        """The fitted decision: the sources cover what is asked, and some sentence answers."""
        return s.p_answerable >= self.threshold and s.p_covered >= self.model.covered_threshold

    def select(self, question: ResolvedQuestion, retrieved: list[Retrieved]) -> Evidence:
        s = self.score(question, retrieved)
        kind = s.extraction.kind
        if not s.ranked:
            return Evidence(question.text, kind, [], retrieved, False, "nothing retrieved")
        halves = two_parts(question)
        if not halves and (titled := self._title_holder(question, s)) is not None:
            return _one_sentence(question, s, titled, retrieved, "names who holds the title")
        # A question that asks two things is also two questions to the model, which was fitted
        # on questions that ask one: as a whole it can score low on every sentence, since each
        # answers half of it. Each part is decided, and its sentence chosen, on its own too.
        # Each part is scored on its own paragraphs, as any question is: the whole's retrieval
        # favours whichever part has more words in the text.
        parts = [(part, self._part_paragraphs(part, retrieved)) for part in halves]
        scored = [(part, self.score(part, found)) for part, found in parts]
        answered = [
            (q, ps) for q, ps in [(question, s), *scored] if ps.ranked and self._answers(ps)
        ]
        if not answered and (stated := _states_whole(question, s)) is not None:
            # The fitted models never saw a yes/no question (SQuAD has none): short ones such
            # as "Were flights affected?" score low, as few-word questions do. Such a question
            # states its own answer but for yes or no, so a sentence that holds every one of its
            # words is the evidence ("Flights ... were not affected.").
            why = "a yes/no question whose every word one sentence holds"
            return _one_sentence(question, s, stated, retrieved, why)
        if not answered:
            return self._decline(question, s, retrieved)
        read = _merged([retrieved, *(found for _, found in parts)])
        return self._answer(question, kind, answered, read)

    def _title_holder(self, question: ResolvedQuestion, s: Scored) -> Candidate | None:
        """For "Who is the mayor?", the best-ranked of the top eight sentences that names a
        holder of that title in apposition ("Mayor Dolores Whitcombe", "civil protection chief
        Vidir Reynisson"), when the sources cover the question. The commonest question about
        a news story; SQuAD, the fit's data, asks it too rarely for the sentence model to
        learn the pattern (it preferred the lead, which shares more words), and a question
        this short scores below the threshold. Not for a question that asks two things."""
        title = asked_title(question.text)
        if title is None or s.p_covered < self.model.covered_threshold:
            return None
        # Whose title it is ("Birchwood's chief executive") the apposition does not say. When
        # the fitted decision would decline, the owner must stand in the same paragraph, or
        # another company's chief executive would be named.
        owner = set(content_stems(title_owner(question.text)))
        for c in s.ranked[:8]:
            if holder(title, c.sentence.text, question.text):
                here = set(content_stems(c.sentence.paragraph.text))  # not its title's words
                return c if self._answers(s) or owner <= here else None
        return None

    def _part_paragraphs(
        self, part: ResolvedQuestion, retrieved: list[Retrieved]
    ) -> list[Retrieved]:
        if self.retrieve is None:
            return retrieved
        # By its own words, not its context: the second part's context is the first part's
        # topic ("Where did Morgan work?" after "... did Mendel publish ...?"), which would
        # retrieve the first part's paragraphs again. Its pronouns are resolved in its text.
        return self.retrieve(part.text, len(retrieved))

    def _answer(
        self,
        question: ResolvedQuestion,
        kind: str,
        answered: list[tuple[ResolvedQuestion, Scored]],
        retrieved: list[Retrieved],
    ) -> Evidence:
        chosen: list[Candidate] = []
        for asked, s in answered:
            if len(chosen) >= self.max_sentences:
                break
            if self.rerank is not None:
                # Only once the question is to be answered: P(answerable) stays the sentence
                # model's, the second signal only picks among its best sentences.
                self.rerank.apply(asked.text, s.ranked, s.logits)
            if s.ranked[0].sentence.text not in {c.sentence.text for c in chosen}:
                chosen.append(s.ranked[0])
        for c in chosen:
            c.sentence.score = round(c.prob, 4)
        p = max(s.p_answerable for _, s in answered)
        return Evidence(
            question.text,
            kind,
            [c.sentence for c in chosen],
            retrieved,
            answerable=True,
            reason=f"P(some sentence answers) = {p:.2f}",
            confidence=p,
        )

    def _decline(
        self, question: ResolvedQuestion, s: Scored, retrieved: list[Retrieved]
    ) -> Evidence:
        uncovered = s.p_covered < self.model.covered_threshold
        related = _distinct(s.ranked)[:2]
        for c in related:
            c.sentence.score = round(c.prob, 4)
        reason = (
            f"P(the sources cover what it asks about) = {s.p_covered:.2f}, below the fitted "
            f"threshold {self.model.covered_threshold:.2f}"
            if uncovered
            else f"P(some sentence answers) = {s.p_answerable:.2f}, below the fitted "
            f"threshold {self.threshold:.2f}"
        )
        return Evidence(
            question.text,
            s.extraction.kind,
            [c.sentence for c in related],
            retrieved,
            answerable=False,
            reason=f"{reason} (best sentence {s.ranked[0].prob:.2f})",
            confidence=float(self.model.confidence(s.p_answerable, s.p_covered)),
        )


def two_parts(question: ResolvedQuestion) -> list[ResolvedQuestion]:
    """A question that asks two things ("Who ..., and when ...?") as its two questions, each
    with the other's words as context (the second's "she" or "it" names what the first does);
    [] for a question that asks one thing."""
    m = _TWO_PARTS.search(question.text)
    if m is None:
        return []
    first = question.text[: m.start()].strip(" ,") + "?"
    second = question.text[m.end() :].strip()
    second = second[:1].upper() + second[1:]
    if len(first.split()) < 3 or len(second.split()) < 2:
        return []
    # The second part's "she" or "it" names what the first asks about: resolved as a follow-up
    # to it. The first part stands on its own words (the second's as context would pull both
    # parts to the same sentence), unless it is only a phrase whose verb is the second's: "On
    # what day, and on what date, did ...?".
    then = resolve(second, [Turn("user", first)])
    ahead = second if _FRAGMENT.match(first) and not _AUXILIARY.search(first) else ""
    return [
        ResolvedQuestion(first, f"{question.context} {ahead}".strip()),
        ResolvedQuestion(then.text, f"{question.context} {then.context}".strip()),
    ]


def _one_sentence(
    question: ResolvedQuestion, s: Scored, c: Candidate, retrieved: list[Retrieved], why: str
) -> Evidence:
    """Evidence of one sentence chosen by a grammar rule; the confidence stays the model's."""
    c.sentence.score = round(c.prob, 4)
    return Evidence(
        question.text,
        s.extraction.kind,
        [c.sentence],
        retrieved,
        answerable=True,
        reason=why,
        confidence=s.p_answerable,
    )


def _states_whole(question: ResolvedQuestion, s: Scored, depth: int = 5) -> Candidate | None:
    """For a yes/no question, the best-ranked of the top ``depth`` sentences that holds all of
    its content words (at least two); None for any other question."""
    asked = set(s.extraction.question_stems)
    if not _YES_NO.match(question.text) or len(asked) < 2:
        return None
    # A name may stand earlier in the paragraph, the sentence saying "he" or "they".
    named = {t for _, n in names(question.text) for t in content_stems(n)}
    for c in s.ranked[:depth]:
        held = set(content_stems(c.sentence.text))
        elsewhere = s.extraction.paragraph_stems.get(c.sentence.paragraph.id, set())
        if all(t in held or (t in named and t in elsewhere) for t in asked):
            return c
    return None


def _merged(lists: Sequence[list[Retrieved]]) -> list[Retrieved]:
    """The paragraphs of several retrievals, each once, in the order first found."""
    found: dict[str, Retrieved] = {}
    for r in (r for rs in lists for r in rs):
        found.setdefault(r.paragraph.id, r)
    return list(found.values())


def _distinct(cands: list[Candidate]) -> list[Candidate]:
    seen: set[str] = set()
    out = []
    for c in cands:
        if c.sentence.paragraph.id not in seen:
            seen.add(c.sentence.paragraph.id)
            out.append(c)
    return out
