"""Helpers the answer routes share: conversations -> (question, history), SSE, blocking streams."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Annotated, Any

import anyio
from fastapi import Query
from starlette.concurrency import run_in_threadpool

from api.deps import Slot
from api.schemas import check_question
from rag.errors import InputError
from rag.types import StreamEvent, Turn

TraceQuery = Annotated[bool, Query(alias="trace", description="Same as the body's `trace` field.")]

SSE_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # a reverse proxy must not hold tokens back until the end
}


def dumps(data: Any) -> str:
    """Compact JSON for one SSE line (no newlines inside, which SSE framing needs)."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def conversation(messages: Iterable[tuple[str, str]], limit: int) -> tuple[str, list[Turn]]:
    """Last message is the question; earlier user/assistant turns are history.

    System (and OpenAI "developer") messages are dropped on purpose: the grounding rules are the
    pipeline's, and a client prompt must not be able to switch them off.
    """
    msgs = list(messages)
    role, content = msgs[-1]
    if role != "user":
        raise InputError(f"the last message must have role 'user', not {role!r}")
    history = [
        Turn(role=r, content=c)  # type: ignore[arg-type]
        for r, c in msgs[:-1]
        if r in ("user", "assistant") and c.strip()  # OpenAI tool-call turns have no text
    ]
    return check_question(content, limit), history


class BlockingStream:
    """Pulls a blocking iterator one item at a time on a worker thread.

    Each ``next`` runs to completion even if the request is cancelled (anyio's default), so the
    generator is never closed while a thread is inside it, and the admission slot is held until
    the model has really stopped.
    """

    _END = object()

    def __init__(self, iterator: Iterator[StreamEvent], slot: Slot) -> None:
        self._it = iterator
        self._slot = slot

    async def next(self) -> StreamEvent | None:
        item = await run_in_threadpool(next, self._it, self._END)
        return None if item is self._END else item

    async def aclose(self) -> None:
        # Shielded: this runs in `finally` after a client disconnect, when the scope is cancelled.
        with anyio.CancelScope(shield=True):
            try:
                close = getattr(self._it, "close", None)
                if close is not None:
                    await run_in_threadpool(close)
            finally:
                self._slot.release()


async def open_stream(start: Any, slot: Slot) -> tuple[StreamEvent | None, BlockingStream]:
    """Start the stream and wait for its first event before any byte is sent.

    Failures that happen before the model writes (bad input, store down) then become a normal
    HTTP status (422, 503) instead of an error event inside a 200 response.
    """
    try:
        iterator = await run_in_threadpool(lambda: iter(start()))
    except BaseException:
        slot.release()
        raise
    stream = BlockingStream(iterator, slot)
    try:
        first = await stream.next()
    except BaseException:
        await stream.aclose()
        raise
    return first, stream


async def drain(first: StreamEvent | None, stream: BlockingStream) -> AsyncIterator[StreamEvent]:
    """Yield the prefetched event, then the rest; always closes the stream and frees the slot."""
    try:
        event = first
        while event is not None:
            yield event
            event = await stream.next()
    finally:
        await stream.aclose()
