"""Fit the evidence selector from gold files: ``python -m eval.fit`` -> rag/models/selector.json.

The split is by article, never by question (eval/data/README.md): the sentence and answerable
models are fitted on SQuAD articles 1-6 plus the seeds gold file; the abstention threshold is
the largest whose wrong abstention stays within ``--max-wrong`` on out-of-fold chances (each
article scored by a model fitted without it); articles 7-8 are only measured, and their
figures are written into the JSON.
All 8 articles are indexed together, so every question meets the others' paragraphs as haystack.

    python -m eval.fit                        # the committed model
    python -m eval.fit --no-gold              # SQuAD only
    python -m eval.fit --refresh              # re-extract features (after changing rag/features.py)
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import pickle
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eval.gold import GoldItem, load_gold, load_squad
from eval.metrics import normalize_gold, supports
from eval.run import read_source_texts
from rag.features import QUESTION_FEATURES, SENTENCE_FEATURES, Extraction, question_features
from rag.selector import DEFAULT_MODEL, Logistic, SelectorModel, fit_listwise, fit_logistic

SQUAD = Path("eval/data/squad2-dev-a.json")
GOLD = Path("eval/gold/seeds.jsonl")


@dataclass
class Row:
    item_id: str
    group: str  # "squad:<n>" (1-based article) or "gold:<file stem>"
    type: str
    answerable: bool
    extraction: Extraction
    labels: np.ndarray  # per candidate: holds an answer alias, in a supporting paragraph


def _contains(sentence: str, alias: str) -> bool:
    s, a = f" {normalize_gold(sentence)} ", f" {normalize_gold(alias)} "
    return a.strip() != "" and a in s


def _labels(item: GoldItem, ex: Extraction, texts: dict[str, str]) -> np.ndarray:
    out = np.zeros(len(ex.candidates))
    if not item.answerable:
        return out
    for i, c in enumerate(ex.candidates):
        p = c.sentence.paragraph
        if not supports(p.text, p.source, p.start, p.end, item.evidence, texts):
            continue
        if any(_contains(c.sentence.text, a) for a in item.aliases()):
            out[i] = 1.0
    return out


def _pipeline(sources: Path, data_dir: Path):
    from eval.cli import eval_data_dir
    from rag.config import Settings
    from rag.embed import describe
    from rag.wiring import build_pipeline

    settings = Settings()
    index_dir = eval_data_dir(data_dir, sources, **describe(settings))
    settings = settings.model_copy(update={"data_dir": index_dir, "sources_dir": sources})
    pipeline = build_pipeline(settings)
    pipeline.ingest(sources, prune=True)
    return pipeline


def collect(
    items: list[GoldItem], groups: list[str], sources: Path, data_dir: Path
) -> list[Row]:
    """Retrieve for every item as the service would, and extract every candidate's features."""
    from rag.features import VectorCache, extract
    from rag.followup import resolve

    pipeline = _pipeline(sources, data_dir)
    names = {ev.source for item in items for ev in item.evidence}
    texts, _ = read_source_texts(sources, names)
    cache = VectorCache()
    rows = []
    t0 = time.perf_counter()
    for n, (item, group) in enumerate(zip(items, groups, strict=True)):
        asked = resolve(item.question, item.history)
        _, retrieved = pipeline.retrieve(item.question, item.history)
        ex = extract(asked.text, retrieved, pipeline.embedder, cache, asked.context)
        rows.append(
            Row(item.id, group, item.type, item.answerable, ex, _labels(item, ex, texts))
        )
        if n % 100 == 99:
            print(f"  {n + 1}/{len(items)} ({time.perf_counter() - t0:.0f}s)", file=sys.stderr)
    return rows


def _cached(key: str, cache_dir: Path, refresh: bool, make) -> list[Row]:
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"{key}.pkl"
    if path.is_file() and not refresh:
        return pickle.loads(path.read_bytes())
    rows = make()
    path.write_bytes(pickle.dumps(rows))
    return rows


def _x(rows: list[Row]) -> tuple[np.ndarray, np.ndarray]:
    xs = [np.stack([c.features for c in r.extraction.candidates]) for r in rows if r.labels.size]
    ys = [r.labels for r in rows if r.labels.size]
    return np.vstack(xs), np.concatenate(ys)


def _rank(model: Logistic, row: Row):
    cands = row.extraction.candidates
    if not cands:
        return [], [], np.zeros(0, dtype=int)
    logits = model.logit(np.stack([c.features for c in cands]))
    order = np.argsort(-logits, kind="stable")
    return [cands[i] for i in order], [float(v) for v in logits[order]], order


