"""Signals that say whether a sentence answers a question, on any topic.

One job: a question and the retrieved paragraphs in, one feature vector per candidate sentence
(and one per question, for abstention) out. Every signal is general: MiniLM similarity (trained
on question-answer pairs), overlap weighted by IDF over the retrieved text, the retriever's
rank, whether the sentence holds an answer of the kind asked for (``rag/kinds.py``), the
neighbouring sentences. How they combine is fitted (``rag/selector.py``), never set by hand.
"""

from __future__ import annotations

import itertools
import math
import re
import threading
from dataclasses import dataclass, field

import numpy as np

from rag.embed import Embedder
from rag.injection import addresses_the_model
from rag.kinds import holds_kind, names, question_kind
from rag.sentences import split_clauses, split_sentences, strip_dateline
from rag.text import content_stems, words
from rag.types import Retrieved, Sentence

SENTENCE_FEATURES = (
    "cos",  # MiniLM cosine, question <-> sentence
    "cos_gap",  # cos minus the best cos among the candidates
    "overlap",  # IDF-weighted share of the question's words in the sentence
    "overlap_gap",
    "para_overlap",  # ... in the sentence's paragraph and title
    "combo_gap",  # (cos + 0.5 overlap) minus its best
    "rank_inv",  # 1 / (1 + paragraph rank)
    "para_cos",  # the paragraph's own MiniLM cosine, as the retriever saw it (0 when unknown)
    "neighbour_cos",  # best cosine of the sentences before and after
    "kind_wanted",  # the question asks for a person, date, number or place
    "kind_new",  # the sentence holds one the question does not contain
    "kind_missing",  # asked for, not held
    "first",  # the paragraph's first sentence
    "log_words",
    "novel",  # share of the sentence's words the question does not use
    "bigram",  # share of the question's word pairs found in the sentence
)
QUESTION_FEATURES = (
    "best_logit",  # the sentence model's best score
    "second_gap",  # best minus second best
    "best_cos",
    "best_overlap",
    "best_para_overlap",
    "missing_share",  # IDF share of question words absent from the best paragraph
    "missing_max",  # the rarest of them, as a share of the largest IDF
    "unseen_share",  # IDF share of question words absent from every retrieved paragraph
    "kind_wanted",
    "best_kind_new",
    # "not"/"never" in the question and not in the best sentence: a question that negates what
    # the text states. Not the reverse: a "not" somewhere in an answering sentence is common
    # ("her lawyer, who had not been able to reach her, said ...") and says nothing.
    "negation_unmatched",
    "top1_para_best",  # the best sentence lies in the top-ranked paragraph
    # A question about another year, figure or name than the text's ("in 1967" where the text
    # says 1966) is SQuAD 2.0's commonest unanswerable kind after negation: the question's
    # numbers and names the best sentence's paragraph does not hold.
    "numbers_unheld",
    "names_unheld",
    "q_words",
)
# Which way each question signal can point, on any text: more of what the question asks found
# in the best sentence can only make an answer likelier, more of it missing only less. A model
# fitted freely on SQuAD 2.0 learns the opposite for some of them (its unanswerable questions
# were written to match a sentence closely: there a better match means *less* answerable), and
# that artefact turns natural questions away. Fits hold such a weight at zero (0: either way).
QUESTION_SIGNS = {
    "best_logit": 1,
    "second_gap": 1,
    "best_cos": 1,
    "best_overlap": 1,
    "best_para_overlap": 1,
    "missing_share": -1,
    "missing_max": -1,
    "unseen_share": -1,
    "kind_wanted": 0,
    "best_kind_new": 1,
    "negation_unmatched": -1,
    "top1_para_best": 1,
    "numbers_unheld": -1,
    "names_unheld": -1,
    "q_words": 0,
}
_NEGATION = re.compile(r"\b(?:not|never|no|n't|none|neither|nor|without)\b", re.I)


@dataclass
class Candidate:
    sentence: Sentence
    rank: int  # the paragraph's rank in retrieval
    position: int  # the sentence's index within its paragraph
    features: np.ndarray = field(default_factory=lambda: np.zeros(0))
    prob: float = 0.0  # set by the selector


