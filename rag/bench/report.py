"""The run's figures -> target checks -> ``bench.json`` and a markdown table (``bench.md``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rag.bench.stats import ratio

GIB = 1024**3


def _get(data: dict[str, Any], *path: str | int) -> Any:
    for key in path:
        if not isinstance(data, dict) or str(key) not in data:
            return None
        data = data[str(key)]
    return data


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, each with the figure measured in this run (None: not measured)."""
    largest = str(max(results["meta"]["sizes"], default=0))
    emb = _get(results, "retrieval", "embedded", largest, "hybrid") or {}
    ingest_rates = [
        v["paragraphs_per_s"]
        for k, v in results.get("ingest", {}).items()
        if k != "seeds" and int(k) <= 10_000 and v.get("paragraphs_per_s")
    ]
    load = results.get("load", [])
    top = max(load, key=lambda r: r["clients"], default=None)
    serve = results.get("serve", {})
    mem = _get(results, "serve_sizes", largest, "rss_bytes")
    reingest = [v.get("reingest_embedded") for v in results.get("ingest", {}).values()]
    reingest.append(_get(results, "restart", "second_embedded"))
    server = _get(results, "retrieval", "server", largest, "hybrid") or {}
    first = _get(results, "serve_sizes", largest, "first_answer_after_start_s")
    rows = [
        (f"retrieval p50 at {largest}, embedded (ms)", "<= 15", emb.get("p50_ms"), 15, "le"),
        (f"retrieval p95 at {largest}, embedded (ms)", "<= 30", emb.get("p95_ms"), 30, "le"),
        (f"retrieval p50 at {largest}, server (ms)", "<= 15", server.get("p50_ms"), 15, "le"),
        (f"retrieval p95 at {largest}, server (ms)", "<= 30", server.get("p95_ms"), 30, "le"),
        (f"first answer after a start at {largest} (s)", "<= 5", first, 5, "le"),
        (
            "ingest, slowest synthetic size up to 10k (paragraphs/s)",
            ">= 150",
            min(ingest_rates) if ingest_rates else None,
            150,
            "ge",
        ),
        (
            "/api/ask p50 warm (s)",
            "<= 1.5",
            _ms_to_s(_get(results, "answer", "api_ask", "p50_ms")),
            1.5,
            "le",
        ),
        (
            "streaming first answer text p50 (s)",
            "<= 0.4",
            _ms_to_s(_get(results, "answer", "api_first_token", "p50_ms")),
            0.4,
            "le",
        ),
        (
            f"errors other than 429 at {top['clients'] if top else '-'} clients",
            "0",
            top["errors"] if top else None,
            0,
            "le",
        ),
        (
            f"clients with an answer, of {top['clients'] if top else '-'}",
            "all",
            top.get("clients_served") if top else None,
            top["clients"] if top else 0,
            "ge",
        ),
        ("ready after start, seeds indexed (s)", "<= 8", serve.get("ready_s"), 8, "le"),
        (
            f"resident memory at {largest} paragraphs (GiB)",
            "<= 1",
            round(mem / GIB, 2) if mem else None,
            1.0,
            "le",
        ),
        (
            "paragraphs re-embedded on restart/re-ingest",
            "0",
            max((r for r in reingest if r is not None), default=None),
            0,
            "le",
        ),
    ]
    out = []
    for name, target, value, bound, how in rows:
        holds = None if value is None else (value <= bound if how == "le" else value >= bound)
        out.append({"figure": name, "target": target, "measured": value, "holds": holds})
    return out


def _ms_to_s(ms: float | None) -> float | None:
    return None if ms is None else round(ms / 1000, 3)


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "**no**"
    if isinstance(v, float):
        return f"{v:,.3f}".rstrip("0").rstrip(".") if abs(v) < 10 else f"{v:,.1f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _row(*cells: Any) -> str:
    return "| " + " | ".join(_fmt(c) for c in cells) + " |"


