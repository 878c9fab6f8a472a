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
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eval.gold import GoldItem, load_gold, load_squad
from eval.metrics import normalize_gold, supports
from eval.run import read_source_texts
from rag.features import (
    QUESTION_FEATURES,
    QUESTION_SIGNS,
    SENTENCE_FEATURES,
    Extraction,
    question_features,
)
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
    # "" when asked of the indexed folder that holds its source; else the folder it was asked
    # of, which does not hold it (``load_off_corpus_rows``): unanswerable whatever its type.
    haystack: str = ""
    # The name put into the question in place of one its article holds (``swap_a_name``):
    # asked of its own article, unanswerable there.
    swapped: str = ""


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


def _feature_key() -> str:
    """What cached rows depend on: the feature names, the Extraction's fields, and the code that
    retrieves and extracts (every module of ``rag/``): a change there re-extracts, so a refit
    always fits the features the service computes."""
    h = hashlib.sha256()
    shape = (SENTENCE_FEATURES, QUESTION_FEATURES, [f.name for f in dataclasses.fields(Extraction)])
    h.update(repr(shape).encode())
    for path in sorted((Path(__file__).parents[1] / "rag").glob("*.py")):
        h.update(path.read_bytes())
    return h.hexdigest()[:8]


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


def _question_model(x: np.ndarray, y: np.ndarray, l2: float, signed: bool) -> Logistic:
    """The answerable or covered model; ``signed``: each weight only the way its signal can
    point on any text (``rag.features.QUESTION_SIGNS``)."""
    signs = [QUESTION_SIGNS[f] for f in QUESTION_FEATURES] if signed else None
    return fit_logistic(x, y, QUESTION_FEATURES, l2=l2, signs=signs)


def _out_of_fold(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray, l2: float, signed: bool
) -> np.ndarray:
    """Each group's chances from a model fitted without that group."""
    out = np.zeros(len(x))
    for g in np.unique(groups):
        held = groups == g
        out[held] = _question_model(x[~held], y[~held], l2, signed).prob(x[held])
    return out


def choose_thresholds(
    p: np.ndarray,
    covered: np.ndarray,
    answerable: np.ndarray,
    max_wrong: float,
    max_wrong_covered: float,
) -> tuple[float, float]:
    """Thresholds on P(some sentence answers) and on P(covered), abstaining when either is
    below its own. The covered model is a guard against questions about something the sources
    never mention, not a second judge of close calls: its threshold is the largest that turns
    away at most ``max_wrong_covered`` of the answerable questions; the answerable model's is
    then the largest at which both together stay within ``max_wrong``."""
    c = choose_threshold(covered, answerable, max_wrong_covered)
    # As the selector reports it (SelectorModel.confidence): 0 where the guard turns it away.
    return choose_threshold(np.where(covered < c, 0.0, p), answerable, max_wrong), c


def choose_threshold(p: np.ndarray, answerable: np.ndarray, max_wrong: float) -> float:
    """The largest threshold whose wrong abstention stays within ``max_wrong``."""
    best = 0.0
    for t in np.unique(np.concatenate([[0.0], p])):
        if (p[answerable] < t).mean() <= max_wrong:
            best = max(best, float(t))
    return best


def _confidence(model: SelectorModel, rows: list[Row]) -> np.ndarray:
    """P(some sentence answers) as the selector reports it: 0 where the covered model says the
    sources do not cover the question."""
    if not rows:
        return np.zeros(0)
    return model.confidence(*model.chances(_qx(model.sentence, rows)))


def _abstention(model: SelectorModel, rows: list[Row]) -> dict[str, float | int]:
    """How often the model declines ``rows`` (all unanswerable where they are asked)."""
    p = _confidence(model, rows)
    share = round(float((p < model.threshold).mean()), 4) if rows else float("nan")
    return {"questions": len(rows), "abstention": share}


def _figures(model: SelectorModel, rows: list[Row]) -> dict[str, float | int]:
    answerable = np.array([r.answerable for r in rows])
    p = _confidence(model, rows)
    abstains = p < model.threshold
    top1 = []
    reachable = []
    for r in rows:
        if not r.answerable:
            continue
        _, _, order = _rank(model.sentence, r)
        has = bool(r.labels.sum())
        reachable.append(has)
        top1.append(bool(order.size and r.labels[order[0]]))
    return {
        "questions": len(rows),
        "answerable": int(answerable.sum()),
        "sentence_top1": round(float(np.mean(top1)), 4) if top1 else float("nan"),
        "answer_in_candidates": round(float(np.mean(reachable)), 4) if reachable else float("nan"),
        "auc_answerable": round(auc(p, answerable), 4),
        "abstention": round(float(abstains[~answerable].mean()), 4)
        if (~answerable).any()
        else float("nan"),
        "wrong_abstention": round(float(abstains[answerable].mean()), 4)
        if answerable.any()
        else float("nan"),
    }


