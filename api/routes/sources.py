"""Sources: list, show (paragraphs with offsets, for citation links), whole text, upload, delete."""

from __future__ import annotations

import unicodedata
from pathlib import PurePosixPath
from typing import Annotated, Any

from fastapi import APIRouter, File, HTTPException, Path, UploadFile, status
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool

from api.deps import PipelineDep, RequireKey, SettingsDep
from api.schemas import (
    ERRORS,
    MAX_SOURCE_ID_CHARS,
    ErrorOut,
    IngestOut,
    RemovedOut,
    SourceDetail,
    SourceList,
)
from rag.ingest import SUPPORTED_SUFFIXES

router = APIRouter(prefix="/api/sources", tags=["sources"], dependencies=[RequireKey])

SourceId = Annotated[
    str,
    Path(
        max_length=MAX_SOURCE_ID_CHARS,
        description="Source id: the file name relative to the sources folder.",
        examples=["001_b162a8e02d0cef5d.txt"],
    ),
]
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "No source with this id."}
}


@router.get("", response_model=SourceList, summary="All ingested sources", responses=ERRORS)
async def list_sources(pipeline: PipelineDep) -> dict[str, Any]:
    sources = await run_in_threadpool(pipeline.list_sources)
    return {"sources": [s.to_dict() for s in sources]}


# Declared before "/{source_id:path}", which would otherwise swallow the "/text" suffix.
@router.get(
    "/{source_id:path}/text",
    response_class=PlainTextResponse,
    summary="The whole decoded text of a source (text/plain, never rendered as HTML)",
    responses=NOT_FOUND,
)
async def source_text(source_id: SourceId, pipeline: PipelineDep) -> PlainTextResponse:
    text = await run_in_threadpool(pipeline.source_text, source_id)
    # text/plain + nosniff (set app-wide): an uploaded .html source can never run in our origin.
    return PlainTextResponse(text, headers={"Content-Disposition": "inline"})


@router.get(
    "/{source_id:path}",
    response_model=SourceDetail,
    summary="One source and its paragraphs (ids, offsets, text)",
    responses=NOT_FOUND,
)
async def get_source(source_id: SourceId, pipeline: PipelineDep) -> dict[str, Any]:
    source, paragraphs = await run_in_threadpool(pipeline.get_source, source_id)
    return {"source": source.to_dict(), "paragraphs": [p.to_dict() for p in paragraphs]}


@router.delete(
    "/{source_id:path}",
    response_model=RemovedOut,
    summary="Remove a source: its paragraphs from the index and its file from the sources folder",
    responses=NOT_FOUND,
)
async def delete_source(source_id: SourceId, pipeline: PipelineDep) -> dict[str, Any]:
    removed = await run_in_threadpool(pipeline.remove_source, source_id, True)
    return {"removed": source_id, "paragraphs": removed}


@router.post(
    "",
    response_model=IngestOut,
    summary="Upload a .txt, .md or .html file (UTF-8), kept as a file in the sources folder; "
    "same name replaces, same bytes is a no-op",
    responses={
        **ERRORS,
        413: {"model": ErrorOut, "description": "Over settings.api.max_upload_bytes."},
        415: {"model": ErrorOut, "description": "Not a supported file type."},
    },
)
async def upload_source(
    file: Annotated[UploadFile, File(description="The file; its name becomes the source id.")],
    pipeline: PipelineDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    name = upload_name(file.filename)
    limit = settings.api.max_upload_bytes
    data = await file.read(limit + 1)  # one byte more is enough to know it is too big
    if len(data) > limit:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE, f"{name}: larger than the {limit}-byte upload limit"
        )
    report = await run_in_threadpool(pipeline.add_file, name, data)
    return report.to_dict()


def upload_name(filename: str | None) -> str:
    """A client-chosen name must be a plain file name: it becomes a source id and a path part."""
    name = filename or ""
    if not name.strip():
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "the upload has no file name")
    if len(name) > 255 or any(unicodedata.category(ch) == "Cc" for ch in name):
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, "file name is too long or has control characters"
        )
    if "/" in name or "\\" in name or name.startswith(".") or ":" in name:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            f"file name {name!r} must be a plain name: no folders, '..', drive or absolute path",
        )
    if PurePosixPath(name).suffix.lower() not in SUPPORTED_SUFFIXES:
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            f"{name}: unsupported file type; use one of {', '.join(SUPPORTED_SUFFIXES)}",
        )
    return name