def markdown(results: dict[str, Any]) -> str:
    meta = results["meta"]
    lines = [
        f"Run {meta['started']} · `{meta['command']}` · {meta['cpus']} CPUs · "
        f"embeddings {meta['embed']} · model {meta['model']}",
        "",
        *[f"**failed: {name}**: {why}" for name, why in results.get("failed", {}).items()],
        "",
        "| figure | ours | plain llama-index | ours / baseline |",
        "|---|---|---|---|",
    ]
    sizes = ["seeds", *[str(s) for s in meta["sizes"]]]
    for size in sizes:
        ours = _get(results, "ingest", size) or {}
        base = _get(results, "baseline", "ingest", size) or {}
        if ours:
            lines.append(
                _row(
                    f"ingest {size} ({_fmt(ours.get('paragraphs'))} paragraphs), paragraphs/s",
                    ours.get("paragraphs_per_s"),
                    base.get("paragraphs_per_s"),
                    ratio(ours.get("paragraphs_per_s"), base.get("paragraphs_per_s")),
                )
            )
    for size, bulk in results.get("bulk_load", {}).items():
        lines.append(
            _row(
                f"bulk load {size} ({_fmt(bulk.get('paragraphs'))} paragraphs; not the ingest "
                "path), seconds",
                bulk.get("seconds"),
                None,
                None,
            )
        )
    for size in sizes:
        ours = _get(results, "ingest", size) or {}
        if ours:
            lines.append(
                _row(
                    f"re-ingest {size} unchanged: seconds / paragraphs re-embedded",
                    f"{_fmt(ours.get('reingest_seconds'))} / {ours.get('reingest_embedded')}",
                    None,
                    None,
                )
            )
    for where in ("embedded", "server"):
        for size in sizes:
            ours = _get(results, "retrieval", where, size, "hybrid")
            if not ours:
                continue
            base = _get(results, "baseline", "retrieval", where, size, "hybrid") or {}
            for p in ("p50_ms", "p95_ms"):
                lines.append(
                    _row(
                        f"retrieval {size}, Chroma {where}, {p.replace('_', ' ')}",
                        ours.get(p),
                        base.get(p),
                        ratio(ours.get(p), base.get(p)),
                    )
                )
    answer, base_answer = results.get("answer", {}), _get(results, "baseline", "answer") or {}
    for key, label in (
        ("api_ask", "/api/ask (HTTP, warm)"),
        ("api_first_token", "streaming /api/chat, first answer text"),
        ("ask", "answer in-process"),
        ("first_token", "first answer text in-process"),
    ):
        ours = answer.get(key) or {}
        base = base_answer.get(key.removeprefix("api_")) or {}
        for p in ("p50_ms", "p95_ms"):
            if ours.get(p) is not None:
                lines.append(
                    _row(
                        f"{label}, {p.replace('_', ' ')}",
                        ours.get(p),
                        base.get(p),
                        ratio(ours.get(p), base.get(p)),
                    )
                )
    for key, label in (("api_ask", "/api/ask"), ("api_first_token", "streaming /api/chat")):
        stages = (answer.get(key) or {}).get("stages_p50_ms")
        if stages:
            parts = ", ".join(f"{k} {_fmt(v)}" for k, v in stages.items())
            lines.append(_row(f"{label}: server-side stages, p50 ms", parts, None, None))
    serve = results.get("serve", {})
    lines += [
        _row("start to /readyz 200, seeds indexed (s)", serve.get("ready_s"), None, None),
        _row("resident memory idle, seeds (MiB)", _mib(serve.get("rss_idle_bytes")), None, None),
        _row(
            "resident memory after load test (MiB)",
            _mib(serve.get("rss_after_load_bytes")),
            None,
            None,
        ),
    ]
    for size, s in results.get("serve_sizes", {}).items():
        lines.append(
            _row(
                f"{size} paragraphs: ready / first answer, from start (s) / resident (MiB)",
                f"{_fmt(s.get('ready_s'))} / {_fmt(s.get('first_answer_after_start_s'))} / "
                f"{_fmt(_mib(s.get('rss_bytes')))}",
                None,
                None,
            )
        )
    lines += [
        "",
        "Latencies in ms unless marked. Load on /api/ask (seeds), "
        f"admission queue {meta.get('max_queue')}:",
        "",
    ]
    lines += [
        "| clients | clients answered | requests | answered | 429 | other errors | answers/s "
        "| admitted p50 ms | admitted p95 ms | 429 p95 ms |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results.get("load", []):
        lines.append(
            _row(
                r["clients"],
                r.get("clients_served"),
                r["requests"],
                r["ok"],
                r["rejected_429"],
                r["errors"],
                r["answers_per_s"],
                r["admitted"]["p50_ms"],
                r["admitted"]["p95_ms"],
                r["refused"]["p95_ms"],
            )
        )
    lines += ["", "| target | measured | holds |", "|---|---|---|"]
    for t in results.get("targets", []):
        lines.append(_row(f"{t['figure']} {t['target']}", t["measured"], t["holds"]))
    return "\n".join(lines) + "\n"


def _mib(n: int | None) -> float | None:
    return None if n is None else round(n / 1024**2, 1)


def write(results: dict[str, Any], folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    results["targets"] = targets(results)
    js, md = folder / "bench.json", folder / "bench.md"
    js.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", "utf-8")
    md.write_text(markdown(results), "utf-8")
    return js, md