@dataclass
class Extraction:
    question: str
    kind: str
    candidates: list[Candidate]
    question_stems: list[str]
    idf: dict[str, float]
    max_idf: float
    # Content stems of each candidate paragraph with its title, by paragraph id.
    paragraph_stems: dict[str, set[str]] = field(default_factory=dict)


class VectorCache:
    """Sentence vectors, remembered across questions (the same paragraphs come back); safe to
    share between request threads."""

    def __init__(self, max_items: int = 50_000) -> None:
        self._vectors: dict[tuple[str, str, str], np.ndarray] = {}
        self._lock = threading.Lock()
        self._max = max_items

    def embed(self, embedder: Embedder, texts: list[str]) -> np.ndarray:
        key = (embedder.backend, embedder.address)
        with self._lock:
            todo = list(dict.fromkeys(t for t in texts if (*key, t) not in self._vectors))
        if todo:
            fresh = [np.asarray(v, dtype=np.float32) for v in embedder.texts(todo)]
            with self._lock:
                if len(self._vectors) + len(todo) > self._max:
                    self._vectors.clear()
                for t, v in zip(todo, fresh, strict=True):
                    self._vectors[(*key, t)] = v / (np.linalg.norm(v) or 1.0)
        with self._lock:
            # A clear() by another thread between the two steps: embed what went missing.
            missing = [t for t in texts if (*key, t) not in self._vectors]
        if missing:
            return self.embed(embedder, texts)
        with self._lock:
            return np.stack([self._vectors[(*key, t)] for t in texts])


def candidates(retrieved: list[Retrieved], max_words: int = 40) -> list[Candidate]:
    """Sentences of the retrieved paragraphs; very long ones split into clauses."""
    out: list[Candidate] = []
    for rank, r in enumerate(retrieved):
        p = r.paragraph
        position = 0
        for i, s in enumerate(split_sentences(p.text, p.start)):
            if i == 0:
                s = strip_dateline(s)
            if addresses_the_model(s.text):
                continue  # text that speaks to the model is never evidence
            pieces = split_clauses(s) if len(s.text.split()) > max_words else [s]
            for piece in pieces:
                sentence = Sentence(text=piece.text, paragraph=p, start=piece.start, end=piece.end)
                out.append(Candidate(sentence, rank, position))
                position += 1
    return out


def _idf(stems_per_text: list[set[str]]) -> dict[str, float]:
    docs = stems_per_text or [set()]
    n = len(docs)
    df: dict[str, int] = {}
    for d in docs:
        for t in d:
            df[t] = df.get(t, 0) + 1
    return {t: math.log(1 + (n + 1) / (1 + c)) for t, c in df.items()}


def _share(stems: list[str], held: set[str], idf: dict[str, float], unseen: float) -> float:
    total = sum(idf.get(t, unseen) for t in stems)
    if not total:
        return 0.0
    return sum(idf.get(t, unseen) for t in stems if t in held) / total


def _bigrams(text: str) -> set[tuple[str, str]]:
    stems = content_stems(text)
    return set(itertools.pairwise(stems))


