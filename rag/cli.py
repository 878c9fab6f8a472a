"""The `rag` command: ingest a folder, search it, ask it, serve it, evaluate it."""

from __future__ import annotations

import gc
import json
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from rag.config import Settings, offline_guards
from rag.errors import BackendUnavailable, RagError, WarmingUp
from rag.types import Turn

if TYPE_CHECKING:  # rag.index pulls in llama-index; `rag --help` should not wait for it
    from rag.index import IngestProgress

app = typer.Typer(
    help="Local question answering over a folder of articles, with verified citations.\n\n"
    'Quick start: rag ingest seeds/ · rag ask "What sentence is sought?" · rag serve',
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
)
sources_app = typer.Typer(help="List, show and remove ingested sources.", no_args_is_help=True)
app.add_typer(sources_app, name="sources")
out = Console()
err = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def clean_errors(fn: F) -> F:
    """User and environment errors as one red line and exit code 1, never a traceback."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except RagError as e:
            err.print(f"[red]error:[/red] {e}", highlight=False)
            raise typer.Exit(1) from None
        except ValueError as e:  # invalid settings from the environment
            err.print(f"[red]error:[/red] {e}", highlight=False)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def _pipeline(settings: Settings | None = None):
    offline_guards()
    from rag.wiring import build_pipeline

    return build_pipeline(settings or Settings())


SKIPPED_EXIT = 3  # `rag ingest`: the readable files are in, some files were skipped


@app.command()
@clean_errors
def ingest(
    path: Annotated[
        Path | None, typer.Argument(help="File or folder (default: the sources folder).")
    ] = None,
    prune: Annotated[
        bool, typer.Option(help="Remove sources whose files are gone from PATH.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Ingest .txt, .md and .html files. Re-running on unchanged files changes nothing.

    A file that cannot be read (empty, not UTF-8, NUL bytes, a link out of the folder) is
    skipped and named with its reason; every other file is ingested, and what was stored for a
    skipped file stays. Exit status 3 when files were skipped (`--json` lists them in
    `skipped`), 1 when nothing could be done.

    Example: `rag ingest seeds/ --prune`
    """
    settings = Settings()
    pipeline = _pipeline(settings)
    root = path or settings.sources_dir
    with Progress(
        TextColumn("{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[current]}"),
        console=err,
        transient=True,
        disable=as_json or not err.is_terminal,
    ) as bar:
        files = bar.add_task("files", total=None, current="")
        paragraphs = bar.add_task("paragraphs", total=None, current="")

        def progress(p: IngestProgress) -> None:
            bar.update(files, completed=p.files_done, total=p.files, current=p.current)
            bar.update(paragraphs, completed=p.paragraphs_done, total=p.paragraphs)

        report = pipeline.ingest(root, prune=prune, progress=progress)
    if as_json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        out.print(
            f"{root}: {len(report.added)} added, {len(report.updated)} updated, "
            f"{len(report.unchanged)} unchanged, {len(report.removed)} removed, "
            f"{len(report.skipped)} skipped; "
            f"{report.paragraphs} paragraphs, {report.embedded} embedded in {report.seconds:.2f}s",
            highlight=False,
        )
        for skipped in report.skipped:
            err.print(f"[yellow]skipped[/yellow] {skipped.file}: {skipped.reason}", highlight=False)
    if report.skipped:
        raise typer.Exit(SKIPPED_EXIT)


@sources_app.command("list")
@clean_errors
def sources_list(as_json: JsonOpt = False) -> None:
    """List ingested sources."""
    items = _pipeline().list_sources()
    if as_json:
        print(json.dumps([s.to_dict() for s in items], indent=2, ensure_ascii=False))
        return
    table = Table("id", "title", "paragraphs", "chars")
    for s in items:
        table.add_row(s.id, s.title, str(s.paragraphs), str(s.chars))
    out.print(table)


@sources_app.command("show")
@clean_errors
def sources_show(source_id: str, as_json: JsonOpt = False) -> None:
    """Show a source's paragraphs with their ids and offsets."""
    source, paragraphs = _pipeline().get_source(source_id)
    if as_json:
        print(
            json.dumps(
                {"source": source.to_dict(), "paragraphs": [p.to_dict() for p in paragraphs]},
                indent=2,
                ensure_ascii=False,
            )
        )
        return
    out.print(f"[bold]{source.title}[/bold]  ({source.id})", highlight=False)
    for p in paragraphs:
        out.print(
            f"\n[dim]¶{p.index}  {p.id}  [{p.start}:{p.end}][/dim]\n{p.text}", highlight=False
        )


@sources_app.command("rm")
@clean_errors
def sources_rm(source_id: str) -> None:
    """Remove a source and its paragraphs from the index."""
    n = _pipeline().remove_source(source_id)
    out.print(f"removed {source_id} ({n} paragraphs)")


@app.command()
@clean_errors
def search(
    question: str,
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, max=50)] = 5,
    as_json: JsonOpt = False,
) -> None:
    """Hybrid (BM25 + dense) search; prints paragraphs with scores, source and offsets.

    Example: `rag search "prison sentence sought for Chávez"`
    """
    _, hits = _pipeline().retrieve(question, top_k=top_k)
    if as_json:
        print(json.dumps([h.to_dict() for h in hits], indent=2, ensure_ascii=False))
        return
    for rank, h in enumerate(hits, 1):
        p = h.paragraph
        out.print(
            f"[bold]{rank}.[/bold] {p.source} ¶{p.index} [{p.start}:{p.end}]  score {h.score:.4f} "
            f"(dense #{h.dense_rank or '-'}, bm25 #{h.lexical_rank or '-'})\n   {p.text}\n",
            highlight=False,
        )


