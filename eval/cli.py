"""``rag eval``: run a gold file (or a SQuAD v2.0 subset) through the pipeline and gate on metrics.

Registered by ``rag/cli.py`` as ``app.command("eval")(eval_cmd)``.
"""

from __future__ import annotations

import hashlib
import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from eval.gold import GoldError, GoldItem, load_gold, load_squad
from eval.run import (
    METRIC_ORDER,
    RunFolderError,
    check_gates,
    compare_runs,
    read_source_texts,
    run_eval,
)

DEFAULT_GOLD = Path("eval/gold/seeds.jsonl")
DEFAULT_OUT = Path("eval/runs")
TABLE_METRICS = (
    "n",
    "answer_recall",
    "item_accuracy",
    "abstention_rate",
    "wrong_abstention_rate",
    "citation_precision",
    "citation_recall",
    "sentence_support_rate",
    "recall@5",
    "mrr@10",
    "words_median",
    "latency_p50",
    "latency_p95",
)


class Backend(StrEnum):
    llamacpp = "llamacpp"
    ollama = "ollama"


def _fail(message: str) -> typer.Exit:
    Console(stderr=True).print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(2)


def parse_bounds(values: list[str] | None, option: str) -> dict[str, float]:
    """``["answer_recall=0.6", "factoid.words_median=40"]`` -> ``{name: bound}``."""
    bounds: dict[str, float] = {}
    for raw in values or []:
        name, sep, number = raw.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            bounds[name.strip()] = float(number)
        except ValueError:
            raise typer.BadParameter(
                f"expected METRIC=VALUE (e.g. answer_recall=0.6), got {raw!r}", param_hint=option
            ) from None
    return bounds


def _short_hash(*parts: object) -> str:
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:12]


def eval_data_dir(data_dir: Path, sources: Path, embed_backend: str, embed_model: str) -> Path:
    """The eval's own index: ``<data_dir>/eval-index/<hash>``, never the user's main index.

    Keyed by the sources folder's absolute path and the embedder (``rag.embed.describe``: backend
    and model, int8 MiniLM named apart), so a run with another embedder never meets a collection
    of another embedder's vectors.
    """
    key = _short_hash(sources.resolve(), embed_backend, embed_model)
    return data_dir / "eval-index" / key


def _source_texts(pipeline: Any, sources: Path, items: list[GoldItem]) -> dict[str, str]:
    names = {ev.source for item in items for ev in item.evidence}
    texts, missing = read_source_texts(sources, names)
    if missing:
        raise _fail(
            f"gold evidence names files not in {sources}: {', '.join(missing)} "
            "(pass the folder the gold file was written for with --sources)"
        )
    # The stored text is what paragraph offsets point into (HTML is stored as extracted text).
    for name in names:
        try:
            texts[name] = pipeline.source_text(name)
        except Exception:  # not stored under that id: the file's own text is the best we have
            continue
    return texts


def _warn_missing_quotes(items: list[GoldItem], texts: dict[str, str], err: Console) -> None:
    missing = [
        item.id
        for item in items
        for ev in item.evidence
        if ev.source in texts
        and " ".join(ev.quote.split()) not in " ".join(texts[ev.source].split())
    ]
    if missing:
        err.print(
            f"[yellow]warning:[/yellow] {len(missing)} evidence quote(s) not found verbatim in "
            f"their source ({', '.join(sorted(set(missing))[:10])}); those items can only be "
            "supported by exact paragraph containment, which will fail.",
            highlight=False,
        )


