"""Run gold items through a pipeline, score each one, and keep the run as a folder.

A run folder ``<out_root>/<YYYYmmdd-HHMMSS>-<label>/`` holds ``config.json`` (what was run),
``results.jsonl`` (one scored item a line), ``summary.json`` (overall and per-type metrics with
bootstrap CIs) and ``report.html``. Two folders can be compared with ``compare_runs``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from eval import metrics as m
from eval.gold import GoldItem
from eval.report import write_report
from rag.errors import BackendUnavailable
from rag.types import Answer, Citation, Retrieved, Turn

RANK_DEPTH = 10  # retrieval metrics look at the top 10, whatever top_k the answer used
RECALL_KS = (1, 3, 5, 10)
MEAN_METRICS = (
    "answer_recall",
    "item_accuracy",
    "exact_match",
    "f1",
    "abstention_rate",
    "wrong_abstention_rate",
    "citation_precision",
    "citation_recall",
    "sentence_support_rate",
    "role_reversal_rate",
    *(f"recall@{k}" for k in RECALL_KS),
    "mrr@10",
    "ndcg@10",
)
METRIC_ORDER = (
    "n",
    "answer_recall",
    "item_accuracy",
    "exact_match",
    "f1",
    "words_median",
    "words_p90",
    "abstention_rate",
    "wrong_abstention_rate",
    "citation_precision",
    "citation_recall",
    "sentence_support_rate",
    "role_reversal_rate",
    *(f"recall@{k}" for k in RECALL_KS),
    "mrr@10",
    "ndcg@10",
    "latency_p50",
    "latency_p95",
)


class EvalPipeline(Protocol):
    """The part of ``rag.pipeline.Pipeline`` the harness uses."""

    model_name: str

    def retrieve(
        self, question: str, history: Sequence[Turn] = (), top_k: int | None = None
    ) -> tuple[str, list[Retrieved]]: ...

    def ask(
        self, question: str, history: Sequence[Turn] = (), top_k: int | None = None
    ) -> Answer: ...


class RunFolderError(ValueError):
    """A run folder that cannot be read (missing or damaged files)."""


@dataclass
class RunResult:
    run_dir: Path
    summary: dict[str, Any]
    results: list[dict[str, Any]]
    report_path: Path


# --- scoring one item --------------------------------------------------------------------------


def _retrieved_rows(
    retrieved: Sequence[Retrieved], item: GoldItem, source_texts: Mapping[str, str]
) -> list[dict[str, Any]]:
    rows = []
    for rank, r in enumerate(retrieved, start=1):
        p = r.paragraph
        rows.append(
            {
                "rank": rank,
                "id": p.id,
                "source": p.source,
                "index": p.index,
                "start": p.start,
                "end": p.end,
                "score": r.score,
                "relevant": m.supports(
                    p.text, p.source, p.start, p.end, item.evidence, source_texts
                ),
            }
        )
    return rows


def _retrieval_metrics(rows: Sequence[dict[str, Any]], item: GoldItem) -> dict[str, float | None]:
    if not item.answerable or not item.evidence:
        return {**{f"recall@{k}": None for k in RECALL_KS}, "mrr@10": None, "ndcg@10": None}
    relevant = [bool(r["relevant"]) for r in rows]
    out: dict[str, float | None] = {f"recall@{k}": m.recall_at_k(relevant, k) for k in RECALL_KS}
    out["mrr@10"] = m.mrr_at_k(relevant, 10)
    out["ndcg@10"] = m.ndcg_at_k(relevant, 10)
    return out


def _citation_rows(
    citations: Sequence[Citation], item: GoldItem, source_texts: Mapping[str, str]
) -> list[dict[str, Any]]:
    return [
        {
            "n": c.n,
            "source": c.source,
            "paragraph": c.paragraph,
            "start": c.start,
            "end": c.end,
            "text": c.text,
            "score": c.score,
            "paragraph_id": c.paragraph_id,
            "supports": c.supports,
            "supports_gold": m.supports(
                c.text, c.source, c.start, c.end, item.evidence, source_texts
            ),
        }
        for c in citations
    ]


_MARKERS = re.compile(r"\s*\[\d+\]")


def _answer_metrics(
    answer: Answer, citations: Sequence[dict[str, Any]], item: GoldItem
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    abstained = bool(answer.abstained)
    # Only citations the pipeline offers as support count; on abstention it may show related
    # paragraphs with supports=False, which are not claims.
    claimed = [c for c in citations if c["supports"]]
    gold_support = [bool(c["supports_gold"]) for c in claimed]
    # SQuAD v2 scores an abstention as the empty prediction; markers are not answer words.
    prediction = "" if abstained else _MARKERS.sub("", answer.answer).strip()
    golds = item.aliases()
    checks = (
        [] if abstained else m.sentence_checks(answer.answer, {c["n"]: c["text"] for c in claimed})
    )
    answerable = item.answerable
    metrics: dict[str, Any] = {
        "answer_recall": (0.0 if abstained else m.fact_recall(answer.answer, item.answers))
        if answerable
        else None,
        "item_accuracy": float(m.item_correct(answer.answer, item.answers, abstained)),
        "exact_match": m.exact_match(prediction, golds),
        "f1": m.token_f1(prediction, golds),
        "abstention_rate": None if answerable else float(abstained),
        "wrong_abstention_rate": float(abstained) if answerable else None,
        "citation_precision": m.citation_precision(gold_support) if answerable else None,
        "citation_recall": m.citation_recall(gold_support) if answerable else None,
        "sentence_support_rate": (sum(c.supported for c in checks) / len(checks))
        if checks
        else None,
        "words": None if abstained else m.word_count(answer.answer),
        "role_reversal_rate": float(
            m.role_reversed(answer.answer, [e.quote for e in item.evidence])
        )
        if answerable and not abstained and item.evidence
        else None,
    }
    sentences = [
        {
            "sentence": c.sentence,
            "markers": c.markers,
            "coverage": round(c.coverage, 3),
            "missing": c.missing_keys,
            "supported": c.supported,
        }
        for c in checks
    ]
    return metrics, sentences


def _failures(item: GoldItem, rec: dict[str, Any]) -> list[str]:
    if rec.get("error"):
        return ["error"]
    if rec["answer"] is None:  # retrieval-only run
        return []
    out = []
    abstained = rec["abstained"]
    if item.answerable and abstained:
        out.append("wrong abstention")
    elif item.answerable and not rec["correct"]:
        out.append("wrong answer")
    if not item.answerable and not abstained:
        out.append("missed abstention")
    if rec["metrics"].get("role_reversal_rate"):
        out.append("roles reversed")
    if any(c["supports"] and not c["supports_gold"] for c in rec["citations"]) and (
        item.answerable
    ):
        out.append("unsupported citation")
    return out


def _base_record(item: GoldItem) -> dict[str, Any]:
    return {
        "id": item.id,
        "type": item.type,
        "question": item.question,
        "history": [{"role": t.role, "content": t.content} for t in item.history],
        "gold_answers": item.answers,
        "gold_evidence": [{"source": e.source, "quote": e.quote} for e in item.evidence],
        "resolved_question": None,
        "answer": None,
        "abstained": None,
        "correct": None,
        "facts_found": None,
        "citations": [],
        "sentences": [],
        "retrieved": [],
        "latency": None,
        "timings": {},
        "error": None,
        "metrics": {name: None for name in (*MEAN_METRICS, "words")},
    }


def evaluate_item(
    pipeline: EvalPipeline,
    item: GoldItem,
    source_texts: Mapping[str, str],
    *,
    retrieval_only: bool = False,
) -> dict[str, Any]:
    """Ask (or only retrieve) one gold item and return its scored record for results.jsonl.

    An exception from the pipeline is recorded on the item (``error``) so one bad item does not
    end the run; ``BackendUnavailable`` does end it, since every later item would fail the same.
    """
    rec = _base_record(item)
    history = list(item.history)
    try:
        if retrieval_only:
            t0 = time.perf_counter()
            resolved, retrieved = pipeline.retrieve(item.question, history, top_k=RANK_DEPTH)
            rec["latency"] = time.perf_counter() - t0
        else:
            t0 = time.perf_counter()
            answer = pipeline.ask(item.question, history)
            rec["latency"] = time.perf_counter() - t0
            # A separate, model-free retrieve so recall@10 means the top 10 even when the
            # answer only read the top few.
            resolved, retrieved = pipeline.retrieve(item.question, history, top_k=RANK_DEPTH)
            _record_answer(rec, answer, item, source_texts)
    except BackendUnavailable:
        raise
    except Exception as exc:
        rec["error"] = f"{type(exc).__name__}: {exc}"
        rec["failures"] = ["error"]
        return rec
    rec["resolved_question"] = resolved
    rec["retrieved"] = _retrieved_rows(retrieved[:RANK_DEPTH], item, source_texts)
    rec["metrics"].update(_retrieval_metrics(rec["retrieved"], item))
    rec["failures"] = _failures(item, rec)
    return rec


def _record_answer(
    rec: dict[str, Any], answer: Answer, item: GoldItem, source_texts: Mapping[str, str]
) -> None:
    rec["answer"] = answer.answer
    rec["abstained"] = bool(answer.abstained)
    rec["citations"] = _citation_rows(answer.citations, item, source_texts)
    rec["timings"] = dict(answer.trace.timings)
    rec["confidence"] = answer.trace.confidence
    # What the model wrote and what it was given: a wrong answer shows which stage lost it.
    rec["draft"] = answer.trace.draft
    rec["evidence"] = answer.trace.evidence
    rec["answer_retrieved_ids"] = [r.get("id") for r in answer.trace.retrieved]
    metrics, sentences = _answer_metrics(answer, rec["citations"], item)
    rec["metrics"].update(metrics)
    rec["sentences"] = sentences
    rec["correct"] = bool(metrics["item_accuracy"])
    rec["facts_found"] = m.facts_found(answer.answer, item.answers) if item.answers else []


# --- aggregating -------------------------------------------------------------------------------


def _entry(value: float | None, n: int, ci: tuple[float, float] | None = None) -> dict[str, Any]:
    return {"value": value, "ci": list(ci) if ci else None, "n": n}


def _mean_entry(values: list[float], n_boot: int, seed: int) -> dict[str, Any]:
    if not values:
        return _entry(None, 0)
    return _entry(m.mean(values), len(values), m.bootstrap_ci(values, n=n_boot, seed=seed))


def summarize_group(
    results: Sequence[dict[str, Any]], *, n_boot: int = 1000, seed: int = 0
) -> dict[str, dict[str, Any]]:
    """Every summary metric over one group of item records (see ``metrics.SUMMARY_METRICS``).

    Means carry a bootstrap 95% CI and ``n`` = the items the mean is over (items where the metric
    does not apply, or that errored, are left out); percentiles carry no CI.
    """
    ok = [r for r in results if not r.get("error")]
    out: dict[str, dict[str, Any]] = {"n": _entry(len(results), len(results))}
    for name in MEAN_METRICS:
        values = [r["metrics"][name] for r in ok if r["metrics"].get(name) is not None]
        out[name] = _mean_entry(values, n_boot, seed)
    words = [r["metrics"]["words"] for r in ok if r["metrics"].get("words") is not None]
    out["words_median"] = _entry(m.percentile(words, 50), len(words))
    out["words_p90"] = _entry(m.percentile(words, 90), len(words))
    latencies = [r["latency"] for r in ok if r.get("latency") is not None]
    out["latency_p50"] = _entry(m.percentile(latencies, 50), len(latencies))
    out["latency_p95"] = _entry(m.percentile(latencies, 95), len(latencies))
    return {name: out[name] for name in METRIC_ORDER}


def summarize(
    results: Sequence[dict[str, Any]], *, n_boot: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """``{"overall": {...}, "by_type": {type: {...}}, "errors": k}`` over item records."""
    types = sorted({r["type"] for r in results})
    return {
        "overall": summarize_group(results, n_boot=n_boot, seed=seed),
        "by_type": {
            t: summarize_group([r for r in results if r["type"] == t], n_boot=n_boot, seed=seed)
            for t in types
        },
        "errors": sum(1 for r in results if r.get("error")),
    }


# --- running -----------------------------------------------------------------------------------


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", label).strip("-") or "run"


def _new_run_dir(out_root: Path, label: str, now: datetime) -> Path:
    out_root.mkdir(parents=True, exist_ok=True)
    base = f"{now:%Y%m%d-%H%M%S}-{_slug(label)}"
    for i in range(1, 1000):
        run_dir = out_root / (base if i == 1 else f"{base}-{i}")
        try:
            run_dir.mkdir()
            return run_dir
        except FileExistsError:
            continue
    raise RunFolderError(f"{out_root}: cannot create a run folder named {base}")


def _running_text(done: Sequence[dict[str, Any]]) -> str:
    recall = [
        r["metrics"]["answer_recall"] for r in done if r["metrics"].get("answer_recall") is not None
    ]
    abst = [
        r["metrics"]["abstention_rate"]
        for r in done
        if r["metrics"].get("abstention_rate") is not None
    ]
    r5 = [r["metrics"]["recall@5"] for r in done if r["metrics"].get("recall@5") is not None]
    parts = []
    if recall:
        parts.append(f"answer recall {m.mean(recall):.2f}")
    if abst:
        parts.append(f"abstention {m.mean(abst):.2f}")
    if r5 and not recall:
        parts.append(f"recall@5 {m.mean(r5):.2f}")
    return " · ".join(parts)


def _iterate(
    pipeline: EvalPipeline,
    items: Sequence[GoldItem],
    source_texts: Mapping[str, str],
    retrieval_only: bool,
    workers: int,
) -> Iterable[tuple[int, dict[str, Any]]]:
    if workers <= 1:
        for i, item in enumerate(items):
            yield i, evaluate_item(pipeline, item, source_texts, retrieval_only=retrieval_only)
        return
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="eval")
    try:
        futures = {
            pool.submit(
                evaluate_item, pipeline, item, source_texts, retrieval_only=retrieval_only
            ): i
            for i, item in enumerate(items)
        }
        for fut in as_completed(futures):
            yield futures[fut], fut.result()
    finally:
        # On an abort (backend down, Ctrl-C) queued items are dropped rather than run.
        pool.shutdown(wait=True, cancel_futures=True)


def _run_items(
    pipeline: EvalPipeline,
    items: Sequence[GoldItem],
    source_texts: Mapping[str, str],
    *,
    retrieval_only: bool,
    workers: int,
    progress: bool,
    label: str,
) -> list[dict[str, Any]]:
    results: list[dict[str, Any] | None] = [None] * len(items)
    done: list[dict[str, Any]] = []
    stream = _iterate(pipeline, items, source_texts, retrieval_only, workers)
    if not progress:
        for i, rec in stream:
            results[i] = rec
    else:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[running]}"),
            console=Console(stderr=True),
            transient=False,
        ) as bar:
            task = bar.add_task(f"eval {label}", total=len(items), running="")
            for i, rec in stream:
                results[i] = rec
                done.append(rec)
                bar.update(task, advance=1, running=_running_text(done))
    return [r for r in results if r is not None]


def run_eval(
    pipeline: EvalPipeline,
    items: Sequence[GoldItem],
    *,
    label: str,
    out_root: Path = Path("eval/runs"),
    retrieval_only: bool = False,
    workers: int = 1,
    source_texts: Mapping[str, str],
    progress: bool = True,
    config: Mapping[str, Any] | None = None,
    n_boot: int = 1000,
) -> RunResult:
    """Run every item, score it, and write the run folder (config, results, summary, report).

    ``source_texts`` maps a gold evidence source name to its file text (for quote-span overlap).
    ``config`` is merged into ``config.json`` (settings, gold path, sources folder): whatever is
    needed to reproduce the run. Abstention is read only from ``Answer.abstained``.
    """
    if not items:
        raise ValueError("run_eval needs at least one gold item")
    now = datetime.now().astimezone()
    model = getattr(pipeline, "model_name", "unknown")
    started = time.perf_counter()
    results = _run_items(
        pipeline,
        items,
        source_texts,
        retrieval_only=retrieval_only,
        workers=max(1, workers),
        progress=progress,
        label=label,
    )
    elapsed = time.perf_counter() - started
    summary = {
        "label": label,
        "created": now.isoformat(timespec="seconds"),
        "model": model,
        "retrieval_only": retrieval_only,
        "elapsed_seconds": round(elapsed, 3),
        **summarize(results, n_boot=n_boot),
        "abstention_curve": _curve(results),
    }
    meta = {
        "label": label,
        "created": summary["created"],
        "model": model,
        "retrieval_only": retrieval_only,
        "workers": workers,
        "n_items": len(items),
        "elapsed_seconds": summary["elapsed_seconds"],
        **dict(config or {}),
    }
    run_dir = _new_run_dir(out_root, label, now)
    _write_json(run_dir / "config.json", meta)
    with (run_dir / "results.jsonl").open("w", encoding="utf-8") as fh:
        for rec in results:
            fh.write(json.dumps(rec, ensure_ascii=False, default=str) + "\n")
    _write_json(run_dir / "summary.json", summary)
    report_path = write_report(run_dir, summary, results, meta)
    return RunResult(run_dir=run_dir, summary=summary, results=results, report_path=report_path)


def _curve(results: Sequence[dict[str, Any]]) -> list[dict[str, float]]:
    """The abstention curve over the items that carry the selector's confidence."""
    scored = [
        (float(r["confidence"]), bool(r["gold_answers"]))
        for r in results
        if r.get("confidence") is not None and not r.get("error")
    ]
    if not scored:
        return []
    return m.abstention_curve([c for c, _ in scored], [a for _, a in scored])


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n", "utf-8")