def _qx(model: Logistic, rows: list[Row]) -> np.ndarray:
    out = []
    for r in rows:
        ranked, logits, _ = _rank(model, r)
        out.append(question_features(r.extraction, ranked, logits))
    return np.stack(out)


def auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Chance that an answerable item scores above an unanswerable one (ties count half)."""
    pos, neg = scores[positive], scores[~positive]
    if not len(pos) or not len(neg):
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).mean()
    return float(greater + 0.5 * (pos[:, None] == neg[None, :]).mean())


def curve(p: np.ndarray, answerable: np.ndarray, steps: int = 21) -> list[dict[str, float]]:
    """Abstention on unanswerable vs wrong abstention on answerable, as the threshold moves."""
    out = []
    for t in np.linspace(0.0, 1.0, steps):
        out.append(
            {
                "threshold": round(float(t), 3),
                "abstention": round(float((p[~answerable] < t).mean()), 4),
                "wrong_abstention": round(float((p[answerable] < t).mean()), 4),
            }
        )
    return out


def choose_threshold(p: np.ndarray, answerable: np.ndarray, max_wrong: float) -> float:
    """The largest threshold whose wrong abstention stays within ``max_wrong``."""
    best = 0.0
    for t in np.unique(np.concatenate([[0.0], p])):
        if (p[answerable] < t).mean() <= max_wrong:
            best = max(best, float(t))
    return best


def _figures(
    sm: Logistic, am: Logistic, rows: list[Row], threshold: float
) -> dict[str, float | int]:
    answerable = np.array([r.answerable for r in rows])
    p = am.prob(_qx(sm, rows)) if rows else np.zeros(0)
    top1 = []
    reachable = []
    for r in rows:
        if not r.answerable:
            continue
        _, _, order = _rank(sm, r)
        has = bool(r.labels.sum())
        reachable.append(has)
        top1.append(bool(order.size and r.labels[order[0]]))
    return {
        "questions": len(rows),
        "answerable": int(answerable.sum()),
        "sentence_top1": round(float(np.mean(top1)), 4) if top1 else float("nan"),
        "answer_in_candidates": round(float(np.mean(reachable)), 4) if reachable else float("nan"),
        "auc_answerable": round(auc(p, answerable), 4),
        "abstention": round(float((p[~answerable] < threshold).mean()), 4)
        if (~answerable).any()
        else float("nan"),
        "wrong_abstention": round(float((p[answerable] < threshold).mean()), 4)
        if answerable.any()
        else float("nan"),
    }


def load_rows(
    squad: Path, gold_files: list[Path], sources: Path, data_dir: Path, refresh: bool, every: int
) -> list[Row]:
    """Every SQuAD question (every ``every``-th) and gold item with its candidates' features,
    extracted once and cached under ``data_dir/fit-cache``."""
    # The cache holds pickled Extractions: its key covers their fields as well as the features.
    shape = (SENTENCE_FEATURES, QUESTION_FEATURES, [f.name for f in dataclasses.fields(Extraction)])
    feature_key = hashlib.sha256(repr(shape).encode()).hexdigest()[:8]
    cache_dir = data_dir / "fit-cache"

    squad_dir = data_dir / "eval-squad" / "fit-all"
    squad_items, _ = load_squad(squad, out_dir=squad_dir)
    squad_items = squad_items[:: max(1, every)]
    article_of = _article_numbers(squad)
    groups = [f"squad:{article_of[i.id]}" for i in squad_items]
    skey = hashlib.sha256(squad.read_bytes()).hexdigest()[:8]
    print(f"SQuAD: {len(squad_items)} questions; extracting features", file=sys.stderr)
    rows = _cached(
        f"squad-{skey}-{feature_key}-every{every}",
        cache_dir,
        refresh,
        lambda: collect(squad_items, groups, squad_dir, data_dir),
    )
    for gold in gold_files:
        items = load_gold(gold)
        gkey = hashlib.sha256(gold.read_bytes()).hexdigest()[:8]
        rows += _cached(
            f"gold-{gold.stem}-{gkey}-{feature_key}",
            cache_dir,
            refresh,
            lambda items=items, gold=gold: collect(
                items, [f"gold:{gold.stem}"] * len(items), sources, data_dir
            ),
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.fit", description=__doc__.split("\n")[0])
    ap.add_argument("--squad", type=Path, default=SQUAD)
    ap.add_argument("--fit-articles", default="1-6")
    ap.add_argument("--report-articles", default="7-8")
    ap.add_argument("--gold", type=Path, action="append", help="gold files fitted on as well")
    ap.add_argument("--sources", type=Path, default=Path("seeds"), help="folder of --gold")
    ap.add_argument("--no-gold", action="store_true", help="fit on SQuAD only")
    # The bar for unseen text (issue 13): abstention with wrong abstention <= 0.10.
    ap.add_argument("--max-wrong", type=float, default=0.10)
    ap.add_argument(
        "--sentence-model",
        choices=("listwise", "pointwise", "pairwise-features"),
        default="pairwise-features",
        help="softmax over each question's candidates, one logistic over all sentences, or "
        "the same logistic over the features and every product of two (quadratic)",
    )
    ap.add_argument("--l2", type=float, default=1.0)
    ap.add_argument("--out", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("--data-dir", type=Path, default=Path(".rag-data"))
    ap.add_argument("--refresh", action="store_true", help="re-extract features")
    ap.add_argument(
        "--every", type=int, default=1, help="SQuAD: every Nth question only (faster fits)"
    )
    args = ap.parse_args(argv)
    from eval.cli import parse_articles
    from rag.config import offline_guards

    offline_guards()
    split = {
        "fit": parse_articles(args.fit_articles) or set(),
        "report": parse_articles(args.report_articles) or set(),
    }
    gold_files = [] if args.no_gold else (args.gold or [GOLD])
    rows = load_rows(args.squad, gold_files, args.sources, args.data_dir, args.refresh, args.every)

    def part(name: str) -> list[Row]:
        nums = split[name]
        return [
            r
            for r in rows
            if (r.group.startswith("squad:") and int(r.group.split(":")[1]) in nums)
            or (name == "fit" and r.group.startswith("gold:"))
        ]

    fit_rows, report_rows = part("fit"), part("report")
    x, y = _x([r for r in fit_rows if r.answerable])
    if args.sentence_model == "listwise":
        sm = fit_listwise(
            [
                (np.stack([c.features for c in r.extraction.candidates]), r.labels)
                for r in fit_rows
                if r.answerable and r.labels.sum()
            ],
            SENTENCE_FEATURES,
        )
    else:
        pairs = args.sentence_model == "pairwise-features"
        sm = fit_logistic(x, y, SENTENCE_FEATURES, l2=args.l2, pairs=pairs)
    qx = _qx(sm, fit_rows)
    qy = np.array([r.answerable for r in fit_rows], dtype=float)
    am = fit_logistic(qx, qy, QUESTION_FEATURES, l2=args.l2)
    # The threshold is chosen on out-of-fold chances: each article (and each gold file) scored
    # by an answerable model fitted without it, so it is chosen on text that model never saw.
    groups = np.array([r.group for r in fit_rows])
    oof = np.zeros(len(fit_rows))
    for g in np.unique(groups):
        held = groups == g
        fold = fit_logistic(qx[~held], qy[~held], QUESTION_FEATURES, l2=args.l2)
        oof[held] = fold.prob(qx[held])
    tune_p, tune_ans = oof, qy.astype(bool)
    threshold = choose_threshold(tune_p, tune_ans, args.max_wrong)
    report_p = am.prob(_qx(sm, report_rows))
    report_ans = np.array([r.answerable for r in report_rows])
    about = {
        "command": "python -m eval.fit " + " ".join(argv if argv is not None else sys.argv[1:]),
        "fitted_on": {
            "squad_articles": sorted(split["fit"]),
            "gold_files": [str(g) for g in gold_files],
            "questions": len(fit_rows),
            "sentences": len(y),
            "sentence_model": args.sentence_model,
        },
        "threshold_chosen_on": {
            "squad_articles": sorted(split["fit"]),
            "rule": f"largest threshold with wrong abstention <= {args.max_wrong} on "
            "out-of-fold chances (leave one article or gold file out)",
            "out_of_fold": {
                "auc_answerable": round(auc(tune_p, tune_ans), 4),
                "abstention": round(float((tune_p[~tune_ans] < threshold).mean()), 4),
                "wrong_abstention": round(float((tune_p[tune_ans] < threshold).mean()), 4),
            },
        },
        "reported_on": {"squad_articles": sorted(split["report"])},
        "held_out": {
            "report": _figures(sm, am, report_rows, threshold),
            "fit (in sample)": _figures(sm, am, fit_rows, threshold),
        },
        "curve_report_articles": curve(report_p, report_ans),
        "source": str(args.squad) + " (SQuAD 2.0 dev, CC BY-SA 4.0; eval/data/README.md)",
    }
    model = SelectorModel(sm, am, threshold, about)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(model.to_dict(), indent=1) + "\n", encoding="utf-8")
    print(json.dumps({"threshold": threshold, **about["held_out"]}, indent=1))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def _article_numbers(path: Path) -> dict[str, int]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return {
        str(qa["id"]): a + 1
        for a, article in enumerate(data["data"])
        for para in article["paragraphs"]
        for qa in para["qas"]
    }


if __name__ == "__main__":
    raise SystemExit(main())
