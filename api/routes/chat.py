"""POST /api/chat: a conversation; JSON, or Server-Sent Events: progress, checked text, answer."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.deps import AdmissionDep, JsonBody, PipelineDep, RequireKey, SettingsDep
from api.routes._common import (
    SSE_HEADERS,
    BlockingStream,
    TraceQuery,
    conversation,
    drain,
    dumps,
    open_stream,
)
from api.schemas import ERRORS, AnswerOut, ChatRequest, describe_error
from rag.errors import RagError
from rag.types import StreamEvent

log = logging.getLogger(__name__)

router = APIRouter(tags=["answers"], dependencies=[RequireKey], responses=ERRORS)

SSE_DOC = (
    'With `stream: true`: `event: status` / `data: {"text": "reading 8 passages…"}` while the '
    'sources are read and the answer is written and checked (progress only, never answer '
    'text); `event: token` / `data: {"text": delta}` with answer text the citation check has '
    "kept (the deltas concatenate to the start of the final answer, never to text it drops); "
    "then one `event: final` whose data is the answer object, or "
    '`event: error` / `data: {"error": ...}`.'
)


@router.post(
    "/api/chat",
    dependencies=[JsonBody],
    response_model=AnswerOut,
    response_model_exclude_unset=True,
    summary="Answer the last message of a conversation (optionally streamed as SSE)",
    description="Earlier messages are history for follow-ups. " + SSE_DOC,
    responses={200: {"content": {"text/event-stream": {"example": "event: token\ndata: ..."}}}},
)
async def chat(
    body: ChatRequest,
    pipeline: PipelineDep,
    settings: SettingsDep,
    admission: AdmissionDep,
    trace: TraceQuery = False,
) -> Any:
    question, history = conversation(
        ((m.role, m.content) for m in body.messages), settings.api.max_question_chars
    )
    with_trace = body.trace or trace
    if not body.stream:
        with admission.slot():
            answer = await run_in_threadpool(pipeline.ask, question, history, body.top_k)
        return answer.to_dict(trace=with_trace)

    slot = admission.acquire()
    first, stream = await open_stream(
        lambda: pipeline.ask_stream(question, history, body.top_k), slot
    )
    return StreamingResponse(
        _sse(first, stream, with_trace), media_type="text/event-stream", headers=SSE_HEADERS
    )


def _event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {dumps(data)}\n\n"


async def _sse(
    first: StreamEvent | None, stream: BlockingStream, with_trace: bool
) -> AsyncIterator[str]:
    final = False
    try:
        async for event in drain(first, stream):
            if event.kind in ("status", "token"):
                yield _event(event.kind, {"text": event.text})
            elif event.kind == "final" and event.answer is not None:
                final = True
                yield _event("final", event.answer.to_dict(trace=with_trace))
        if not final:
            yield _event("error", {"error": "the answer stream ended without a final answer"})
    except RagError as exc:  # headers are sent: the status can no longer change, so say it here
        _, body, _ = describe_error(exc)
        yield _event("error", body)
    except Exception:
        log.exception("answer stream failed")
        yield _event("error", {"error": "internal error while answering"})