# --- gates -------------------------------------------------------------------------------------


def _lookup(summary: Mapping[str, Any], key: str) -> tuple[dict[str, Any] | None, str]:
    """The summary entry a gate key names, or ``(None, reason)``.

    ``name`` is an overall metric, ``type.name`` a per-type one; ``name_type`` (e.g.
    ``words_median_factoid``) is accepted as a spelling of ``type.name``.
    """
    overall = summary.get("overall", {})
    by_type = summary.get("by_type", {})
    if key in overall:
        return overall[key], ""
    if "." in key:
        group, name = key.split(".", 1)
        if name not in overall:
            return None, f"unknown metric {name!r}"
        if group not in by_type:
            return None, f"no items of type {group!r}"
        return by_type[group][name], ""
    for group in by_type:
        name = key.removesuffix(f"_{group}")
        if name != key and name in overall:
            return by_type[group][name], ""
    return None, f"unknown metric {key!r} (known: {', '.join(overall)})"


def _fmt(value: float) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def check_gates(
    summary: Mapping[str, Any],
    mins: Mapping[str, float] | None = None,
    maxs: Mapping[str, float] | None = None,
) -> list[str]:
    """Human-readable failures of the quality gates; an empty list means every gate passed.

    ``mins`` are lower bounds (``value >= bound`` passes), ``maxs`` upper bounds (``value <=
    bound``). Keys are metric names as in the summary: ``answer_recall`` (overall) or
    ``factoid.words_median`` (per type). A gate on a metric with no value (nothing to measure,
    e.g. citations in a retrieval-only run) or on an unknown name fails: a gate that cannot be
    checked must not pass silently.
    """
    failures: list[str] = []
    for bounds, op in ((mins or {}, ">="), (maxs or {}, "<=")):
        for key, bound in bounds.items():
            entry, reason = _lookup(summary, key)
            if entry is None:
                failures.append(f"{key}: {reason} (gate {op} {bound:g})")
                continue
            value = entry.get("value")
            if value is None:
                failures.append(f"{key}: no value, nothing to measure (gate {op} {bound:g})")
                continue
            ok = value >= bound if op == ">=" else value <= bound
            if not ok:
                failures.append(f"{key} = {_fmt(value)}, needs {op} {bound:g} (n={entry.get('n')})")
    return failures