@app.command()
@clean_errors
def ask(
    question: Annotated[str | None, typer.Argument(help="Omit to chat interactively.")] = None,
    trace: Annotated[bool, typer.Option(help="Show retrieval, checks and timings.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Answer from the sources with verified citations (or say the sources don't say).

    Example: `rag ask "What prison sentence are prosecutors seeking for Betssy Chávez?"`
    """
    pipeline = _pipeline()
    history: list[Turn] = []
    while True:
        q = question if question is not None else _prompt()
        if q is None:
            return
        answer = pipeline.ask(q, history=history)
        if as_json:
            print(json.dumps(answer.to_dict(trace=trace), indent=2, ensure_ascii=False))
        else:
            _print_answer(answer, trace)
        if question is not None:
            return
        history += [Turn("user", q), Turn("assistant", answer.answer)]


def _prompt() -> str | None:
    try:
        q = input("\nquestion> ").strip()
    except (EOFError, KeyboardInterrupt):
        return None
    return q or _prompt()


def _print_answer(answer: Any, trace: bool) -> None:
    if answer.resolved_question != answer.question:
        out.print(f"[dim](understood as: {answer.resolved_question})[/dim]", highlight=False)
    style = "yellow" if answer.abstained else "bold"
    out.print(f"[{style}]{answer.answer}[/{style}]\n", highlight=False)
    for c in answer.citations:
        tag = "" if c.supports else " (related, does not answer)"
        out.print(
            f"[{c.n}] {c.source} ¶{c.paragraph} [{c.start}:{c.end}]{tag}\n    {c.text}",
            highlight=False,
        )
    if trace:
        out.print_json(json.dumps(answer.trace.to_dict(), ensure_ascii=False))
    t = answer.timings
    out.print(f"[dim]{t.get('total', 0):.2f}s[/dim]")


@app.command()
@clean_errors
def serve(
    host: Annotated[str | None, typer.Option(help="Default RAG_API__HOST (127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Default RAG_API__PORT (8000).")] = None,
    ingest_first: Annotated[
        bool, typer.Option("--ingest/--no-ingest", help="Ingest the sources folder first.")
    ] = False,
) -> None:
    """Serve the HTTP API and the chat page (http://127.0.0.1:8000/).

    Serves whatever the state of the Chroma and Ollama servers: one that is down is named by
    `/readyz` and by every 503 until it is back, with no restart. The in-process model must
    load and decode a token first; if it cannot, that is a configuration error and nothing is
    served.
    """
    import uvicorn

    from api.main import create_app

    settings = Settings()
    pipeline = _pipeline(settings)
    if ingest_first:
        _ingest_before_serving(pipeline, settings.sources_dir)
    # BM25 is loaded (or built) now, beside the model's load, not by the first question; until
    # it is done /readyz says not ready, and questions that come meanwhile wait for it.
    # Then everything loaded so far is left out of the garbage collector's full passes: at 100k
    # paragraphs one took 0.1-0.25 s (370k tracked objects), a pause some question would pay.
    pipeline.retriever.warm_in_background(then=gc.freeze)
    err.print("loading the model ...")
    try:
        up, down = pipeline.warm_up()
    except BackendUnavailable as e:
        raise RagError(
            f"{e}. The model runs inside this process, so nothing can be answered: fix the "
            "model file (RAG_LLM__MODEL_PATH) or the llama-cpp-python install."
        ) from None
    for name, state in up.items():
        err.print(f"{name}: {state}", highlight=False)
    for e in down:
        if isinstance(e, WarmingUp):
            err.print(f"{e.backend}: loading in the background", highlight=False)
            continue
        err.print(
            f"[yellow]warning:[/yellow] {e}; serving anyway: /readyz and the API answer 503 "
            "naming it until it is back",
            highlight=False,
        )
    h, p = host or settings.api.host, port or settings.api.port
    err.print(f"serving on http://{h}:{p}/  (API docs at /docs)")
    uvicorn.run(create_app(pipeline, settings), host=h, port=p, log_level="info")


def _ingest_before_serving(pipeline: Any, folder: Path) -> None:
    """`rag serve --ingest`: a backend that is down skips the ingest, not the serving."""
    try:
        report = pipeline.ingest(folder)
    except BackendUnavailable as e:
        err.print(
            f"[yellow]warning:[/yellow] {folder} not ingested: {e}; run `rag ingest` once it "
            "is back",
            highlight=False,
        )
        return
    err.print(f"ingested {folder}: {report.paragraphs} paragraphs ({report.embedded} embedded)")
    for skipped in report.skipped:
        err.print(f"[yellow]skipped[/yellow] {skipped.file}: {skipped.reason}", highlight=False)


def _register_eval() -> None:
    try:
        from eval.cli import eval_cmd
    except ImportError:  # only when the eval package is missing from an install

        @app.command("eval")
        def eval_missing() -> None:
            """Evaluate against a gold file (eval package missing)."""
            err.print("[red]error:[/red] evaluation harness (eval/) is not installed")
            raise typer.Exit(2)

        return
    app.command("eval")(clean_errors(eval_cmd))


_register_eval()


def _register_bench() -> None:
    from rag.bench.cli import bench_cmd  # light: the heavy imports happen when it runs

    app.command("bench")(clean_errors(bench_cmd))


_register_bench()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
