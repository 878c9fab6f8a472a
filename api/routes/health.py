"""Liveness (process up, no key, no backend calls) and readiness (store, embedder and model
reachable; a 503 names the backend that is not)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from api.deps import PipelineDep, RequireKey
from api.schemas import ERRORS, HealthOut, ReadyOut

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthOut, summary="The process is up (always 200, no key)")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=ReadyOut,
    summary="Store, embedder and model reachable; 503 names the backend otherwise",
    dependencies=[RequireKey],
    responses=ERRORS,
)
async def readyz(pipeline: PipelineDep) -> dict[str, Any]:
    components = await run_in_threadpool(pipeline.readiness)
    return {"status": "ready", "components": components}
