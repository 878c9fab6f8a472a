"""Request and response models: the HTTP contract, with its limits written down.

Limits that come from settings (the question length) are checked by ``check_question`` at
request time, because pydantic models are defined once at import; the fixed limits below are
part of the schema so ``/docs`` and fuzzers see them.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from rag.errors import (
    BackendsUnavailable,
    BackendUnavailable,
    Busy,
    IngestError,
    InputError,
    NotFoundError,
    RagError,
    WarmingUp,
)

MAX_TURNS = 200  # chat messages per request, history included
MAX_TURN_CHARS = 8_000  # one history message (answers quote sources, so longer than a question)
MAX_TOP_K = 20
MAX_SOURCE_ID_CHARS = 512


def _clean_text(value: str) -> str:
    """Refuse text no downstream stage can handle, so it fails here as a 422 and not later."""
    if "\x00" in value:
        raise ValueError("must not contain NUL bytes")
    try:
        # JSON can carry lone surrogates (\ud800); they cannot be encoded for the model or store.
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no lone surrogates)") from None
    return value


CleanText = Annotated[str, AfterValidator(_clean_text)]
TurnText = Annotated[str, AfterValidator(_clean_text), Field(max_length=MAX_TURN_CHARS)]


def check_question(text: str, limit: int) -> str:
    """The question as the pipeline gets it: trimmed, non-empty, at most ``limit`` characters."""
    q = text.strip()
    if not q:
        raise InputError("the question is empty or only whitespace")
    if len(q) > limit:
        raise InputError(f"the question has {len(q)} characters; the limit is {limit}")
    return q


# -- requests --------------------------------------------------------------------------------------


class AskRequest(BaseModel):
    """One question, no history."""

    model_config = ConfigDict(
        extra="forbid",  # a misspelt field ("questoin") is an error, not silently ignored
        json_schema_extra={
            "examples": [
                {"question": "What prison sentence are prosecutors seeking for Betssy Chávez?"}
            ]
        },
    )

    question: CleanText = Field(
        description="1 to settings.api.max_question_chars (default 2000) characters after "
        "trimming; whitespace-only and NUL bytes are refused.",
        min_length=1,
    )
    top_k: int | None = Field(
        default=None, ge=1, le=MAX_TOP_K, description="Paragraphs to retrieve (default: settings)."
    )
    trace: bool = Field(
        default=False,
        description="Include the trace: resolved question, retrieved paragraphs, "
        "evidence, draft, check decisions, per-stage timings.",
    )


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant", "system"] = Field(
        description="system messages are accepted and ignored: grounding rules are not negotiable."
    )
    content: TurnText


class ChatRequest(BaseModel):
    """A conversation: the last message is the question, earlier ones are history."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "messages": [
                        {"role": "user", "content": "Who is Betssy Chávez?"},
                        {"role": "assistant", "content": "A former prime minister of Peru [1]."},
                        {
                            "role": "user",
                            "content": "What sentence are prosecutors seeking for her?",
                        },
                    ],
                    "stream": False,
                }
            ]
        },
    )

    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_TURNS)
    stream: bool = Field(
        default=False,
        description="Server-Sent Events: `status` events (progress), `token` events with answer "
        "text the citation check has kept, then one `final` event with the answer, or `error`.",
    )
    top_k: int | None = Field(default=None, ge=1, le=MAX_TOP_K)
    trace: bool = False


class OpenAIContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str
    text: TurnText | None = None


class OpenAIMessage(BaseModel):
    # OpenAI clients send fields we do not use (name, tool_calls...): ignore rather than refuse.
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant"]
    content: TurnText | list[OpenAIContentPart] | None = Field(default=None, max_length=100)

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text or "" for p in self.content if p.type == "text")


class OpenAIChatRequest(BaseModel):
    """The subset of OpenAI's chat completion request that this service honours."""

    model_config = ConfigDict(
        extra="ignore",  # temperature, max_tokens, ...: the pipeline decides these
        json_schema_extra={
            "examples": [
                {
                    "model": "local",
                    "messages": [
                        {
                            "role": "user",
                            "content": "What prison sentence are prosecutors seeking for "
                            "Betssy Chávez?",
                        }
                    ],
                }
            ]
        },
    )

    model: str = Field(default="", max_length=256, description="Ignored: one model is served.")
    messages: list[OpenAIMessage] = Field(min_length=1, max_length=MAX_TURNS)
    stream: bool = False


# -- responses -------------------------------------------------------------------------------------

