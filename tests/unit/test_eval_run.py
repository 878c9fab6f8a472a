"""The eval runner on a stand-in pipeline: run folders, summary numbers, gates, comparisons, report.

``FakePipeline`` is a hand-written stand-in for pure-logic tests of the runner: it ranks two
paragraphs by word overlap and answers from a script. The real pipeline is exercised by the
integration tests.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import pytest
import typer

from eval.gold import Evidence, GoldItem
from eval.run import RunResult, check_gates, compare_runs, run_eval
from rag.types import Answer, Citation, Paragraph, Retrieved, Trace, Turn

SOURCE = "news.txt"
FILE = (
    "Peru news\n\n"
    "Foreign Minister Hugo de Zela announced the break at a press conference in Lima.\n\n"
    "Prosecutors are seeking a prison sentence of up to twenty-five years for her."
)


def _paragraphs() -> list[Paragraph]:
    out = []
    for index, text in enumerate(FILE.split("\n\n")[1:]):
        start = FILE.index(text)
        out.append(
            Paragraph(
                id=f"p{index}",
                source=SOURCE,
                title="Peru news",
                index=index,
                start=start,
                end=start + len(text),
                text=text,
                hash=str(index),
            )
        )
    return out


PARAGRAPHS = _paragraphs()
SOURCE_TEXTS = {SOURCE: FILE}


class FakePipeline:
    """Ranks paragraphs by shared words; answers each question from ``script``.

    ``script[question] = (answer text, cited paragraph indexes in marker order, abstained)``.
    """

    model_name = "fake-model"

    def __init__(self, script: dict[str, tuple[str, list[int], bool]]) -> None:
        self.script = script
        self.histories: list[list[Turn]] = []

    def retrieve(
        self, question: str, history: Sequence[Turn] = (), top_k: int | None = None
    ) -> tuple[str, list[Retrieved]]:
        words = set(re.findall(r"\w+", question.lower()))
        scored = sorted(
            PARAGRAPHS,
            key=lambda p: -len(words & set(re.findall(r"\w+", p.text.lower()))),
        )
        ranked = [Retrieved(paragraph=p, score=1 / (i + 1)) for i, p in enumerate(scored)]
        return question, ranked[: top_k or 5]

    def ask(self, question: str, history: Sequence[Turn] = (), top_k: int | None = None) -> Answer:
        self.histories.append(list(history))
        text, cited, abstained = self.script[question]
        if text == "RAISE":
            raise RuntimeError("model crashed")
        citations = [
            Citation(
                n=n,
                source=SOURCE,
                title="Peru news",
                paragraph=PARAGRAPHS[i].index,
                start=PARAGRAPHS[i].start,
                end=PARAGRAPHS[i].end,
                text=PARAGRAPHS[i].text,
                score=0.5,
                paragraph_id=PARAGRAPHS[i].id,
                supports=not abstained,
            )
            for n, i in enumerate(cited, start=1)
        ]
        _, retrieved = self.retrieve(question, history, top_k)
        trace = Trace(
            resolved_question=question,
            retrieved=[r.to_dict() for r in retrieved],
            timings={"generate": 0.01},
        )
        return Answer(question, question, text, citations, abstained, trace)


Q_WHO = "Who announced the break with Mexico?"
Q_YEARS = "How many years are prosecutors seeking?"
Q_NONE = "Who won the 2030 World Cup?"

ITEMS = [
    GoldItem(
        id="who",
        type="factoid",
        question=Q_WHO,
        answers=[["Hugo de Zela", "de Zela"]],
        evidence=[Evidence(SOURCE, "Hugo de Zela announced the break")],
    ),
    GoldItem(
        id="years",
        type="followup",
        question=Q_YEARS,
        answers=[["twenty-five", "25"]],
        evidence=[Evidence(SOURCE, "up to twenty-five years")],
        history=[Turn("user", "Who is Betssy Chávez?"), Turn("assistant", "A former premier.")],
    ),
    GoldItem(id="none", type="unanswerable", question=Q_NONE, answers=[]),
]

GOOD_SCRIPT = {
    Q_WHO: ("Foreign Minister Hugo de Zela announced the break [1].", [0], False),
    Q_YEARS: ("Prosecutors are seeking up to twenty-five years [1].", [1], False),
    Q_NONE: ("The sources do not say.", [], True),
}


def _run(tmp_path: Path, script: dict[str, tuple[str, list[int], bool]], **kw: object) -> RunResult:
    kw.setdefault("label", "test")
    return run_eval(
        FakePipeline(script),
        ITEMS,
        out_root=tmp_path / "runs",
        source_texts=SOURCE_TEXTS,
        progress=False,
        n_boot=200,
        **kw,  # type: ignore[arg-type]
    )


def test_a_run_writes_a_folder_with_config_results_summary_and_report(tmp_path: Path) -> None:
    result = _run(tmp_path, GOOD_SCRIPT, label="good run", config={"gold": "g.jsonl"})
    run_dir = result.run_dir
    assert run_dir.parent == tmp_path / "runs"
    assert re.fullmatch(r"\d{8}-\d{6}-good-run", run_dir.name)
    assert {p.name for p in run_dir.iterdir()} == {
        "config.json",
        "results.jsonl",
        "summary.json",
        "report.html",
    }
    config = json.loads((run_dir / "config.json").read_text())
    assert config["gold"] == "g.jsonl" and config["model"] == "fake-model"

    lines = (run_dir / "results.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["id"] for r in records] == ["who", "years", "none"]
    who = records[0]
    assert who["correct"] and who["citations"][0]["supports_gold"]
    assert who["retrieved"][0] == {**who["retrieved"][0], "rank": 1, "id": "p0", "relevant": True}
    assert who["latency"] >= 0 and who["metrics"]["recall@1"] == 1.0
    assert records[1]["history"][0] == {"role": "user", "content": "Who is Betssy Chávez?"}
    assert records[2]["abstained"] is True and records[2]["failures"] == []


def test_the_summary_holds_overall_and_per_type_metrics_with_cis(tmp_path: Path) -> None:
    summary = _run(tmp_path, GOOD_SCRIPT).summary
    overall = summary["overall"]
    assert overall["n"]["value"] == 3
    assert overall["answer_recall"] == {"value": 1.0, "ci": [1.0, 1.0], "n": 2}
    assert overall["abstention_rate"]["value"] == 1.0 and overall["abstention_rate"]["n"] == 1
    assert overall["wrong_abstention_rate"]["value"] == 0.0
    assert overall["citation_precision"]["value"] == 1.0
    assert overall["citation_recall"]["value"] == 1.0
    assert overall["sentence_support_rate"]["value"] == 1.0
    assert overall["item_accuracy"]["value"] == 1.0
    assert overall["words_median"]["value"] == 7.5  # answers of 7 and 8 words
    assert overall["latency_p95"]["ci"] is None  # percentiles carry no CI
    assert set(summary["by_type"]) == {"factoid", "followup", "unanswerable"}
    assert summary["by_type"]["unanswerable"]["answer_recall"]["value"] is None


def test_followups_are_asked_with_their_history(tmp_path: Path) -> None:
    pipeline = FakePipeline(GOOD_SCRIPT)
    run_eval(
        pipeline, ITEMS, label="h", out_root=tmp_path, source_texts=SOURCE_TEXTS, progress=False
    )
    assert pipeline.histories[1] == ITEMS[1].history


def test_wrong_answers_abstentions_and_citations_are_scored_and_listed(tmp_path: Path) -> None:
    bad = {
        Q_WHO: ("Dina Boluarte announced it [1].", [1], False),  # wrong, cites the wrong ¶
        Q_YEARS: ("I could not find that.", [], True),  # wrong abstention
        Q_NONE: ("France won [1].", [0], False),  # missed abstention
    }
    result = _run(tmp_path, bad)
    failures = {r["id"]: r["failures"] for r in result.results}
    assert failures == {
        "who": ["wrong answer", "unsupported citation"],
        "years": ["wrong abstention"],
        "none": ["missed abstention"],
    }
    overall = result.summary["overall"]
    assert overall["answer_recall"]["value"] == 0.0
    assert overall["abstention_rate"]["value"] == 0.0
    assert overall["wrong_abstention_rate"]["value"] == 0.5
    assert overall["citation_precision"] == {"value": 0.0, "ci": [0.0, 0.0], "n": 1}
    assert overall["citation_recall"]["value"] == 0.0


def test_an_item_that_raises_is_recorded_and_the_run_goes_on(tmp_path: Path) -> None:
    result = _run(tmp_path, {**GOOD_SCRIPT, Q_WHO: ("RAISE", [], False)})
    who = result.results[0]
    assert who["error"] == "RuntimeError: model crashed" and who["failures"] == ["error"]
    assert result.summary["errors"] == 1
    assert result.summary["overall"]["answer_recall"]["n"] == 1  # errors are left out of means


def test_workers_keep_results_in_gold_order(tmp_path: Path) -> None:
    result = _run(tmp_path, GOOD_SCRIPT, workers=3)
    assert [r["id"] for r in result.results] == ["who", "years", "none"]


def test_retrieval_only_computes_retrieval_metrics_and_nothing_else(tmp_path: Path) -> None:
    result = _run(tmp_path, {}, retrieval_only=True)
    overall = result.summary["overall"]
    assert overall["recall@1"]["value"] == 1.0 and overall["recall@1"]["n"] == 2
    assert overall["mrr@10"]["value"] == 1.0
    assert overall["answer_recall"]["value"] is None
    assert result.results[0]["answer"] is None


# --- gates -------------------------------------------------------------------------------------


def test_gates_pass_and_fail_on_lower_and_upper_bounds(tmp_path: Path) -> None:
    summary = _run(tmp_path, GOOD_SCRIPT).summary
    assert check_gates(summary, {"answer_recall": 0.9, "factoid.citation_recall": 1.0}) == []
    assert check_gates(summary, maxs={"wrong_abstention_rate": 0.0}) == []
    failures = check_gates(
        summary,
        mins={"recall@1": 1.01},
        maxs={"factoid.words_median": 5, "words_median_followup": 100},
    )
    assert failures == [
        "recall@1 = 1.000, needs >= 1.01 (n=2)",
        "factoid.words_median = 8.000, needs <= 5 (n=1)",
    ]


def test_a_gate_that_cannot_be_checked_fails(tmp_path: Path) -> None:
    summary = _run(tmp_path, {}, retrieval_only=True).summary
    failures = check_gates(
        summary, {"answer_recall": 0.5, "bogus": 1, "multilingual.answer_recall": 0.5}
    )
    assert failures[0] == "answer_recall: no value, nothing to measure (gate >= 0.5)"
    assert failures[1].startswith("bogus: unknown metric 'bogus'")
    assert (
        failures[2] == "multilingual.answer_recall: no items of type 'multilingual' (gate >= 0.5)"
    )


# --- comparing ---------------------------------------------------------------------------------


def test_compare_lists_fixed_and_broken_items(tmp_path: Path) -> None:
    before = {
        **GOOD_SCRIPT,
        Q_WHO: ("It was announced in Lima [1].", [0], False),  # wrong
    }
    after = {
        **GOOD_SCRIPT,
        Q_YEARS: ("Prosecutors want a long sentence [2].", [0], False),  # wrong now
    }
    run_a = _run(tmp_path, before, label="a").run_dir
    run_b = _run(tmp_path, after, label="b").run_dir
    text = compare_runs(run_a, run_b)
    assert "items: 1 fixed, 1 broke" in text
    assert re.search(r"^who +FIXED  wrong -> correct", text, re.M)
    assert re.search(r"^years +BROKE  correct -> wrong", text, re.M)
    assert re.search(r"^answer_recall +0\.500 +0\.500 +\+0\.000", text, re.M)


# --- report ------------------------------------------------------------------------------------


def test_the_report_escapes_answers_and_lists_failed_items(tmp_path: Path) -> None:
    script = {**GOOD_SCRIPT, Q_WHO: ("<script>alert('x')</script> [1]", [0], False)}
    result = _run(tmp_path, script)
    html = result.report_path.read_text(encoding="utf-8")
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    assert "Failed items (1)" in html and 'id="item-who"' in html
    assert "<svg" in html and "How to read this" in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")


@pytest.mark.parametrize("bad", ["answer_recall", "=0.5", "answer_recall=high"])
def test_a_malformed_gate_is_a_bad_parameter(bad: str) -> None:
    from eval.cli import parse_bounds

    with pytest.raises(typer.BadParameter, match="METRIC=VALUE"):
        parse_bounds([bad], "--min")


# --- the command, on the real pipeline (hash embedder, retrieval only: no model load) ----------

ROOT = Path(__file__).resolve().parents[2]


def _cli() -> typer.Typer:
    from eval.cli import eval_cmd

    app = typer.Typer()
    app.command("eval")(eval_cmd)
    app.command("noop")(lambda: None)  # two commands, so "eval" is addressed by name
    return app


def test_the_command_indexes_the_sources_apart_and_gates_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RAG_EMBED__BACKEND", "hash")
    gold = tmp_path / "gold.jsonl"
    gold.write_text(
        json.dumps(
            {
                "id": "q1",
                "type": "factoid",
                "question": "Who told reporters that Peru had decided to break relations?",
                "answers": [["Hugo de Zela"]],
                "evidence": [
                    {
                        "source": "000_bab5d49e54810767.txt",
                        "quote": "Foreign Minister Hugo de Zela told reporters",
                    }
                ],
            }
        )
        + "\n",
        encoding="utf-8",
    )
    args = ["eval", "--gold", str(gold), "--sources", str(ROOT / "seeds"), "--retrieval-only"]
    args += ["--out", str(tmp_path / "runs"), "--json", "--min", "recall@10=1"]
    result = CliRunner().invoke(_cli(), args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["overall"]["recall@10"]["value"] == 1.0
    assert Path(summary["report"]).is_file()
    # The eval index lives under <data_dir>/eval-index/, never in the user's main index.
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["eval-index"]

    failed = CliRunner().invoke(_cli(), [*args, "--min", "answer_recall=0.5"])
    assert failed.exit_code == 1
    assert "answer_recall: no value" in failed.stderr


def test_a_missing_gold_file_is_one_line_and_exit_code_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(_cli(), ["eval", "--gold", str(tmp_path / "none.jsonl")])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {tmp_path / 'none.jsonl'}: no such gold file"
    assert "Traceback" not in result.output