# --- comparing runs ----------------------------------------------------------------------------


def load_run(run_dir: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``(summary, results)`` of a run folder; ``RunFolderError`` when it is not one."""
    run_dir = Path(run_dir)
    summary_path, results_path = run_dir / "summary.json", run_dir / "results.jsonl"
    if not summary_path.is_file() or not results_path.is_file():
        raise RunFolderError(f"{run_dir}: not a run folder (needs summary.json and results.jsonl)")
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        results = [
            json.loads(line)
            for line in results_path.read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]
    except json.JSONDecodeError as exc:
        raise RunFolderError(f"{run_dir}: damaged run file ({exc.msg})") from None
    return summary, results


def _value(entry: Mapping[str, Any] | None) -> float | None:
    return None if entry is None else entry.get("value")


def _cell(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _summary_lines(sa: Mapping[str, Any], sb: Mapping[str, Any]) -> list[str]:
    lines = [f"{'metric':<24}{'A':>10}{'B':>10}{'delta':>10}"]
    names = [n for n in METRIC_ORDER if n in sa.get("overall", {}) or n in sb.get("overall", {})]
    for name in names:
        va = _value(sa.get("overall", {}).get(name))
        vb = _value(sb.get("overall", {}).get(name))
        if va is None and vb is None:
            continue  # not measured in either run (e.g. answers in retrieval-only runs)
        delta = ""
        if va is not None and vb is not None:
            delta = (
                f"{vb - va:+d}"
                if isinstance(va, int) and isinstance(vb, int)
                else f"{vb - va:+.3f}"
            )
        lines.append(f"{name:<24}{_cell(va):>10}{_cell(vb):>10}{delta:>10}")
    return lines


def _cited(rec: Mapping[str, Any]) -> list[str]:
    return sorted(
        f"{c['source']}#{c['paragraph']}{'' if c.get('supports_gold') else '(x)'}"
        for c in rec.get("citations", [])
        if c.get("supports", True)
    )


def _item_changes(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    changes = []
    ca, cb = a.get("correct"), b.get("correct")
    if ca is False and cb is True:
        changes.append("FIXED  wrong -> correct")
    elif ca is True and cb is False:
        changes.append("BROKE  correct -> wrong")
    aa, ab = a.get("abstained"), b.get("abstained")
    if aa is not None and ab is not None and aa != ab:
        was, now = ("abstained", "answered") if aa else ("answered", "abstained")
        changes.append(f"ABSTAIN {was} -> {now}")
    if _cited(a) != _cited(b) and a.get("answer") is not None and b.get("answer") is not None:
        changes.append(f"CITES  {_cited(a) or '[]'} -> {_cited(b) or '[]'}  ((x): not gold)")
    ra, rb = a["metrics"].get("recall@5"), b["metrics"].get("recall@5")
    if ra is not None and rb is not None and ra != rb:
        changes.append(f"RECALL@5 {ra:.0f} -> {rb:.0f}")
    return changes


def compare_runs(run_a: Path, run_b: Path) -> str:
    """A plain-text comparison of two run folders: overall metric deltas (B - A), then each item
    whose outcome changed (FIXED / BROKE, abstention, citations, recall@5), and items in one only.
    """
    sa, ra = load_run(run_a)
    sb, rb = load_run(run_b)
    lines = [
        f"A: {run_a}  ({sa.get('label')}, {sa.get('model')}, {sa.get('created')})",
        f"B: {run_b}  ({sb.get('label')}, {sb.get('model')}, {sb.get('created')})",
        "",
        *_summary_lines(sa, sb),
        "",
    ]
    by_id_a = {r["id"]: r for r in ra}
    by_id_b = {r["id"]: r for r in rb}
    fixed = broke = 0
    item_lines: list[str] = []
    for item_id, a in by_id_a.items():
        b = by_id_b.get(item_id)
        if b is None:
            continue
        for change in _item_changes(a, b):
            fixed += change.startswith("FIXED")
            broke += change.startswith("BROKE")
            item_lines.append(f"{item_id:<12} {change}   {a['question'][:70]}")
    lines.append(f"items: {fixed} fixed, {broke} broke, {len(item_lines)} changes")
    lines.extend(item_lines)
    only_a = [i for i in by_id_a if i not in by_id_b]
    only_b = [i for i in by_id_b if i not in by_id_a]
    if only_a:
        lines.append(f"only in A: {', '.join(only_a)}")
    if only_b:
        lines.append(f"only in B: {', '.join(only_b)}")
    return "\n".join(lines)


def read_source_texts(sources_dir: Path, names: Iterable[str]) -> tuple[dict[str, str], list[str]]:
    """Texts of the named source files (gold evidence sources) and the names not found.

    A bare file name is also looked up anywhere below ``sources_dir``.
    """
    texts: dict[str, str] = {}
    missing: list[str] = []
    for name in sorted(set(names)):
        path = sources_dir / name
        if not path.is_file() and "/" not in name:
            # Compare names rather than glob: a file name may contain "[" or "*".
            path = next((p for p in sources_dir.rglob("*") if p.name == name), path)
        if path.is_file():
            texts[name] = path.read_text(encoding="utf-8", errors="replace")
        else:
            missing.append(name)
    return texts, missing
