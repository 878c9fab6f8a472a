"""POST /api/ask: one question, one verified answer."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from api.deps import AdmissionDep, JsonBody, PipelineDep, RequireKey, SettingsDep
from api.routes._common import TraceQuery
from api.schemas import ERRORS, AnswerOut, AskRequest, check_question

router = APIRouter(tags=["answers"], dependencies=[RequireKey], responses=ERRORS)


@router.post(
    "/api/ask",
    dependencies=[JsonBody],
    response_model=AnswerOut,
    response_model_exclude_unset=True,  # `trace` appears only when asked for
    summary="Answer one question from the sources, with verified citations",
)
async def ask(
    body: AskRequest,
    pipeline: PipelineDep,
    settings: SettingsDep,
    admission: AdmissionDep,
    trace: TraceQuery = False,
) -> dict[str, Any]:
    question = check_question(body.question, settings.api.max_question_chars)
    with admission.slot():
        answer = await run_in_threadpool(pipeline.ask, question, (), body.top_k)
    return answer.to_dict(trace=body.trace or trace)
