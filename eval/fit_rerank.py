"""Fit the reranking of the selector's best sentences: ``python -m eval.fit_rerank`` ->
rag/models/rerank.json.

For each answerable question of the fit data (SQuAD articles 1-6 and the seeds gold, the same
cached candidates as ``python -m eval.fit``), the committed sentence model's best ``top``
sentences are scored by the question likelihood (``rag/likelihood.py``); on the fit data the
sentence model's logits are out of fold (each article scored by a model fitted without it, as
new text would be). The depth, weight and largest lead of the best sentence over the second
at which it is still reranked (further ahead it is left first, and the question costs no
model pass) are chosen on the fit data: of the settings within ``TOLERANCE`` of the most answer
sentences ranked first, the one that scores fewest sentences. The same figures on articles
7-8, which neither model saw, are written beside them. Refit after
``eval.fit``: the weight is on the sentence model's logit scale.

    python -m eval.fit_rerank              # ~10 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from eval.fit import GOLD, SQUAD, Row, _x, load_rows
from rag.features import SENTENCE_FEATURES
from rag.likelihood import OwnModel, QuestionLikelihood
from rag.selector import DEFAULT_MODEL, DEFAULT_RERANK, Rerank, SelectorModel, fit_logistic

TOPS = (2, 3)
WEIGHTS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)
GAPS = (0.5, 1.0, 1.5, 2.0, None)  # None: every question
# Answers first on the fit data worth trading for fewer model passes: about ten of the fit's
# ~2,200 answerable questions, the spread between neighbouring settings of the grid.
TOLERANCE = 0.005
L2 = 1.0  # eval.fit's default, the committed sentence model's


# Per question: the logits, likelihoods and labels of the sentence model's best sentences.
Ranked = list[tuple[np.ndarray, np.ndarray, np.ndarray]]


def scored(
    rows: list[Row],
    logits_of: Callable[[Row], np.ndarray],
    scorer: QuestionLikelihood,
    depth: int,
    memo: dict[tuple[str, str], float],
) -> Ranked:
    """(logits, likelihoods, labels) of each answerable row's best ``depth`` sentences.
    ``memo`` keeps every likelihood computed, by (question, sentence)."""
    out = []
    t0 = time.perf_counter()
    for n, r in enumerate(rows):
        cands = r.extraction.candidates
        if not r.answerable or not cands or not r.labels.any():
            continue
        logits = logits_of(r)
        order = np.argsort(-logits, kind="stable")[:depth]
        q = r.extraction.question
        todo = [cands[i].sentence.text for i in order if (q, cands[i].sentence.text) not in memo]
        for text, value in zip(todo, scorer.score(q, todo) if todo else [], strict=True):
            memo[(q, text)] = value
        lm = [memo[(q, cands[i].sentence.text)] for i in order]
        out.append((logits[order], np.asarray(lm), r.labels[order]))
        if n % 200 == 199:
            print(f"  {n + 1}/{len(rows)} ({time.perf_counter() - t0:.0f}s)", file=sys.stderr)
    return out


def out_of_fold(rows: list[Row], pairs: bool) -> dict[str, np.ndarray]:
    """Each fit row's candidate logits from a sentence model fitted without its article (or
    gold file): in sample, the sentence model is surer of itself than on new text, and the
    weight of a second signal would be fitted too small."""
    out: dict[str, np.ndarray] = {}
    for g in sorted({r.group for r in rows}):
        x, y = _x([r for r in rows if r.group != g and r.answerable])
        model = fit_logistic(x, y, SENTENCE_FEATURES, l2=L2, pairs=pairs)
        for r in rows:
            if r.group == g and r.extraction.candidates:
                x = np.stack([c.features for c in r.extraction.candidates])
                out[r.item_id] = model.logit(x)
    return out


def top1(data: Ranked, top: int, weight: float, max_gap: float | None = None) -> float:
    """Share of questions whose answer sentence comes first in ``Rerank.apply``'s order."""
    rule = _rule(top, weight, max_gap)
    hits = [y[rule.order(lg, lm)[0] if rule.needed(lg) else 0] > 0 for lg, lm, y in data]
    return float(np.mean(hits)) if hits else 0.0


def reranked_share(data: Ranked, max_gap: float | None) -> float:
    """Share of questions that pay for the second signal."""
    rule = _rule(2, 0.0, max_gap)
    return float(np.mean([rule.needed(lg) for lg, _, _ in data])) if data else 0.0