def _off_figures(model: SelectorModel, rows: list[Row]) -> dict[str, dict[str, float | int]]:
    """Abstention on questions asked of sources without their article, per folder asked of."""
    return {
        Path(hay).name: _abstention(model, [r for r in rows if r.haystack == hay])
        for hay in sorted({r.haystack for r in rows})
    }


def _squad_questions(squad: Path, data_dir: Path) -> tuple[list[GoldItem], Path, dict[str, int]]:
    """Every question of the SQuAD file, the folder its articles are written to (the one all
    fit rows share) and each question's article number."""
    squad_dir = data_dir / "eval-squad" / "fit-all"
    items, _ = load_squad(squad, out_dir=squad_dir)
    return items, squad_dir, _article_numbers(squad)


def load_rows(
    squad: Path, gold_files: list[Path], sources: Path, data_dir: Path, refresh: bool, every: int
) -> list[Row]:
    """Every SQuAD question (every ``every``-th) and gold item with its candidates' features,
    extracted once and cached under ``data_dir/fit-cache``."""
    # The cache holds pickled Extractions: its key covers their fields as well as the features.
    feature_key = _feature_key()
    cache_dir = data_dir / "fit-cache"

    squad_items, squad_dir, article_of = _squad_questions(squad, data_dir)
    squad_items = squad_items[:: max(1, every)]
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


# Off-corpus questions: each asked of a folder without its source. Within the fit's articles the
# two halves answer for each other, so no fitted row meets the reported articles' text.
_OFF_FIT = (((1, 2, 3), (4, 5, 6)), ((4, 5, 6), (1, 2, 3)))


def _subset_folder(squad_dir: Path, numbers: set[int], out_dir: Path) -> Path:
    """A folder with the chosen articles' files of ``squad_dir`` (``NN_slug.txt``, 1-based),
    mtimes kept so that re-ingesting it changes nothing."""
    out_dir.mkdir(parents=True, exist_ok=True)
    wanted = {f.name: f for f in squad_dir.glob("*.txt") if int(f.name.split("_")[0]) in numbers}
    for f in out_dir.glob("*.txt"):
        if f.name not in wanted:
            f.unlink()
    for name, f in wanted.items():
        if not (out_dir / name).is_file():
            shutil.copy2(f, out_dir / name)
    return out_dir


def load_off_corpus_rows(
    squad: Path,
    fit_articles: set[int],
    report_articles: set[int],
    gold_files: list[Path],
    sources: Path,
    data_dir: Path,
    refresh: bool,
    every: int,
) -> list[Row]:
    """Questions asked of sources that do not hold the answer's article at all: the commonest
    unanswerable question a user asks of their own folder ("What did the United States say?"
    of two articles that never mention it). SQuAD 2.0's unanswerable questions are written
    against their own paragraph, so without these rows the abstention model never sees one.

    Fit: each half of the fit articles asked of the other half; the fit articles asked of the
    gold files' sources, and the gold questions of the fit articles. Report: the reported
    articles asked of the fit articles and of the gold sources. Every row is unanswerable and
    keeps its article's group, so it folds with that article in the out-of-fold threshold."""
    feature_key = _feature_key()
    skey = hashlib.sha256(squad.read_bytes()).hexdigest()[:8]
    cache_dir = data_dir / "fit-cache"
    squad_items, squad_dir, article_of = _squad_questions(squad, data_dir)
    step = max(1, every) * 2  # half the questions: as many rows as the in-corpus unanswerables

    def asked(numbers: set[int]) -> list[GoldItem]:
        return [i for i in squad_items if article_of[i.id] in numbers][::step]

    def folder(numbers: set[int]) -> Path:
        name = "off-" + "-".join(str(n) for n in sorted(numbers))
        return _subset_folder(squad_dir, numbers, data_dir / "eval-squad" / name)

    plans: list[tuple[str, list[GoldItem], list[str], Path]] = []
    for hay, ask in _OFF_FIT:
        if set(hay) <= fit_articles and set(ask) <= fit_articles:
            items = asked(set(ask))
            groups = [f"squad:{article_of[i.id]}" for i in items]
            plans.append((f"squad{''.join(map(str, hay))}", items, groups, folder(set(hay))))
    for numbers in (fit_articles, report_articles):
        items = asked(numbers)
        plans.append(("gold-sources", items, [f"squad:{article_of[i.id]}" for i in items], sources))
    items = asked(report_articles)
    groups = [f"squad:{article_of[i.id]}" for i in items]
    plans.append(("squad-report", items, groups, folder(fit_articles)))
    for gold in gold_files:
        items = load_gold(gold)
        plans.append(("squad-fit", items, [f"gold:{gold.stem}"] * len(items), folder(fit_articles)))
    rows: list[Row] = []
    for hay, items, groups, where in plans:
        ids = hashlib.sha256("".join(i.id for i in items).encode()).hexdigest()[:8]
        key = f"off-{skey}-{feature_key}-{hay}-{ids}"
        print(f"off-corpus: {len(items)} questions asked of {where}", file=sys.stderr)
        got = _cached(
            key,
            cache_dir,
            refresh,
            lambda items=items, groups=groups, where=where: collect(
                [dataclasses.replace(i, type="unanswerable", answers=[], evidence=[])
                 for i in items],
                groups,
                where,
                data_dir,
            ),
        )
        for r in got:
            r.haystack = str(where)
        rows += got
    return rows