def extract(
    question: str,
    retrieved: list[Retrieved],
    embedder: Embedder,
    cache: VectorCache,
    context: str = "",
) -> Extraction:
    """Feature vectors for every candidate sentence of ``retrieved``.

    ``context``: words the conversation adds ("who announced it?" after a question about the
    break of relations); they count in the overlap at a third of a question word's weight.
    """
    cands = candidates(retrieved)
    kind = question_kind(question)
    q_stems = list(dict.fromkeys(content_stems(question)))
    ctx_stems = [t for t in dict.fromkeys(content_stems(context)) if t not in q_stems]
    if not cands:
        return Extraction(question, kind, [], q_stems, {}, 1.0)
    texts = [c.sentence.text for c in cands]
    sent_stems = [set(content_stems(t)) for t in texts]
    idf = _idf(sent_stems)
    max_idf = math.log(1 + (len(texts) + 1))
    vecs = cache.embed(embedder, texts)
    q = np.asarray(embedder.query(f"{question} {context}".strip()), dtype=np.float32)
    cos = vecs @ (q / (np.linalg.norm(q) or 1.0))  # the vector retrieval already made
    para_stems: dict[str, set[str]] = {}
    for c in cands:
        p = c.sentence.paragraph
        if p.id not in para_stems:
            para_stems[p.id] = set(content_stems(f"{p.title} {p.text}"))
    weighted = {t: idf.get(t, max_idf) for t in q_stems} | {
        t: idf.get(t, max_idf) / 3 for t in ctx_stems
    }
    total = sum(weighted.values()) or 1.0

    def overlap(held: set[str]) -> float:
        return sum(w for t, w in weighted.items() if t in held) / total

    ov = np.array([overlap(s) for s in sent_stems])
    pov = np.array([overlap(para_stems[c.sentence.paragraph.id]) for c in cands])
    combo = cos + 0.5 * ov
    q_bigrams = _bigrams(question)
    q_words = set(words(question))
    wanted = kind != "other"
    para_cos = {
        r.paragraph.id: float(r.dense_score) if r.dense_score is not None else 0.0
        for r in retrieved
    }
    for i, c in enumerate(cands):
        same = [
            j
            for j in (i - 1, i + 1)
            if 0 <= j < len(cands) and cands[j].sentence.paragraph.id == c.sentence.paragraph.id
        ]
        new = holds_kind(c.sentence.text, kind, question) if wanted else False
        toks = words(c.sentence.text)
        novel = sum(1 for w in toks if w not in q_words) / (len(toks) or 1)
        bigram = (
            len(q_bigrams & _bigrams(c.sentence.text)) / len(q_bigrams) if q_bigrams else 0.0
        )
        c.features = np.array(
            [
                cos[i],
                cos[i] - cos.max(),
                ov[i],
                ov[i] - ov.max(),
                pov[i],
                combo[i] - combo.max(),
                1.0 / (1 + c.rank),
                para_cos[c.sentence.paragraph.id],
                max((cos[j] for j in same), default=0.0),
                float(wanted),
                float(new),
                float(wanted and not new),
                float(c.position == 0),
                math.log1p(len(toks)),
                novel,
                bigram,
            ],
            dtype=np.float64,
        )
    return Extraction(question, kind, cands, q_stems, idf, max_idf, para_stems)


def question_features(ex: Extraction, ranked: list[Candidate], logits: list[float]) -> np.ndarray:
    """One vector per question, from its best candidates: is anything here an answer?"""
    if not ranked:
        return np.zeros(len(QUESTION_FEATURES))
    best = ranked[0]
    f = dict(zip(SENTENCE_FEATURES, best.features, strict=True))
    p = best.sentence.paragraph
    held = ex.paragraph_stems[p.id]
    everywhere = set(ex.idf)
    for title in {c.sentence.paragraph.title for c in ex.candidates}:
        everywhere |= set(content_stems(title))
    missing = [t for t in ex.question_stems if t not in held]
    unseen = ex.max_idf
    q_total = sum(ex.idf.get(t, unseen) for t in ex.question_stems) or 1.0
    missing_share = sum(ex.idf.get(t, unseen) for t in missing) / q_total
    missing_max = max((ex.idf.get(t, unseen) for t in missing), default=0.0) / unseen
    unseen_share = (
        sum(ex.idf.get(t, unseen) for t in ex.question_stems if t not in everywhere) / q_total
    )
    para_words = set(words(f"{p.title} {p.text}"))
    q_numbers = {w for w in words(ex.question) if any(ch.isdigit() for ch in w)}
    q_names = [set(words(n)) for _, n in names(ex.question)]
    numbers_unheld = len(q_numbers - para_words) / len(q_numbers) if q_numbers else 0.0
    names_unheld = (
        sum(1 for n in q_names if not n <= para_words) / len(q_names) if q_names else 0.0
    )
    q_neg = bool(_NEGATION.search(ex.question))
    s_neg = bool(_NEGATION.search(best.sentence.text))
    return np.array(
        [
            logits[0],
            logits[0] - (logits[1] if len(logits) > 1 else logits[0] - 5.0),
            f["cos"],
            f["overlap"],
            f["para_overlap"],
            missing_share,
            missing_max,
            unseen_share,
            f["kind_wanted"],
            f["kind_new"],
            float(q_neg and not s_neg),
            float(best.rank == 0),
            numbers_unheld,
            names_unheld,
            math.log1p(len(ex.question_stems)),
        ],
        dtype=np.float64,
    )
