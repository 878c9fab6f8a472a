"""Typed dependencies shared by the routes: the pipeline, settings, the API key, admission."""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Header, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.admission import Admission, Entry, Slot
from rag.config import Settings
from rag.errors import BackendUnavailable

if TYPE_CHECKING:  # the real class pulls in llama-index; the API only needs its methods
    from rag.pipeline import Pipeline


def get_pipeline(request: Request) -> Pipeline:
    pipeline = request.app.state.pipeline
    if pipeline is None:  # only when the app is driven without its lifespan
        raise BackendUnavailable("pipeline", "in-process", "not started")
    return pipeline


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


# auto_error=False: a missing header must give our JSON 401, and no key configured means no check.
_bearer = HTTPBearer(
    auto_error=False,
    description="Needed on every endpoint except /healthz when settings.api.api_key is set.",
)


def require_api_key(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    expected = request.app.state.settings.api.api_key
    if not expected:
        return
    given = credentials.credentials if credentials else ""
    # Constant time, so response timing does not reveal how much of a guess was right. Bytes,
    # because compare_digest refuses non-ASCII str and a header may carry any latin-1 text.
    if not hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8")):
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="a valid API key is required: send 'Authorization: Bearer <key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )


def require_json_body(request: Request) -> None:
    """A JSON route given another media type says so (415), instead of a 422 about a
    "dictionary" that the sender cannot map to their mistake (``curl -d`` sends a form type).
    No Content-Type at all is read as JSON, as FastAPI does."""
    declared = request.headers.get("content-type")
    if declared is None:
        return
    media = declared.split(";", 1)[0].strip().lower()
    if media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    ):
        return
    raise HTTPException(
        status_code=status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
        detail=f"send the body as JSON with 'Content-Type: application/json', not {media!r}",
    )


def get_admission(
    request: Request,
    x_turn: Annotated[
        str | None,
        Header(description="The ticket of a 429's `X-Turn`, sent back to keep a place in line."),
    ] = None,
) -> Entry:
    return Entry(request.app.state.admission, x_turn)


__all__ = ["Admission", "AdmissionDep", "Entry", "PipelineDep", "RequireKey", "SettingsDep", "Slot"]

PipelineDep = Annotated["Pipeline", Depends(get_pipeline)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
AdmissionDep = Annotated[Entry, Depends(get_admission)]
RequireKey = Depends(require_api_key)
JsonBody = Depends(require_json_body)