def _names_in(folder: Path) -> list[str]:
    from rag.kinds import names

    found: dict[str, None] = {}
    for f in sorted(folder.glob("*.txt")):
        for _, name in names(f.read_text(encoding="utf-8")):
            found.setdefault(name, None)
    return list(found)


def swap_a_name(question: str, held: str, pool: list[str], seed: str) -> tuple[str, str] | None:
    """The question with one name it shares with ``held`` (the sources' folded text) replaced by
    a name from ``pool`` that ``held`` never mentions: "When did the Normans reach Italy?" ->
    "When did Hugo de Zela reach Italy?". None when the question names nothing the sources
    hold. Which name and which replacement follow a hash of ``seed``, so a refit is repeatable.
    """
    from rag.kinds import names
    from rag.text import fold, words

    def mentioned(name: str) -> bool:
        return f" {' '.join(words(name))} " in held

    mine = [n for _, n in names(question) if words(n) and mentioned(n)]
    others = [n for n in pool if words(n) and not mentioned(n)]
    if not mine or not others:
        return None
    h = int(hashlib.sha256(seed.encode()).hexdigest(), 16)
    name = mine[h % len(mine)]
    new = others[(h // len(mine)) % len(others)]
    at = question.find(name)
    if at < 0 or fold(name) == fold(new):
        return None
    return question[:at] + new + question[at + len(name) :], new


def load_swapped_rows(
    squad: Path, articles: set[int], sources: Path, data_dir: Path, refresh: bool, every: int
) -> list[Row]:
    """Answerable questions of ``articles`` with a name swapped for one that no SQuAD article
    mentions (taken from ``sources``), asked of all the articles: a question on the right topic
    about the wrong thing ("What did the United States say about the break?" of articles that
    never mention it). Measured only: fitted on as well, they lowered abstention on the
    reported articles' own unanswerable questions (README, issue 13)."""
    from rag.text import words

    feature_key = _feature_key()
    squad_items, squad_dir, article_of = _squad_questions(squad, data_dir)
    body = " ".join(f.read_text(encoding="utf-8") for f in sorted(squad_dir.glob("*.txt")))
    held = f" {' '.join(words(body))} "
    pool = _names_in(sources)
    items = [i for i in squad_items if i.answerable and article_of[i.id] in articles]
    swapped = []
    for item in items[:: max(1, every) * 2]:
        got = swap_a_name(item.question, held, pool, item.id)
        if got is not None:
            asked = dataclasses.replace(
                item, id=f"{item.id}:swap", type="unanswerable", question=got[0], answers=[],
                evidence=[],
            )
            swapped.append((asked, got[1]))
    groups = [f"squad:{article_of[i.id.removesuffix(':swap')]}" for i, _ in swapped]
    ids = hashlib.sha256("".join(i.question for i, _ in swapped).encode()).hexdigest()[:8]
    print(f"swapped names: {len(swapped)} questions", file=sys.stderr)
    rows = _cached(
        f"swap-{feature_key}-{ids}",
        data_dir / "fit-cache",
        refresh,
        lambda: collect([i for i, _ in swapped], groups, squad_dir, data_dir),
    )
    for r, (_, name) in zip(rows, swapped, strict=True):
        r.swapped = name
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.fit", description=__doc__.split("\n")[0])
    ap.add_argument("--squad", type=Path, default=SQUAD)
    ap.add_argument("--fit-articles", default="1-6")
    ap.add_argument("--report-articles", default="7-8")
    ap.add_argument("--gold", type=Path, action="append", help="gold files fitted on as well")
    ap.add_argument("--sources", type=Path, default=Path("seeds"), help="folder of --gold")
    ap.add_argument("--no-gold", action="store_true", help="fit on SQuAD only")
    ap.add_argument(
        "--no-off-corpus",
        action="store_true",
        help="without questions asked of sources that do not hold their article (and the "
        "report's questions with a name the sources never mention)",
    )
    # The bar for unseen text (issue 13): abstention with wrong abstention <= 0.10.
    ap.add_argument("--max-wrong", type=float, default=0.10)
    ap.add_argument(
        "--max-wrong-covered",
        type=float,
        default=0.02,
        help="of that, the most the covered model may turn away",
    )
    ap.add_argument(
        "--sentence-model",
        choices=("listwise", "pointwise", "pairwise-features"),
        default="pairwise-features",
        help="softmax over each question's candidates, one logistic over all sentences, or "
        "the same logistic over the features and every product of two (quadratic)",
    )
    ap.add_argument("--l2", type=float, default=1.0)
    ap.add_argument(
        "--unsigned",
        action="store_true",
        help="let the question models' weights take either sign (by default each only the "
        "way its signal can point on any text: rag.features.QUESTION_SIGNS)",
    )
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

    if not args.no_off_corpus:
        rows += load_off_corpus_rows(
            args.squad, split["fit"], split["report"], gold_files, args.sources,
            args.data_dir, args.refresh, args.every,
        )
        rows += load_swapped_rows(
            args.squad, split["report"], args.sources, args.data_dir, args.refresh, args.every
        )
    fit_rows = part("fit")
    report_rows = [r for r in part("report") if not r.haystack and not r.swapped]
    off_report = [r for r in part("report") if r.haystack]
    swapped_report = [r for r in part("report") if r.swapped]
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
    fit_in = [r for r in fit_rows if not r.haystack]
    fit_off = [r for r in fit_rows if r.haystack]
    qx = _qx(sm, fit_in)
    qy = np.array([r.answerable for r in fit_in], dtype=float)
    signed = not args.unsigned
    am = _question_model(qx, qy, args.l2, signed)
    # Thresholds are chosen on out-of-fold chances: each article (and each gold file) scored by
    # models fitted without it, so they are chosen on text those models never saw.
    tune_ans = qy.astype(bool)
    tune_p = _out_of_fold(qx, qy, np.array([r.group for r in fit_in]), args.l2, signed)
    cm = None
    covered_threshold = 0.0
    if fit_off:
        # Covered: every question asked of its own article (answerable there or not) against
        # the same questions asked of sources without it.
        cx = np.vstack([qx, _qx(sm, fit_off)])
        cy = np.concatenate([np.ones(len(fit_in)), np.zeros(len(fit_off))])
        cm = _question_model(cx, cy, args.l2, signed)
        groups = np.array([r.group for r in fit_in + fit_off])
        c_oof = _out_of_fold(cx, cy, groups, args.l2, signed)
        threshold, covered_threshold = choose_thresholds(
            tune_p, c_oof[: len(fit_in)], tune_ans, args.max_wrong, args.max_wrong_covered
        )
    else:
        threshold = choose_threshold(tune_p, tune_ans, args.max_wrong)
    model = SelectorModel(sm, am, threshold, {}, cm, covered_threshold)
    if cm is not None:
        tune_p = model.confidence(tune_p, c_oof[: len(fit_in)])
    report_p = _confidence(model, report_rows)
    report_ans = np.array([r.answerable for r in report_rows])
    about = {
        "command": "python -m eval.fit " + " ".join(argv if argv is not None else sys.argv[1:]),
        "fitted_on": {
            "squad_articles": sorted(split["fit"]),
            "gold_files": [str(g) for g in gold_files],
            "questions": len(fit_rows),
            "of them asked of sources without their article": sum(
                1 for r in fit_rows if r.haystack
            ),
            "sentences": len(y),
            "sentence_model": args.sentence_model,
            "question_model_signs": {f: QUESTION_SIGNS[f] for f in QUESTION_FEATURES}
            if signed
            else "either way",
        },
        "threshold_chosen_on": {
            "squad_articles": sorted(split["fit"]),
            "rule": f"largest threshold with wrong abstention <= {args.max_wrong} on "
            "out-of-fold chances (leave one article or gold file out); with the covered model, "
            f"its threshold the largest with wrong abstention <= {args.max_wrong_covered}, the "
            "answerable model's the largest with both together within the first bound",
            "covered_threshold": round(covered_threshold, 6),
            "out_of_fold": {
                "auc_answerable": round(auc(tune_p, tune_ans), 4),
                "abstention": round(float((tune_p[~tune_ans] < threshold).mean()), 4),
                "wrong_abstention": round(float((tune_p[tune_ans] < threshold).mean()), 4),
            },
        },
        "reported_on": {"squad_articles": sorted(split["report"])},
        "held_out": {
            "report": _figures(model, report_rows),
            "fit (in sample)": _figures(model, fit_in),
            "report, asked of sources without their article": _off_figures(model, off_report),
            "report, a name swapped for one the sources never mention": _abstention(
                model, swapped_report
            ),
        },
        "curve_report_articles": curve(report_p, report_ans),
        "source": str(args.squad) + " (SQuAD 2.0 dev, CC BY-SA 4.0; eval/data/README.md)",
    }
    model = dataclasses.replace(model, about=about)
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
