"""OpenAI-compatible chat completions and model list, with citations kept.

Streaming sends the *verified* answer, split into chunks, after the pipeline has finished: a plain
OpenAI client concatenates deltas and cannot replace a draft, so streaming the unverified draft
would show it text the citation check may have removed. Citations ride on the last chunk as an
extra field, which plain clients ignore.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.deps import AdmissionDep, JsonBody, PipelineDep, RequireKey, SettingsDep
from api.routes._common import SSE_HEADERS, conversation, dumps
from api.schemas import ERRORS, ModelList, OpenAIChatRequest
from rag.types import Answer

router = APIRouter(tags=["openai-compatible"], dependencies=[RequireKey], responses=ERRORS)

_PIECES = re.compile(r"\s*\S+|\s+")  # words with their leading space: deltas rejoin exactly


@router.post(
    "/v1/chat/completions",
    dependencies=[JsonBody],
    summary="OpenAI-compatible chat completion (citations in an extra `citations` field)",
    description="Content carries inline [n] markers. Streaming yields `chat.completion.chunk` "
    "objects; the last has finish_reason `stop` and `citations`, then `data: [DONE]`.",
)
async def chat_completions(
    body: OpenAIChatRequest,
    pipeline: PipelineDep,
    settings: SettingsDep,
    admission: AdmissionDep,
) -> Any:
    question, history = conversation(
        ((m.role, m.text()) for m in body.messages), settings.api.max_question_chars
    )
    with admission.slot():
        answer = await run_in_threadpool(pipeline.ask, question, history)
    ident, created, model = f"chatcmpl-{uuid.uuid4().hex}", int(time.time()), pipeline.model_name
    if body.stream:
        return StreamingResponse(
            _chunks(answer, ident, created, model),
            media_type="text/event-stream",
            headers=SSE_HEADERS,
        )
    return {
        "id": ident,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer.answer},
                "finish_reason": "stop",
            }
        ],
        "citations": [c.to_dict() for c in answer.citations],
        "abstained": answer.abstained,
    }


def _chunks(answer: Answer, ident: str, created: int, model: str) -> Iterator[str]:
    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        data = {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return f"data: {dumps(data)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    for piece in _PIECES.findall(answer.answer):
        yield chunk({"content": piece})
    yield chunk(
        {},
        "stop",
        citations=[c.to_dict() for c in answer.citations],
        abstained=answer.abstained,
    )
    yield "data: [DONE]\n\n"


@router.get(
    "/v1/models", response_model=ModelList, summary="The one model this service answers with"
)
async def models(pipeline: PipelineDep) -> dict[str, Any]:
    return {"object": "list", "data": [{"id": pipeline.model_name, "object": "model"}]}
