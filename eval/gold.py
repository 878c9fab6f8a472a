"""Gold Q&A items: the JSON Lines gold format, and SQuAD v2.0 converted into it.

The format is described in the project's gold-format notes: one JSON object a line with ``id``,
``type``, ``question``, ``answers`` (facts, each a list of aliases), ``evidence`` (source file +
exact quote) and optional ``history``. Any file in that format must load unchanged, so optional
fields get defaults and unknown keys are ignored; what is wrong is reported with its line number.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rag.types import Turn


class GoldError(ValueError):
    """A gold or SQuAD file the harness cannot read. The message names the file and line."""


@dataclass(frozen=True)
class Evidence:
    """Where a gold answer is supported: a source file name and an exact quote from it."""

    source: str
    quote: str


@dataclass
class GoldItem:
    id: str
    type: str
    question: str
    answers: list[list[str]]  # facts; each fact is a list of acceptable aliases
    evidence: list[Evidence] = field(default_factory=list)
    history: list[Turn] = field(default_factory=list)

    @property
    def answerable(self) -> bool:
        return bool(self.answers)

    def aliases(self) -> list[str]:
        """Every alias of every fact, for the SQuAD-style best-alias scores."""
        return [alias for fact in self.answers for alias in fact]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- gold JSON Lines ---------------------------------------------------------------------------


def _fail(where: str, message: str) -> GoldError:
    return GoldError(f"{where}: {message}")


def _string(obj: dict[str, Any], key: str, where: str, label: str = "") -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value.strip():
        raise _fail(where, f"'{label or key}' must be a non-empty string, got {value!r}")
    return value


def _answers(value: Any, where: str) -> list[list[str]]:
    if not isinstance(value, list):
        raise _fail(where, f"'answers' must be a list of facts (lists of aliases), got {value!r}")
    facts: list[list[str]] = []
    for i, fact in enumerate(value):
        # A bare string is read as a fact with a single alias: a common hand-written shortcut.
        aliases = [fact] if isinstance(fact, str) else fact
        if (
            not isinstance(aliases, list)
            or not aliases
            or not all(isinstance(a, str) and a.strip() for a in aliases)
        ):
            raise _fail(where, f"answers[{i}] must be a non-empty list of non-empty strings")
        facts.append(list(aliases))
    return facts


def _evidence(value: Any, where: str) -> list[Evidence]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _fail(where, f"'evidence' must be a list of {{source, quote}}, got {value!r}")
    out: list[Evidence] = []
    for i, ev in enumerate(value):
        if not isinstance(ev, dict):
            raise _fail(where, f"evidence[{i}] must be an object with 'source' and 'quote'")
        out.append(
            Evidence(
                source=_string(ev, "source", where, f"evidence[{i}].source"),
                quote=_string(ev, "quote", where, f"evidence[{i}].quote"),
            )
        )
    return out


def _history(value: Any, where: str) -> list[Turn]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _fail(where, f"'history' must be a list of {{role, content}}, got {value!r}")
    turns: list[Turn] = []
    for i, turn in enumerate(value):
        if not isinstance(turn, dict) or turn.get("role") not in ("user", "assistant"):
            raise _fail(where, f"history[{i}] must have role 'user' or 'assistant'")
        content = turn.get("content")
        if not isinstance(content, str):
            raise _fail(where, f"history[{i}].content must be a string")
        turns.append(Turn(role=turn["role"], content=content))
    return turns


def parse_item(obj: Any, where: str) -> GoldItem:
    """One gold object -> ``GoldItem``; ``where`` prefixes every error (e.g. ``"gold.jsonl:7"``)."""
    if not isinstance(obj, dict):
        raise _fail(where, f"expected a JSON object, got {type(obj).__name__}")
    item_id = obj.get("id")
    if isinstance(item_id, int) and not isinstance(item_id, bool):
        item_id = str(item_id)
    if not isinstance(item_id, str) or not item_id.strip():
        raise _fail(where, f"'id' must be a non-empty string, got {item_id!r}")
    if "answers" not in obj:
        raise _fail(where, "missing 'answers' (use [] for a question the sources do not answer)")
    answers = _answers(obj["answers"], where)
    item_type = obj.get("type")
    if item_type is None:
        item_type = "untyped"
    elif not isinstance(item_type, str) or not item_type.strip():
        raise _fail(where, f"'type' must be a non-empty string, got {item_type!r}")
    return GoldItem(
        id=item_id,
        type=item_type,
        question=_string(obj, "question", where),
        answers=answers,
        evidence=_evidence(obj.get("evidence"), where),
        history=_history(obj.get("history"), where),
    )


def load_gold(path: Path | str) -> list[GoldItem]:
    """Read a gold JSON Lines file. Blank lines and lines starting with ``//`` or ``#`` are skipped.

    Raises ``GoldError`` naming the file and line for a missing file, invalid JSON, a field of the
    wrong shape or a duplicate id, and for a file with no items.
    """
    path = Path(path)
    if not path.is_file():
        raise GoldError(f"{path}: no such gold file")
    items: list[GoldItem] = []
    first_line: dict[str, int] = {}
    text = path.read_text(encoding="utf-8-sig")
    for lineno, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith(("//", "#")):
            continue
        where = f"{path}:{lineno}"
        try:
            obj = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise _fail(where, f"invalid JSON ({exc.msg} at column {exc.colno})") from None
        item = parse_item(obj, where)
        if item.id in first_line:
            raise _fail(where, f"duplicate id {item.id!r} (first on line {first_line[item.id]})")
        first_line[item.id] = lineno
        items.append(item)
    if not items:
        raise GoldError(f"{path}: no gold items")
    return items


def dump_gold(items: list[GoldItem], path: Path) -> None:
    """Write items in the gold JSON Lines format (e.g. a SQuAD subset, to reuse as a gold file)."""
    with path.open("w", encoding="utf-8") as fh:
        for item in items:
            fh.write(json.dumps(item.to_dict(), ensure_ascii=False) + "\n")


# --- SQuAD v2.0 --------------------------------------------------------------------------------


def _slug(title: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", title).strip("-").lower()
    return slug[:60] or "article"


def _clean_context(context: str) -> str:
    # A blank line inside a context would split it into two paragraphs on ingest; one paragraph
    # per context keeps "the answer's paragraph" a single stored paragraph.
    return re.sub(r"\s*\n\s*", " ", context).strip()


def _write_if_changed(path: Path, text: str) -> None:
    # Unchanged bytes keep the file's mtime, so a repeated eval re-ingests nothing.
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return
    path.write_text(text, encoding="utf-8")


def _squad_item(qa: dict[str, Any], source: str, context: str, where: str) -> GoldItem:
    question = qa.get("question")
    if not isinstance(question, str) or not question.strip():
        raise _fail(where, "question without text")
    qid = str(qa.get("id") or "")
    if not qid:
        raise _fail(where, "question without id")
    if qa.get("is_impossible"):
        return GoldItem(id=qid, type="unanswerable", question=question.strip(), answers=[])
    texts = [a.get("text", "").strip() for a in qa.get("answers") or [] if isinstance(a, dict)]
    aliases = list(dict.fromkeys(t for t in texts if t))
    if not aliases:
        raise _fail(where, f"question {qid} is answerable but has no answer text")
    return GoldItem(
        id=qid,
        type="factoid",
        question=question.strip(),
        answers=[aliases],
        # The whole context as quote: any stored paragraph overlapping it counts as evidence,
        # however the pipeline chunks the file.
        evidence=[Evidence(source=source, quote=context)],
    )


def load_squad(
    path: Path | str,
    limit: int | None = None,
    articles: int | None = None,
    *,
    out_dir: Path,
    question_articles: set[int] | None = None,
    haystack_articles: set[int] | None = None,
) -> tuple[list[GoldItem], Path]:
    """Convert a SQuAD v2.0 JSON file into gold items and a folder of source files.

    Each article becomes ``out_dir/<nn>_<slug>.txt`` (title line, blank line, its context
    paragraphs separated by blank lines) and each question a ``GoldItem``: answerable ones are
    type ``factoid`` with one fact whose aliases are the distinct ``answers[].text`` and the whole
    context paragraph as evidence quote; ``is_impossible`` ones are type ``unanswerable`` with no
    answers and no evidence. ``articles`` keeps the first N articles; ``limit`` keeps the first N
    questions, and only the articles those questions come from are written (all of each such
    article's paragraphs, so the others act as distractors). ``question_articles`` (1-based
    article numbers) asks only those articles' questions while every chosen article is still
    written: measuring on articles a fit never saw, with the others as haystack. ``.txt`` files
    in ``out_dir`` from an earlier, larger conversion are removed, so ``out_dir`` must be a
    folder the caller owns. ``haystack_articles`` writes only those articles: the questions of
    the others are asked of sources that never cover them, as type ``not_in_sources`` with no
    answers (unanswerable there).
    Returns ``(items, out_dir)``.
    """
    path = Path(path)
    if not path.is_file():
        raise GoldError(f"{path}: no such SQuAD file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise GoldError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from None
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise GoldError(f"{path}: not SQuAD JSON (expected an object with a 'data' list)")
    out_dir.mkdir(parents=True, exist_ok=True)
    items: list[GoldItem] = []
    written: set[str] = set()
    chosen = data["data"] if articles is None else data["data"][:articles]
    width = max(2, len(str(len(chosen))))
    for a_index, article in enumerate(chosen):
        asked = question_articles is None or a_index + 1 in question_articles
        indexed = haystack_articles is None or a_index + 1 in haystack_articles
        if limit is not None and len(items) >= limit and question_articles is None:
            break
        title = str(article.get("title") or f"article {a_index + 1}").replace("_", " ")
        source = f"{a_index + 1:0{width}d}_{_slug(title)}.txt"
        contexts: list[str] = []
        for p_index, para in enumerate(article.get("paragraphs") or []):
            context = _clean_context(str(para.get("context") or ""))
            if not context:
                continue
            contexts.append(context)
            for qa in para.get("qas") or [] if asked else []:
                if limit is not None and len(items) >= limit:
                    break
                where = f"{path}: data[{a_index}].paragraphs[{p_index}]"
                item = _squad_item(qa, source, context, where)
                if not indexed:
                    item = GoldItem(id=item.id, type="not_in_sources", question=item.question,
                                    answers=[])
                items.append(item)
        if indexed:
            _write_if_changed(out_dir / source, f"{title}\n\n" + "\n\n".join(contexts) + "\n")
            written.add(source)
    for stale in out_dir.glob("*.txt"):
        if stale.name not in written:
            stale.unlink()
    if not items:
        raise GoldError(f"{path}: no questions selected")
    return items, out_dir