# Fields the pipeline adds later reach clients without an API change.
_PASS_THROUGH = ConfigDict(extra="allow")


class CitationOut(BaseModel):
    model_config = _PASS_THROUGH

    n: int = Field(description="The marker number as it appears in the answer, [n].")
    source: str = Field(description="Source id (file name); GET /api/sources/{source}.")
    title: str
    paragraph: int = Field(description="Paragraph index within the source, 0-based.")
    start: int = Field(description="Paragraph start offset in the source text.")
    end: int
    text: str = Field(description="The whole cited paragraph.")
    score: float
    paragraph_id: str
    supports: bool = Field(
        default=True, description="False: a related paragraph offered with an abstention."
    )
    quote_start: int | None = Field(
        default=None, description="Absolute offset of the supporting part, for highlighting."
    )
    quote_end: int | None = None


class AnswerOut(BaseModel):
    model_config = _PASS_THROUGH

    question: str
    resolved_question: str = Field(description="The question after follow-up resolution.")
    answer: str = Field(description="Verified answer with [n] citation markers.")
    citations: list[CitationOut]
    abstained: bool = Field(description="True when the sources do not answer the question.")
    timings: dict[str, float] = Field(description="Seconds per stage.")
    trace: dict[str, Any] | None = Field(default=None, description="Only when trace was asked.")


class SourceOut(BaseModel):
    model_config = _PASS_THROUGH

    id: str
    title: str
    paragraphs: int
    hash: str
    chars: int


class SourceList(BaseModel):
    sources: list[SourceOut]


class ParagraphOut(BaseModel):
    model_config = _PASS_THROUGH

    id: str
    source: str
    title: str
    index: int
    start: int
    end: int
    text: str
    hash: str


class SourceDetail(BaseModel):
    source: SourceOut
    paragraphs: list[ParagraphOut]


class IngestOut(BaseModel):
    model_config = _PASS_THROUGH

    added: list[str]
    updated: list[str]
    unchanged: list[str]
    removed: list[str]
    paragraphs: int
    embedded: int
    seconds: float


class RemovedOut(BaseModel):
    removed: str
    paragraphs: int


class ErrorOut(BaseModel):
    error: str = Field(description="What went wrong, in words.")
    backend: str | None = Field(default=None, description="503: which backend is down.")
    address: str | None = Field(default=None, description="503: where it was expected.")
    detail: list[dict[str, Any]] | None = Field(default=None, description="422: field errors.")


class HealthOut(BaseModel):
    status: Literal["ok"]


class ReadyOut(BaseModel):
    status: Literal["ready"]
    components: dict[str, str]


class ModelOut(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "local"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelOut]


# Documented on every route that can produce them, so /docs shows the error shape.
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "Malformed request (bad JSON, bad file name)."},
    401: {"model": ErrorOut, "description": "API key missing or wrong (when one is configured)."},
    415: {"model": ErrorOut, "description": "Body sent with a Content-Type other than JSON."},
    422: {"model": ErrorOut, "description": "Request fails validation; `detail` lists fields."},
    429: {
        "model": ErrorOut,
        "description": "Too many answers waiting; see Retry-After. Send its `X-Turn` header back"
        " with the retry to keep your place in line.",
    },
    503: {"model": ErrorOut, "description": "The model or store backend is unavailable."},
}


def describe_error(exc: RagError) -> tuple[int, dict[str, Any], dict[str, str]]:
    """(status, JSON body, headers) for an error a user can act on; one mapping for HTTP and SSE."""
    body: dict[str, Any] = {"error": str(exc)}
    headers: dict[str, str] = {}
    match exc:
        case Busy():
            headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
            if exc.ticket is not None:
                headers["X-Turn"] = exc.ticket
            return 429, body, headers
        case BackendUnavailable():
            body.update(backend=exc.backend, address=exc.address)
            if isinstance(exc, WarmingUp):  # ready in a moment, unlike a backend that is down
                headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
            if isinstance(exc, BackendsUnavailable):  # readiness with several backends down
                body["down"] = [
                    {"backend": e.backend, "address": e.address, "error": str(e)} for e in exc.down
                ]
            return 503, body, headers
        case NotFoundError():
            return 404, body, headers
        case IngestError():
            # Name problems are caught before the pipeline (400/415); what is left is content.
            body.update(file=exc.path, reason=exc.reason)
            return 422, body, headers
        case InputError():
            return 422, body, headers
        case _:
            return 400, body, headers
