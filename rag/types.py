"""Plain data passed between the stages: files -> Paragraph -> Retrieved -> Evidence -> Answer."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal


@dataclass(frozen=True)
class Paragraph:
    """One paragraph of a source file, as stored. ``text == file_text[start:end]`` always."""

    id: str  # stable: derived from source + content hash, survives re-ingest
    source: str  # file name relative to the sources folder (posix), also the source id
    title: str
    index: int  # position among the source's kept paragraphs, 0-based
    start: int  # character offsets into the decoded file text
    end: int
    text: str
    hash: str  # sha256 of text

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Source:
    """One ingested file."""

    id: str  # == Paragraph.source
    title: str
    paragraphs: int
    hash: str  # sha256 of the raw file bytes
    chars: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Retrieved:
    """A paragraph found for a question, with the fused score and each retriever's rank."""

    paragraph: Paragraph
    score: float  # reciprocal-rank fusion score
    dense_rank: int | None = None
    lexical_rank: int | None = None
    dense_score: float | None = None
    lexical_score: float | None = None

    def to_dict(self) -> dict[str, Any]:
        d = self.paragraph.to_dict()
        d.update(
            score=self.score,
            dense_rank=self.dense_rank,
            lexical_rank=self.lexical_rank,
            dense_score=self.dense_score,
            lexical_score=self.lexical_score,
        )
        return d


@dataclass
class Sentence:
    """A sentence of a retrieved paragraph chosen as evidence. Offsets are absolute in the file."""

    text: str
    paragraph: Paragraph
    start: int
    end: int
    score: float = 0.0  # relevance to the question


@dataclass
class Evidence:
    """What the model reads: numbered sentences, each pointing back to its paragraph."""

    question: str
    answer_type: str  # person, date, number, place, organisation, reason, other
    sentences: list[Sentence]
    retrieved: list[Retrieved]
    answerable: bool
    reason: str = ""
    missing: list[str] = field(default_factory=list)  # parts of the question left unanswered
    confidence: float | None = None  # the selector's P(some sentence answers), when it has one


@dataclass
class Citation:
    n: int  # the marker number as it appears in the answer text, [n]
    source: str
    title: str
    paragraph: int  # paragraph index within the source
    start: int
    end: int
    text: str  # the whole paragraph
    score: float
    paragraph_id: str
    supports: bool = True  # False: offered as closest related paragraph on abstention
    quote_start: int | None = None  # absolute offsets of the supporting part, for highlighting
    quote_end: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CheckDecision:
    """What the citation check did to one sentence of the draft, and why."""

    sentence: str
    action: Literal["kept", "replaced", "dropped", "abstained", "added"]
    reason: str
    replacement: str | None = None


@dataclass
class Trace:
    resolved_question: str
    retrieved: list[dict[str, Any]] = field(default_factory=list)
    evidence: list[dict[str, Any]] = field(default_factory=list)
    draft: str = ""
    confidence: float | None = None  # P(some sentence answers); abstains below a threshold
    checks: list[CheckDecision] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Answer:
    question: str
    resolved_question: str
    answer: str
    citations: list[Citation]
    abstained: bool
    trace: Trace

    @property
    def timings(self) -> dict[str, float]:
        return self.trace.timings

    def to_dict(self, trace: bool = True) -> dict[str, Any]:
        d: dict[str, Any] = {
            "question": self.question,
            "resolved_question": self.resolved_question,
            "answer": self.answer,
            "citations": [c.to_dict() for c in self.citations],
            "abstained": self.abstained,
            "timings": dict(self.trace.timings),
        }
        if trace:
            d["trace"] = self.trace.to_dict()
        return d


@dataclass(frozen=True)
class ResolvedQuestion:
    """A question ready for retrieval and evidence selection: its own words with pronouns
    resolved, and the topic words the conversation adds ("Who announced it?" after a question
    about Peru breaking off relations: context "Peru break off relations Mexico").
    """

    text: str
    context: str = ""

    @property
    def query(self) -> str:
        """What retrieval searches for: the question and its context together."""
        return f"{self.text} {self.context}".strip()

    def __str__(self) -> str:
        return f"{self.text.rstrip(' ?')} ({self.context})?" if self.context else self.text


@dataclass(frozen=True)
class Turn:
    role: Literal["user", "assistant"]
    content: str


@dataclass(frozen=True)
class SkippedFile:
    """A file an ingest did not read, and why (empty, not UTF-8, NUL bytes, a link out...)."""

    file: str
    reason: str


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)  # left as stored, if they were
    paragraphs: int = 0  # paragraphs in the files looked at
    embedded: int = 0  # paragraphs that needed a new embedding
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class StreamEvent:
    """Streaming: ``status`` events say what is being done (no answer text); ``token`` events
    carry answer text the citation check has kept, in order (together a prefix of the final
    answer); one ``final`` event carries the Answer."""

    kind: Literal["status", "token", "final"]
    text: str = ""
    answer: Answer | None = None
