"""The app factory: ``create_app(pipeline)`` wraps one shared pipeline in HTTP.

Access: with ``settings.api.api_key`` set, every API route, ``/readyz``, ``/docs`` and
``/openapi.json`` need ``Authorization: Bearer <key>``; only ``/healthz`` and the chat page's
static files (``/``, ``/static/*``, which hold no data) are served without it. The page asks for
the key on its first 401 and keeps it in sessionStorage for the tab.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import Admission, require_api_key
from api.routes import ask, chat, health, openai_compat, sources
from api.schemas import describe_error
from rag.config import Settings
from rag.errors import RagError

if TYPE_CHECKING:
    from rag.pipeline import Pipeline

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
DOCS_ASSETS = "/docs/assets"
MAX_JSON_BODY = 4 * 1024 * 1024  # 200 turns of 8,000 characters fit; more is not a chat
MULTIPART_OVERHEAD = 64 * 1024  # boundaries and part headers around an upload
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)


class SafeJSONResponse(JSONResponse):
    """JSON that can always be encoded: lone surrogates echoed from a bad request would make
    the default renderer raise (a 500 for a client error), so fall back to ASCII escapes."""

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except UnicodeEncodeError:
            return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def create_app(pipeline: Pipeline | None = None, settings: Settings | None = None) -> FastAPI:
    """The app around ``pipeline``; without one, it is built once at start-up from settings."""
    settings = settings or (pipeline.settings if pipeline is not None else Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = app.state.pipeline is None
        if owned:
            from rag.wiring import build_pipeline  # heavy imports only when serving for real

            app.state.pipeline = build_pipeline(settings)
            app.state.pipeline.retriever.warm_in_background()  # as `rag serve` does
        try:
            yield
        finally:
            close = getattr(app.state.pipeline, "close", None) if owned else None
            if callable(close):
                close()

    app = FastAPI(
        title="Grounded answers over your sources",
        summary="Questions answered from a folder of articles, with checked paragraph citations.",
        version="0.1.0",
        lifespan=lifespan,
        default_response_class=SafeJSONResponse,
        # Re-added below behind the API key: the schema is part of "every endpoint".
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.pipeline = pipeline
    app.state.settings = settings
    app.state.admission = Admission(settings.api.max_queue)

    for module in (ask, chat, openai_compat, sources, health):
        app.include_router(module.router)
    _add_docs(app)
    _add_page(app)
    _add_error_handlers(app)

    # Last added runs first: CORS outermost so even 413s and 401s carry CORS headers.
    app.add_middleware(BodyLimit, upload_limit=settings.api.max_upload_bytes)
    app.add_middleware(SecurityHeaders)
    if settings.api.cors_origins:  # off by default: the page is same-origin
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.api.cors_origins,
            allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "X-Turn"],
            expose_headers=["Retry-After", "X-Turn"],
            max_age=600,
        )
    return app


def _add_docs(app: FastAPI) -> None:
    """/docs with Swagger UI's files served from here (the fastapi-offline package ships them):
    FastAPI's default loads them from a CDN, which leaves the page blank offline."""
    import fastapi_offline

    key = [Depends(require_api_key)]
    assets = Path(fastapi_offline.__file__).parent / "static"

    @app.get("/openapi.json", include_in_schema=False, dependencies=key)
    async def openapi() -> JSONResponse:
        return SafeJSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=key)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{app.title} - docs",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url="data:,",  # the default icon is on a remote site too
            # null: no badge fetched from the online validator
            swagger_ui_parameters={"validatorUrl": None},
        )

    # Swagger UI's own code, no data: public like the chat page's files.
    app.mount(DOCS_ASSETS, StaticFiles(directory=assets), name="docs-assets")


def _add_page(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")


def _add_error_handlers(app: FastAPI) -> None:
    """Every error is JSON ``{"error": "..."}``: ours, FastAPI's validation, 404 routes, 405s."""

    @app.exception_handler(RagError)
    async def on_rag_error(request: Request, exc: RagError) -> Response:
        status, body, headers = describe_error(exc)
        return SafeJSONResponse(body, status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError) -> Response:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return SafeJSONResponse({"error": "the request body is not valid JSON"}, 400)
        # Only loc/msg/type: `input` could be 100 kB of question and `ctx` may not serialise.
        detail = [
            {
                "loc": [str(p) for p in e.get("loc", ())],
                "msg": str(e.get("msg")),
                "type": e.get("type"),
            }
            for e in errors
        ]
        first = detail[0] if detail else {"loc": [], "msg": "invalid request"}
        where = ".".join(first["loc"][1:]) or "request"
        message = f"{where}: {first['msg']}"
        if len(detail) > 1:
            message += f" (and {len(detail) - 1} more)"
        return SafeJSONResponse({"error": message, "detail": detail}, 422)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404 and exc.detail == "Not Found":
            message = f"no such endpoint: {request.method} {request.url.path}"
        else:
            message = str(exc.detail)
        return SafeJSONResponse(
            {"error": message}, status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(Exception)
    async def on_bug(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return SafeJSONResponse({"error": "internal server error"}, 500)


class BodyLimit:
    """Refuse oversized request bodies before they are read into memory or spooled to disk.

    The declared Content-Length is checked first; the bytes actually received are counted too,
    for chunked bodies and clients that lie.
    """

    def __init__(self, app: ASGIApp, upload_limit: int) -> None:
        self.app = app
        self.upload_limit = upload_limit + MULTIPART_OVERHEAD

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        upload = scope["path"] == "/api/sources"
        limit = self.upload_limit if upload else MAX_JSON_BODY
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > limit
            except ValueError:
                await _json(scope, receive, send, 400, "invalid Content-Length header")
                return
            if too_big:
                await _json(scope, receive, send, 413, _too_large(upload, limit))
                return

        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Raised inside body parsing; FastAPI re-raises HTTPExceptions unchanged.
                    raise StarletteHTTPException(413, _too_large(upload, limit))
            return message

        await self.app(scope, counting_receive, send)


def _too_large(upload: bool, limit: int) -> str:
    if upload:
        return f"upload larger than the limit ({limit - MULTIPART_OVERHEAD} bytes)"
    return f"request body larger than {limit} bytes"


async def _json(scope: Scope, receive: Receive, send: Send, status: int, message: str) -> None:
    await SafeJSONResponse({"error": message}, status_code=status)(scope, receive, send)


class SecurityHeaders:
    """nosniff everywhere (source text is served as text/plain and must stay text); a strict
    CSP on the page so that even a rendering bug could not run injected script."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        page = scope["path"] == "/" or scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-content-type-options", b"nosniff"))
                headers.append((b"referrer-policy", b"no-referrer"))
                if page:
                    headers.append((b"content-security-policy", PAGE_CSP.encode()))
                    headers.append((b"x-frame-options", b"DENY"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