def _cell(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _summary_table(summary: dict[str, Any]) -> Table:
    groups = {"overall": summary["overall"], **summary["by_type"]}
    what = "retrieval only" if summary.get("retrieval_only") else summary["model"]
    table = Table(title=f"eval {summary['label']} ({what})")
    table.add_column("metric", no_wrap=True)
    for name in groups:
        table.add_column(name, justify="right", overflow="fold")
    for metric in (m for m in METRIC_ORDER if m in TABLE_METRICS):
        values = [group[metric]["value"] for group in groups.values()]
        if all(v is None for v in values):
            continue  # not measured in this run
        table.add_row(metric, *(_cell(v) for v in values))
    return table


def parse_articles(value: str | None, option: str = "--question-articles") -> set[int] | None:
    """``"7,8"`` or ``"5-8"`` -> ``{7, 8}`` / ``{5, 6, 7, 8}`` (1-based article numbers)."""
    if not value:
        return None
    out: set[int] = set()
    try:
        for piece in value.split(","):
            lo, _, hi = piece.strip().partition("-")
            out.update(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        raise typer.BadParameter(
            f"expected article numbers like 7,8 or 5-8, got {value!r}",
            param_hint=option,
        ) from None
    return out


def even_sample(items: list[GoldItem], n: int | None) -> list[GoldItem]:
    """``n`` items spread evenly over ``items`` (the same ones every run), in their order."""
    if not n or n >= len(items):
        return items
    return [items[i * len(items) // n] for i in range(n)]


def _load_items(
    gold: Path,
    squad: Path | None,
    limit: int | None,
    articles: int | None,
    data_dir: Path,
    question_articles: set[int] | None = None,
    sample: int | None = None,
    haystack_articles: set[int] | None = None,
) -> tuple[list[GoldItem], Path | None, str]:
    """Items, the SQuAD sources folder (None for a gold file) and a description for config."""
    if squad is not None:
        key = _short_hash(
            squad.resolve(),
            limit,
            articles,
            sorted(question_articles or []),
            *([sorted(haystack_articles)] if haystack_articles else []),
        )
        items, folder = load_squad(
            squad,
            limit,
            articles,
            out_dir=data_dir / "eval-squad" / key,
            question_articles=question_articles,
            haystack_articles=haystack_articles,
        )
        return even_sample(items, sample), folder, str(squad)
    items = load_gold(gold)
    return even_sample(items[:limit] if limit else items, sample), None, str(gold)


def eval_cmd(
    gold: Annotated[
        Path, typer.Option(help="Gold JSON Lines file (see eval/gold/).")
    ] = DEFAULT_GOLD,
    sources: Annotated[
        Path | None,
        typer.Option(
            help="Folder the gold evidence names files in [default: settings sources_dir]."
        ),
    ] = None,
    squad: Annotated[
        Path | None, typer.Option(help="Evaluate on a SQuAD v2.0 JSON file instead of --gold.")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N questions.")] = None,
    articles: Annotated[
        int | None, typer.Option(min=1, help="SQuAD: only the first N articles.")
    ] = None,
    question_articles: Annotated[
        str | None,
        typer.Option(
            help="SQuAD: ask only these articles' questions (1-based, e.g. 7,8 or 5-8); every "
            "article stays indexed as haystack."
        ),
    ] = None,
    haystack_articles: Annotated[
        str | None,
        typer.Option(
            help="SQuAD: index only these articles; the others' questions are asked as "
            "unanswerable (type not_in_sources): abstention on questions the sources never "
            "cover."
        ),
    ] = None,
    sample: Annotated[
        int | None,
        typer.Option(min=1, help="Only N questions, spread evenly over those selected."),
    ] = None,
    backend: Annotated[
        Backend | None, typer.Option(help="LLM backend [default: from settings].")
    ] = None,
    retrieval_only: Annotated[
        bool, typer.Option("--retrieval-only", help="Only retrieve: no model, retrieval metrics.")
    ] = False,
    baseline: Annotated[
        bool,
        typer.Option(
            "--baseline",
            help="Run the plain loop instead (top-3 paragraphs, prompt, no grounding) to see "
            "what grounding adds.",
        ),
    ] = False,
    workers: Annotated[int, typer.Option(min=1, help="Items in flight at once.")] = 1,
    label: Annotated[
        str | None, typer.Option(help="Run name [default: gold name + backend].")
    ] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for run folders.")] = DEFAULT_OUT,
    mins: Annotated[
        list[str] | None,
        typer.Option(
            "--min",
            metavar="METRIC=VALUE",
            help="Lower bound gate METRIC=VALUE, repeatable; METRIC may be "
            "type.metric (e.g. factoid.answer_recall=0.6).",
        ),
    ] = None,
    maxs: Annotated[
        list[str] | None,
        typer.Option(
            "--max",
            metavar="METRIC=VALUE",
            help="Upper bound gate METRIC=VALUE, repeatable "
            "(e.g. wrong_abstention_rate=0.2, factoid.words_median=40).",
        ),
    ] = None,
    compare: Annotated[
        tuple[Path, Path] | None,
        typer.Option(
            metavar="RUN_A RUN_B", help="Compare two run folders, print the changes and exit."
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Summary JSON on stdout; progress on stderr.")
    ] = False,
) -> None:
    """Evaluate the pipeline on a gold file and write a run folder with report.html.

    Examples:

      rag eval                                   # eval/gold/seeds.jsonl over seeds/

      rag eval --min answer_recall=0.6 --max wrong_abstention_rate=0.2

      rag eval --squad tests/data/squad_small.json --limit 50 --retrieval-only

      rag eval --squad eval/data/squad2-dev-a.json --question-articles 7,8 --sample 120

      rag eval --squad eval/data/squad2-dev-a.json --question-articles 7,8 --haystack-articles 1-6

      rag eval --compare eval/runs/A eval/runs/B
    """
    err = Console(stderr=True)
    out = Console(stderr=as_json)
    min_bounds = parse_bounds(mins, "--min")
    max_bounds = parse_bounds(maxs, "--max")
    if compare is not None and all(p is not None for p in compare):
        try:
            print(compare_runs(*compare))
        except RunFolderError as exc:
            raise _fail(str(exc)) from None
        return

    from rag.config import Settings

    try:
        settings = Settings()
    except ValueError as exc:
        raise _fail(f"invalid settings: {exc}") from None
    if backend is not None:
        settings = settings.model_copy(
            update={"llm": settings.llm.model_copy(update={"backend": backend.value})}
        )
    try:
        items, squad_sources, gold_name = _load_items(
            gold,
            squad,
            limit,
            articles,
            settings.data_dir,
            parse_articles(question_articles),
            sample,
            parse_articles(haystack_articles, "--haystack-articles"),
        )
    except GoldError as exc:
        raise _fail(str(exc)) from None
    source_dir = squad_sources or sources or settings.sources_dir
    if not source_dir.is_dir():
        raise _fail(f"{source_dir}: no such sources folder (use --sources)")

    from rag.embed import describe

    index_dir = eval_data_dir(settings.data_dir, source_dir, **describe(settings))
    settings = settings.model_copy(update={"data_dir": index_dir, "sources_dir": source_dir})

    from rag.wiring import build_pipeline

    pipeline = build_pipeline(settings)
    with err.status(f"indexing {source_dir} into {index_dir}"):
        report = pipeline.ingest(source_dir, prune=True)
    err.print(
        f"sources: {len(report.added)} added, {len(report.updated)} updated, "
        f"{len(report.unchanged)} unchanged ({report.paragraphs} paragraphs)",
        highlight=False,
    )
    source_texts = _source_texts(pipeline, source_dir, items)
    _warn_missing_quotes(items, source_texts, err)

    mode = "retrieval" if retrieval_only else settings.llm.backend
    if baseline and not retrieval_only:
        from eval.baseline import PlainRAG

        mode = f"{mode}-baseline"
        pipeline = PlainRAG(pipeline)
    run_label = label or f"{Path(gold_name).stem}-{mode}"
    config = {
        "gold": gold_name,
        "sources": str(source_dir),
        "index_dir": str(index_dir),
        "limit": limit,
        "articles": articles,
        "question_articles": question_articles,
        "haystack_articles": haystack_articles,
        "sample": sample,
        "command": " ".join(sys.argv),
        "baseline": baseline,
        "settings": json.loads(settings.model_dump_json()),
    }
    result = run_eval(
        pipeline,
        items,
        label=run_label,
        out_root=out_dir,
        retrieval_only=retrieval_only,
        workers=workers,
        source_texts=source_texts,
        progress=err.is_terminal or not as_json,
        config=config,
    )
    summary = result.summary
    if as_json:
        extra = {"run_dir": str(result.run_dir), "report": str(result.report_path)}
        print(json.dumps({**summary, **extra}, indent=2))
    else:
        out.print(_summary_table(summary))
        out.print(f"report: {result.report_path}", highlight=False)
    if summary.get("errors"):
        err.print(
            f"[yellow]warning:[/yellow] {summary['errors']} item(s) raised errors; see the report."
        )
    failures = check_gates(summary, min_bounds, max_bounds)
    if failures:
        err.print("[red]gates failed:[/red]")
        for line in failures:
            err.print(f"  - {line}", highlight=False)
        raise typer.Exit(1)
