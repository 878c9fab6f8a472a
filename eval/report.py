"""One self-contained HTML page per run: inline CSS and SVG, no scripts, nothing fetched.

Every piece of text from the gold file or the pipeline goes through ``html.escape``: answers are
model output and gold files are written by anyone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from eval.metrics import LOWER_IS_BETTER, SUMMARY_METRICS, SUPPORT_THRESHOLD

PALETTE = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c")
TYPE_PLOT_METRICS = (
    "answer_recall",
    "item_accuracy",
    "abstention_rate",
    "citation_precision",
    "citation_recall",
    "sentence_support_rate",
    "recall@5",
)
RATIO_EXCLUDED = frozenset({"n", "words_median", "words_p90", "latency_p50", "latency_p95"})

CSS = """
:root { --fg:#1f2328; --muted:#656d76; --line:#d0d7de; --zebra:#f6f8fa; --accent:#4c72b0;
  --bad:#c44e52; --good:#2e7d32; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
  max-width: 1080px; margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { margin-top: 2.2rem;
  border-bottom: 1px solid var(--line); padding-bottom: .3rem; }
.meta { color: var(--muted); margin: 0 0 1rem; } .meta b { color: var(--fg); font-weight: 600; }
table { border-collapse: collapse; width: 100%; margin: .6rem 0;
  font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid var(--line);
  vertical-align: top; }
th { background: #eef1f4; font-weight: 600; } tbody tr:nth-child(even) { background: var(--zebra); }
td.num { text-align: right; white-space: nowrap; } .muted { color: var(--muted); }
.bar { background: #e6ebf1; border-radius: 3px; height: .7rem; width: 160px; position: relative; }
.bar span { position: absolute; left: 0; top: 0; bottom: 0; background: var(--accent);
  border-radius: 3px; } .bar i { position: absolute; top: -2px; bottom: -2px;
  border-left: 1px solid #1f2328; border-right: 1px solid #1f2328; }
.plots { display: flex; flex-wrap: wrap; gap: 1.5rem; } figure { margin: 0; }
figcaption { color: var(--muted); font-size: .9rem; }
.item { border: 1px solid var(--line); border-radius: 6px; padding: .8rem 1rem; margin: 1rem 0; }
.item h3 { margin: 0 0 .4rem; font-size: 1.05rem; }
.tag { display: inline-block; font-size: .78rem; padding: .05rem .45rem; border-radius: 999px;
  background: #fbe9ea; color: var(--bad); margin-right: .3rem; font-weight: 600; }
.tag.type { background: #e8eef8; color: var(--accent); }
.cols { display: grid; grid-template-columns: 1fr 1fr; gap: 1rem; }
.cols > div { min-width: 0; } .answer { white-space: pre-wrap; background: var(--zebra);
  padding: .5rem .7rem; border-radius: 4px; }
blockquote { margin: .3rem 0; padding: .3rem .7rem; border-left: 3px solid var(--line);
  background: var(--zebra); } .ok { color: var(--good); } .no { color: var(--bad); }
.small { font-size: .88rem; } ul.tight { margin: .2rem 0; padding-left: 1.2rem; }
@media (max-width: 760px) { .cols { grid-template-columns: 1fr; } }
"""


def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


# --- tables ------------------------------------------------------------------------------------


def _bar(entry: Mapping[str, Any]) -> str:
    value = entry.get("value")
    if value is None:
        return ""
    width = max(0.0, min(1.0, float(value))) * 100
    ci = entry.get("ci")
    whisker = ""
    if ci:
        lo, hi = (max(0.0, min(1.0, float(x))) * 100 for x in ci)
        lo = min(lo, 99.5)  # keep a zero-width interval at 100% visible inside the bar
        whisker = f'<i style="left:{lo:.1f}%;width:{max(hi - lo, 0.5):.1f}%"></i>'
    return f'<div class="bar"><span style="width:{width:.1f}%"></span>{whisker}</div>'


def _summary_table(overall: Mapping[str, Mapping[str, Any]]) -> str:
    rows = []
    unmeasured = [name for name, entry in overall.items() if entry.get("value") is None]
    for name, entry in overall.items():
        if name in unmeasured:
            continue
        ci = entry.get("ci")
        ci_text = f"{_num(ci[0])} – {_num(ci[1])}" if ci else ""
        bar = "" if name in RATIO_EXCLUDED else _bar(entry)
        direction = " (lower is better)" if name in LOWER_IS_BETTER else ""
        rows.append(
            f"<tr><td><b>{_e(name)}</b><div class='muted small'>"
            f"{_e(SUMMARY_METRICS.get(name, ''))}{direction}</div></td>"
            f"<td class='num'>{_num(entry.get('value'))}</td><td>{bar}</td>"
            f"<td class='num'>{ci_text}</td><td class='num'>{_num(entry.get('n'))}</td></tr>"
        )
    note = (
        f"<p class='muted small'>Not measured in this run: {_e(', '.join(unmeasured))}.</p>"
        if unmeasured
        else ""
    )
    return (
        "<table><thead><tr><th>metric</th><th>value</th><th></th><th>95% CI</th><th>n</th>"
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>{note}"
    )


def _type_table(by_type: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> str:
    if not by_type:
        return "<p class='muted'>No items.</p>"
    types = list(by_type)
    names = list(next(iter(by_type.values())))
    head = "".join(f"<th>{_e(t)}</th>" for t in types)
    rows = []
    for name in names:
        cells = []
        for t in types:
            entry = by_type[t][name]
            n = (
                ""
                if name == "n" or entry.get("value") is None
                else f" <span class='muted'>(n={entry.get('n')})</span>"
            )
            cells.append(f"<td class='num'>{_num(entry.get('value'))}{n}</td>")
        rows.append(f"<tr><td><b>{_e(name)}</b></td>{''.join(cells)}</tr>")
    return (
        f"<table><thead><tr><th>metric</th>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


# --- SVG plots ---------------------------------------------------------------------------------


def _svg(width: int, height: int, body: str, title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{_e(title)}" '
        f'font-family="system-ui, sans-serif" font-size="11">{body}</svg>'
    )


def _y_axis(x0: int, y0: int, plot_h: int, plot_w: int, top: float, fmt: str = "{:.1f}") -> str:
    parts = []
    for i in range(5):
        frac = i / 4
        y = y0 - frac * plot_h
        parts.append(
            f'<line x1="{x0}" y1="{y:.1f}" x2="{x0 + plot_w}" y2="{y:.1f}" stroke="#e3e7eb"/>'
            f'<text x="{x0 - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#656d76">'
            f"{_e(fmt.format(top * frac))}</text>"
        )
    return "".join(parts)


def _legend(names: Sequence[str], x: int, y: int) -> str:
    parts = []
    for i, name in enumerate(names):
        yy = y + i * 16
        parts.append(
            f'<rect x="{x}" y="{yy - 9}" width="10" height="10" '
            f'fill="{PALETTE[i % len(PALETTE)]}"/>'
            f'<text x="{x + 14}" y="{yy}">{_e(name)}</text>'
        )
    return "".join(parts)


def type_bars_svg(by_type: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> str:
    """Grouped bars: one group per metric, one bar per item type (missing values left out)."""
    types = list(by_type)
    if not types:
        return ""
    width, height, x0, y0 = 760, 300, 40, 250
    plot_w, plot_h = width - x0 - 130, 220
    group_w = plot_w / len(TYPE_PLOT_METRICS)
    bar_w = max(3.0, (group_w - 10) / len(types))
    parts = [_y_axis(x0, y0, plot_h, plot_w, 1.0)]
    for g, name in enumerate(TYPE_PLOT_METRICS):
        gx = x0 + g * group_w + 5
        for t_i, t in enumerate(types):
            value = by_type[t].get(name, {}).get("value")
            if value is None:
                continue
            h = max(0.0, min(1.0, float(value))) * plot_h
            parts.append(
                f'<rect x="{gx + t_i * bar_w:.1f}" y="{y0 - h:.1f}" width="{bar_w - 1:.1f}" '
                f'height="{h:.1f}" fill="{PALETTE[t_i % len(PALETTE)]}">'
                f"<title>{_e(t)} {_e(name)} = {value:.3f}</title></rect>"
            )
        parts.append(
            f'<text x="{gx + (group_w - 10) / 2:.1f}" y="{y0 + 16}" text-anchor="middle">'
            f"{_e(name.replace('_', ' '))}</text>"
        )
    parts.append(_legend(types, x0 + plot_w + 16, 30))
    return _svg(width, height, "".join(parts), "metrics per item type")


def latency_svg(latencies: Sequence[float], bins: int = 12) -> str:
    """Histogram of per-item latency in seconds, equal-width bins from 0 to the slowest item."""
    if not latencies:
        return ""
    width, height, x0, y0 = 360, 240, 40, 200
    plot_w, plot_h = width - x0 - 15, 180
    top = max(latencies) or 1.0
    counts = [0] * bins
    for v in latencies:
        counts[min(bins - 1, int(v / top * bins))] += 1
    peak = max(counts)
    parts = [_y_axis(x0, y0, plot_h, plot_w, float(peak), "{:.0f}")]
    bw = plot_w / bins
    for i, c in enumerate(counts):
        h = c / peak * plot_h
        lo, hi = top * i / bins, top * (i + 1) / bins
        parts.append(
            f'<rect x="{x0 + i * bw + 1:.1f}" y="{y0 - h:.1f}" width="{bw - 2:.1f}" '
            f'height="{h:.1f}" fill="{PALETTE[0]}"><title>{lo:.2f}–{hi:.2f}s: {c}</title></rect>'
        )
    for frac in (0, 0.5, 1):
        x = x0 + frac * plot_w
        parts.append(
            f'<text x="{x:.1f}" y="{y0 + 16}" text-anchor="middle">{top * frac:.2f}s</text>'
        )
    return _svg(width, height, "".join(parts), "latency histogram")


def recall_curve_svg(summary: Mapping[str, Any], ks: Sequence[int] = (1, 3, 5, 10)) -> str:
    """Retrieval recall@k against k, overall (thick) and per item type."""
    series: list[tuple[str, list[float | None]]] = []
    groups = {"overall": summary.get("overall", {}), **summary.get("by_type", {})}
    for name, group in groups.items():
        values = [group.get(f"recall@{k}", {}).get("value") for k in ks]
        if any(v is not None for v in values):
            series.append((name, values))
    if not series:
        return ""
    width, height, x0, y0 = 380, 240, 40, 200
    plot_w, plot_h = width - x0 - 110, 180
    parts = [_y_axis(x0, y0, plot_h, plot_w, 1.0)]

    def x_of(k: int) -> float:
        return x0 + (k - ks[0]) / (ks[-1] - ks[0]) * plot_w

    for k in ks:
        parts.append(f'<text x="{x_of(k):.1f}" y="{y0 + 16}" text-anchor="middle">k={k}</text>')
    for i, (name, values) in enumerate(series):
        color = "#1f2328" if name == "overall" else PALETTE[i % len(PALETTE)]
        pts = [(x_of(k), y0 - v * plot_h) for k, v in zip(ks, values, strict=True) if v is not None]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
        stroke = 3 if name == "overall" else 1.5
        parts.append(
            f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="{stroke}"/>'
        )
        parts.extend(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"/>' for x, y in pts)
        yy = 30 + i * 16
        parts.append(
            f'<rect x="{x0 + plot_w + 14}" y="{yy - 9}" width="10" height="10" fill="{color}"/>'
            f'<text x="{x0 + plot_w + 28}" y="{yy}">{_e(name)}</text>'
        )
    return _svg(width, height, "".join(parts), "retrieval recall at k")


def abstention_curve_svg(
    curve: Sequence[Mapping[str, float]], operating: tuple[float, float] | None = None
) -> str:
    """Abstention on unanswerable items (y) against wrong abstention on answerable ones (x) as
    the threshold moves; the run's own threshold is the red dot."""
    if not curve:
        return ""
    width, height, x0, y0 = 380, 240, 40, 200
    plot_w, plot_h = width - x0 - 30, 180
    parts = [_y_axis(x0, y0, plot_h, plot_w, 1.0)]
    for v in (0.0, 0.25, 0.5, 0.75, 1.0):
        parts.append(
            f'<text x="{x0 + v * plot_w:.1f}" y="{y0 + 16}" text-anchor="middle">{v:g}</text>'
        )
    pts = sorted((p["wrong_abstention"], p["abstention"]) for p in curve)
    path = " ".join(f"{x0 + x * plot_w:.1f},{y0 - y * plot_h:.1f}" for x, y in pts)
    parts.append(f'<polyline points="{path}" fill="none" stroke="{PALETTE[0]}" stroke-width="2"/>')
    parts.extend(
        f'<circle cx="{x0 + x * plot_w:.1f}" cy="{y0 - y * plot_h:.1f}" r="2.5" '
        f'fill="{PALETTE[0]}"/>'
        for x, y in pts
    )
    if operating is not None:
        wx, ay = operating
        parts.append(
            f'<circle cx="{x0 + wx * plot_w:.1f}" cy="{y0 - ay * plot_h:.1f}" r="5" '
            f'fill="#c44e52"><title>this run: abstention {ay:.2f}, wrong {wx:.2f}</title></circle>'
        )
    parts.append(
        f'<text x="{x0 + plot_w / 2:.1f}" y="{y0 + 34}" text-anchor="middle">'
        "wrong abstention on answerable</text>"
    )
    return _svg(width, height + 20, "".join(parts), "abstention curve")


def _curve_table(curve: Sequence[Mapping[str, float]]) -> str:
    rows = "".join(
        f"<tr><td class='num'>{_num(p['threshold'], 2)}</td>"
        f"<td class='num'>{_num(p['abstention'])}</td>"
        f"<td class='num'>{_num(p['wrong_abstention'])}</td></tr>"
        for p in curve
    )
    return (
        "<table><thead><tr><th>threshold</th><th>abstention (unanswerable)</th>"
        f"<th>wrong abstention (answerable)</th></tr></thead><tbody>{rows}</tbody></table>"
    )


# --- explanations ------------------------------------------------------------------------------


def _how_to_read(summary: Mapping[str, Any], results: Sequence[Mapping[str, Any]]) -> str:
    n = len(results)
    answerable = sum(1 for r in results if r.get("gold_answers"))
    overall = summary.get("overall", {})
    example = ""
    for name in ("answer_recall", "recall@5", "item_accuracy"):
        entry = overall.get(name, {})
        if entry.get("ci"):
            lo, hi = entry["ci"]
            example = (
                f" For example {name} is {_num(entry['value'])} with a 95% interval of "
                f"{_num(lo)} – {_num(hi)} (width {_num(hi - lo)})."
            )
            break
    return f"""
<ul>
<li><b>The gold set is small.</b> This run has {n} items ({answerable} answerable,
{n - answerable} unanswerable), fewer in each type. Every mean carries a 95% bootstrap interval
(1000 resamples of the items).{_e(example)} A difference between two runs narrower than these
intervals is not evidence that anything changed; read the item-by-item changes instead.</li>
<li><b>Answer recall is string matching.</b> A fact counts as found when one of its aliases occurs
as whole words in the normalised answer. A correct answer in other words ("a quarter of a century"
for "25 years") is counted wrong; an answer that mentions the alias while saying something false
about it is counted right. An abstention finds no facts.</li>
<li><b>Sentence support is lexical, not entailment.</b> A sentence counts as supported when at
least {SUPPORT_THRESHOLD:.0%} of its content words occur in the paragraphs it cites and every
number, date and capitalised name in it does. So a faithful paraphrase is counted unsupported; a
sentence that reuses the cited words in a false combination ("Mexico broke off relations with
Peru") or drops a negation ("not" is a stopword) is counted supported; names are matched as
words, not disambiguated ("Castillo" the president and "Castillo" anyone else are the same);
number words and digits do not match each other; the stopword list is English only;
abbreviations can split sentences in the wrong place.</li>
<li><b>Citation and retrieval relevance come from quotes.</b> A paragraph supports an item when it
contains a gold evidence quote or overlaps its span in the source file. A paragraph that supports
the answer with a quote the gold author did not list counts as not supporting.</li>
<li><b>Retrieval metrics</b> use a separate top-10 retrieve for the same question and history, so
recall@10 means the top 10 even when the answer read fewer paragraphs.</li>
<li><b>Latency</b> is wall time around one call per item in this process, including waiting for
the model when several workers share it.</li>
</ul>"""


# --- failed items ------------------------------------------------------------------------------


def _history_html(history: Sequence[Mapping[str, Any]]) -> str:
    if not history:
        return ""
    turns = "".join(f"<li><b>{_e(t.get('role'))}:</b> {_e(t.get('content'))}</li>" for t in history)
    return f"<div class='small'><b>History</b><ol class='tight'>{turns}</ol></div>"


def _citations_html(citations: Sequence[Mapping[str, Any]]) -> str:
    if not citations:
        return "<p class='muted small'>No citations.</p>"
    rows = []
    for c in citations:
        gold = (
            "<span class='ok'>supports gold</span>"
            if c.get("supports_gold")
            else "<span class='no'>not gold evidence</span>"
        )
        offered = "" if c.get("supports", True) else " <span class='muted'>(related only)</span>"
        rows.append(
            f"<tr><td class='num'>[{_e(c.get('n'))}]</td><td>{_e(c.get('source'))} "
            f"¶{_e(c.get('paragraph'))}<br>{gold}{offered}</td>"
            f"<td class='small'>{_e(c.get('text'))}</td></tr>"
        )
    return (
        "<table class='small'><thead><tr><th>n</th><th>source</th><th>paragraph text</th></tr>"
        f"</thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _sentences_html(sentences: Sequence[Mapping[str, Any]]) -> str:
    if not sentences:
        return ""
    rows = []
    for s in sentences:
        mark = "<span class='ok'>✓</span>" if s.get("supported") else "<span class='no'>✗</span>"
        missing = ", ".join(s.get("missing") or [])
        detail = f"coverage {_num(s.get('coverage'), 2)}" + (
            f"; missing {_e(missing)}" if missing else ""
        )
        rows.append(
            f"<li>{mark} {_e(s.get('sentence'))} <span class='muted'>({detail})</span></li>"
        )
    return f"<div class='small'><b>Sentence support</b><ul class='tight'>{''.join(rows)}</ul></div>"


def _gold_html(rec: Mapping[str, Any]) -> str:
    answers = rec.get("gold_answers") or []
    found = rec.get("facts_found") or []
    if answers:
        facts = []
        for i, fact in enumerate(answers):
            state = ""
            if i < len(found):
                state = (
                    " <span class='ok'>found</span>"
                    if found[i]
                    else " <span class='no'>missing</span>"
                )
            facts.append(f"<li>{' | '.join(_e(a) for a in fact)}{state}</li>")
        answers_html = f"<ol class='tight'>{''.join(facts)}</ol>"
    else:
        answers_html = "<p>Unanswerable: the right behaviour is to abstain.</p>"
    quotes = "".join(
        f"<blockquote class='small'><b>{_e(ev.get('source'))}</b><br>"
        f"{_e(ev.get('quote'))}</blockquote>"
        for ev in rec.get("gold_evidence") or []
    )
    return f"<b>Gold answers</b>{answers_html}<b>Gold evidence</b>{quotes or '<p>—</p>'}"


def _evidence_rank(rec: Mapping[str, Any]) -> str:
    if not rec.get("gold_evidence"):
        return ""
    rank = next((r["rank"] for r in rec.get("retrieved", []) if r.get("relevant")), None)
    text = f"first evidence paragraph at rank {rank}" if rank else "no evidence paragraph in top 10"
    return f"<p class='muted small'>Retrieval: {text}.</p>"


def _item_html(rec: Mapping[str, Any]) -> str:
    tags = "".join(f"<span class='tag'>{_e(f)}</span>" for f in rec.get("failures", []))
    answer = rec.get("answer")
    if rec.get("error"):
        answer_html = f"<p class='no'>Error: {_e(rec['error'])}</p>"
    else:
        abst = " <span class='tag type'>abstained</span>" if rec.get("abstained") else ""
        answer_html = f"<b>Answer</b>{abst}<div class='answer'>{_e(answer)}</div>"
    resolved = rec.get("resolved_question")
    resolved_html = (
        f"<p class='muted small'>Resolved question: {_e(resolved)}</p>"
        if resolved and resolved != rec.get("question")
        else ""
    )
    latency = rec.get("latency")
    return f"""
<div class="item" id="item-{_e(rec.get("id"))}">
<h3>{_e(rec.get("id"))} <span class="tag type">{_e(rec.get("type"))}</span>{tags}</h3>
<p><b>Q:</b> {_e(rec.get("question"))}
<span class="muted small">{"" if latency is None else f"({latency:.2f}s)"}</span></p>
{resolved_html}{_history_html(rec.get("history") or [])}
<div class="cols">
<div>{answer_html}{_sentences_html(rec.get("sentences") or [])}
<b>Citations</b>{_citations_html(rec.get("citations") or [])}</div>
<div>{_gold_html(rec)}{_evidence_rank(rec)}</div>
</div></div>"""


# --- the page ----------------------------------------------------------------------------------


def render_report(
    summary: Mapping[str, Any], results: Sequence[Mapping[str, Any]], meta: Mapping[str, Any]
) -> str:
    """The report page as a string (``write_report`` saves it)."""
    label = meta.get("label") or summary.get("label")
    failed = [r for r in results if r.get("failures")]
    latencies = [float(r["latency"]) for r in results if r.get("latency") is not None]
    plots = [
        (type_bars_svg(summary.get("by_type", {})), "Metrics per item type (0–1)."),
        (latency_svg(latencies), "Latency per item (seconds), count per bin."),
        (recall_curve_svg(summary), "Retrieval recall@k: overall (black) and per type."),
    ]
    curve = summary.get("abstention_curve") or []
    overall = summary.get("overall", {})
    operating = None
    ab = overall.get("abstention_rate", {}).get("value")
    wrong = overall.get("wrong_abstention_rate", {}).get("value")
    if ab is not None and wrong is not None:
        operating = (wrong, ab)
    plots.append(
        (
            abstention_curve_svg(curve, operating),
            "Abstention on unanswerable items against wrong abstention on answerable ones as the "
            "threshold on P(some sentence answers) moves; red: this run.",
        )
    )
    figures = "".join(
        f"<figure>{svg}<figcaption>{_e(caption)}</figcaption></figure>"
        for svg, caption in plots
        if svg
    )
    mode = " · retrieval only" if meta.get("retrieval_only") else ""
    errors = summary.get("errors") or 0
    failed_html = "".join(_item_html(r) for r in failed) or "<p class='ok'>No failed items.</p>"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>eval: {_e(label)}</title><style>{CSS}</style></head>
<body>
<h1>Eval run: {_e(label)}</h1>
<p class="meta">
<b>date</b> {_e(meta.get("created") or summary.get("created"))} ·
<b>model</b> {_e(meta.get("model") or summary.get("model"))} ·
<b>gold</b> {_e(meta.get("gold") or "—")} ·
<b>sources</b> {_e(meta.get("sources") or "—")} ·
<b>items</b> {len(results)} · <b>run time</b> {_num(meta.get("elapsed_seconds"), 1)}s{_e(mode)}
{f' · <span class="no"><b>{errors} errors</b></span>' if errors else ""}</p>
<h2>Summary</h2>{_summary_table(summary.get("overall", {}))}
<h2>By item type</h2>{_type_table(summary.get("by_type", {}))}
<h2>Plots</h2><div class="plots">{figures}</div>
{"<h2>Abstention curve</h2>" + _curve_table(curve) if curve else ""}
<h2>How to read this</h2>{_how_to_read(summary, results)}
<h2>Failed items ({len(failed)})</h2>
<p class="muted">Wrong answers, wrong or missed abstentions, citations of paragraphs that are not
gold evidence, and errors; service on the left, gold on the right.</p>
{failed_html}
</body></html>
"""


def write_report(
    run_dir: Path,
    summary: Mapping[str, Any],
    results: Sequence[Mapping[str, Any]],
    meta: Mapping[str, Any],
) -> Path:
    """Write ``run_dir/report.html`` and return its path."""
    path = Path(run_dir) / "report.html"
    path.write_text(render_report(summary, results, meta), encoding="utf-8")
    return path