class _NoScorer:
    def score(self, question: str, sentences: list[str]) -> list[float]:
        raise AssertionError("only Rerank.needed() and order() are used here")


def _rule(top: int, weight: float, max_gap: float | None) -> Rerank:
    return Rerank(_NoScorer(), top, weight, float("inf") if max_gap is None else max_gap)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m eval.fit_rerank", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--squad", type=Path, default=SQUAD)
    ap.add_argument("--gold", type=Path, default=GOLD)
    ap.add_argument("--sources", type=Path, default=Path("seeds"))
    ap.add_argument("--data-dir", type=Path, default=Path(".rag-data"))
    ap.add_argument("--out", type=Path, default=DEFAULT_RERANK)
    args = ap.parse_args(argv)
    from rag.config import Settings, offline_guards
    from rag.llm import default_chat_gguf

    offline_guards()
    rows = load_rows(args.squad, [args.gold], args.sources, args.data_dir, False, 1)
    model = SelectorModel.load(DEFAULT_MODEL)
    # The file the service's scorer reads (the bundled GGUF's Q8_0 copy by default): the
    # weight is on its log-probabilities.
    gguf = default_chat_gguf(Settings())
    scorer = QuestionLikelihood(OwnModel(lambda: gguf).lease)

    def article(r: Row) -> int:
        return int(r.group.split(":")[1]) if r.group.startswith("squad:") else 0

    depth = max(TOPS)
    memo_path = args.data_dir / "fit-cache" / f"likelihood-{gguf.name}.pkl"
    memo = pickle.loads(memo_path.read_bytes()) if memo_path.is_file() else {}
    fit_rows = [r for r in rows if article(r) <= 6]
    oof = out_of_fold(fit_rows, model.sentence.pairs)
    fit = scored(fit_rows, lambda r: oof[r.item_id], scorer, depth, memo)

    def committed(r: Row) -> np.ndarray:
        return model.sentence.logit(np.stack([c.features for c in r.extraction.candidates]))

    held = scored([r for r in rows if article(r) >= 7], committed, scorer, depth, memo)
    memo_path.write_bytes(pickle.dumps(memo))
    grid = {
        (t, w, g): (top1(fit, t, w, g), top1(held, t, w, g))
        for t in TOPS
        for w in WEIGHTS
        for g in GAPS
    }
    for (t, w, g), (f, h) in grid.items():
        share = reranked_share(fit, g)
        print(f"top {t} weight {w:>4} gap {g}: fit {f:.3f}  held out {h:.3f}  reranked {share:.2f}")
    # Of the settings within TOLERANCE of the most first-ranked answers on the fit data, the
    # one that scores fewest sentences (each costs a model pass: the p95 latency bar has little
    # room), then the one with more answers first, then the lighter weight.
    best = max(f for f, _ in grid.values())
    near = [k for k in grid if grid[k][0] >= best - TOLERANCE]
    top, weight, gap = min(
        near, key=lambda k: (round(reranked_share(fit, k[2]) * k[0], 4), -grid[k][0], k[1])
    )
    about = {
        "command": "python -m eval.fit_rerank " + " ".join(argv or sys.argv[1:]),
        "signal": "mean log P(question tokens | 'Passage: <sentence>'), SmolLM2-135M-Instruct "
        f"({gguf.name.split('.')[-2]}, rag/requantize.py)",
        "rule": "of the settings within "
        f"{TOLERANCE} of the most answer sentences ranked first on the fit data (SQuAD 1-6, "
        "seeds gold; sentence logits out of fold there), the one that scores fewest sentences",
        "answer_first": {
            "fit (out of fold)": {
                "before": round(grid[(top, 0.0, None)][0], 4),
                "after": round(grid[(top, weight, gap)][0], 4),
                "reranked": round(reranked_share(fit, gap), 4),
            },
            "held out (SQuAD 7-8)": {
                "before": round(grid[(top, 0.0, None)][1], 4),
                "after": round(grid[(top, weight, gap)][1], 4),
                "reranked": round(reranked_share(held, gap), 4),
                "questions": len(held),
            },
        },
    }
    args.out.write_text(
        json.dumps({"top": top, "weight": weight, "max_gap": gap, "about": about}, indent=1)
        + "\n",
        encoding="utf-8",
    )
    print(json.dumps(about, indent=1))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
