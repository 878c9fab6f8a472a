"""``rag bench``: registered by ``rag/cli.py`` as ``app.command("bench")(bench_cmd)``."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

DEFAULT_OUT = Path("bench/runs")


def _sizes(raw: str) -> list[int]:
    try:
        sizes = sorted({int(s.replace("_", "")) for s in raw.split(",") if s.strip()})
    except ValueError:
        raise typer.BadParameter(f"expected numbers like 1000,10000, got {raw!r}") from None
    if not sizes or min(sizes) < 20 or max(sizes) > 1_000_000:
        raise typer.BadParameter("sizes must be between 20 and 1,000,000 paragraphs")
    return sizes


def bench_cmd(
    quick: Annotated[
        bool, typer.Option("--quick", help="A few minutes: seeds + 1k paragraphs, light load.")
    ] = False,
    sizes: Annotated[
        str | None,
        typer.Option(help="Synthetic corpus sizes in paragraphs (default 1000,10000,100000)."),
    ] = None,
    out: Annotated[
        Path, typer.Option(help="Each run writes OUT/TIMESTAMP/bench.json and bench.md.")
    ] = DEFAULT_OUT,
    seeds: Annotated[Path, typer.Option(help="The real articles to measure.")] = Path("seeds"),
    sizes_only: Annotated[
        bool,
        typer.Option(
            "--sizes-only", help="Only the synthetic corpora: ingest, retrieval, start, memory."
        ),
    ] = False,
    bulk_load: Annotated[
        bool,
        typer.Option(
            "--bulk-load",
            help="Load synthetic corpora in big batches, not through ingest (scaling runs only).",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON, not the table.")] = False,
) -> None:
    """Measure ingest, retrieval, answers, load, start-up and memory, next to a plain
    llama-index pipeline; writes bench.json and bench.md. Servers run on 127.0.0.1 only.

    Example: `rag bench --quick` (a few minutes) · `rag bench` (full run: see docs/performance.md)
    """
    from rag.bench.run import BenchConfig, run_bench  # llama-index: only when it runs

    err = Console(stderr=True)
    overrides: dict[str, object] = {
        "out": out,
        "seeds": seeds,
        "sizes_only": sizes_only,
        "bulk_load": bulk_load,
    }
    if sizes is not None:
        overrides["sizes"] = _sizes(sizes)
    config = BenchConfig.quick_run(**overrides) if quick else BenchConfig(**overrides)
    if not seeds.is_dir():
        raise typer.BadParameter(f"no folder {seeds}", param_hint="--seeds")
    config.command = " ".join(
        ["rag bench"]
        + (["--quick"] if quick else [])
        + ([f"--sizes {sizes}"] if sizes else [])
        + (["--sizes-only"] if sizes_only else [])
        + (["--bulk-load"] if bulk_load else [])
    )
    embed = os.environ.get("RAG_EMBED__BACKEND")
    if embed:
        config.command = f"RAG_EMBED__BACKEND={embed} {config.command}"

    started = time.monotonic()

    def log(message: str) -> None:
        err.print(f"[dim]bench {time.monotonic() - started:6.1f}s[/dim] {message}", highlight=False)

    results, folder = run_bench(config, log)
    if as_json:
        print(json.dumps(results, indent=2, ensure_ascii=False))
    else:
        print((folder / "bench.md").read_text("utf-8"))
    err.print(f"wrote {folder / 'bench.json'} and {folder / 'bench.md'}", highlight=False)
