"""The HTTP application: routers, one JSON error format, size limits, request logs and metrics."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
import structlog
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sodate import __version__
from sodate.commerce.routes import router as commerce_router
from sodate.conditions.schemas import error_path
from sodate.consents.routes import router as consents_router
from sodate.contacts.routes import router as contacts_router
from sodate.db.engine import WriteLockTimeout
from sodate.deps import known_query_parameters
from sodate.errors import SodateError
from sodate.events.routes import router as tracking_router
from sodate.handoff.routes import router as handoff_router
from sodate.imports.routes import router as imports_router
from sodate.lifecycle.routes import router as lifecycle_router
from sodate.metrics import HTTP_LATENCY, HTTP_REQUESTS
from sodate.queue.routes import router as queue_router
from sodate.runtime import Runtime
from sodate.scoring.routes import router as scoring_router
from sodate.segments.routes import router as segments_router
from sodate.system.routes import router as system_router
from sodate.worker import new_worker_id
from sodate.worker_types import BackgroundServices
from sodate.workspaces.routes import router as workspaces_router

log = structlog.get_logger("sodate.http")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def create_app(runtime: Runtime, *, runner: BackgroundServices | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if runner is not None:
            runner.start()
        try:
            yield
        finally:
            if runner is not None:
                runner.stop()

    app = FastAPI(
        title="Sodate",
        version=__version__,
        description="Customer nurturing and marketing automation. Admin API: "
        "`Authorization: Bearer <API key>`.",
        openapi_url="/api/v1/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.state.runner = runner
    app.state.worker_id = runner.worker_id if runner is not None else new_worker_id("api")
    for router in (
        system_router,
        workspaces_router,
        queue_router,
        contacts_router,
        consents_router,
        commerce_router,
        imports_router,
        segments_router,
        scoring_router,
        lifecycle_router,
        handoff_router,
        tracking_router,
    ):
        # The admin API refuses query parameters it does not take; the tracking API takes
        # whatever the SDKs send.
        admin = router.prefix.startswith("/api/")
        app.include_router(
            router, dependencies=[Depends(known_query_parameters)] if admin else None
        )
    _install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=runtime.settings.max_request_bytes)
    app.add_middleware(RequestLog)
    return app


BUSY_RETRY_AFTER_SECONDS = 5


def error_body(code: str, message: str, details: list[Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or []}}


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(SodateError)
    async def _domain(_request: Request, exc: SodateError) -> JSONResponse:
        retry = exc.retry_after_seconds
        return JSONResponse(
            error_body(exc.code, exc.message, exc.details),
            exc.status_code,
            headers=None if retry is None else {"Retry-After": str(retry)},
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {
                "loc": error_path(error.get("loc", ())),
                "msg": error.get("msg", ""),
                "type": error.get("type", ""),
            }
            for error in exc.errors()
        ]
        return JSONResponse(error_body("invalid_input", "the request is not valid", details), 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized"}.get(
            exc.status_code, "http_error"
        )
        return JSONResponse(
            error_body(code, str(exc.detail)),
            exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(sa.exc.TimeoutError)
    @app.exception_handler(WriteLockTimeout)
    async def _busy(request: Request, _exc: Exception) -> JSONResponse:
        # No connection or write lock came free in time: the request did nothing, and can be
        # sent again once the requests holding them are done.
        log.warning("database busy", path=request.url.path)
        return JSONResponse(
            error_body("busy", "the database is busy; try again shortly"),
            503,
            headers={"Retry-After": str(BUSY_RETRY_AFTER_SECONDS)},
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, _exc: Exception) -> JSONResponse:
        log.exception("unhandled error", path=request.url.path)
        return JSONResponse(error_body("internal_error", "something went wrong on our side"), 500)


class BodySizeLimit:
    """Refuse request bodies over the limit with 413, whether declared or streamed.

    A streamed body that grows too large is answered with 413 at once; the application then
    sees a disconnected client, and whatever it tries to answer is dropped.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(send)
            return
        received = 0
        started = refused = False

        async def limited_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes and not started:
                    refused = True
                    await self._refuse(send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, limited_receive, guarded_send)

    async def _refuse(self, send: Send) -> None:
        response = JSONResponse(
            error_body("payload_too_large", f"the request body exceeds {self.max_bytes} bytes"),
            413,
        )
        await response({"type": "http"}, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


class RequestLog:
    """One structured log line and one metrics sample per request, tagged with a request id."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent_id = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = sent_id if _REQUEST_ID.match(sent_id) else uuid.uuid4().hex
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"]
            HTTP_REQUESTS.labels(method=method, route=route, status=str(status)).inc()
            HTTP_LATENCY.labels(method=method, route=route).observe(elapsed)
            state = scope.get("state") or {}
            log.info(
                "request",
                method=method,
                path=scope["path"],
                route=route,
                status=status,
                duration_ms=round(elapsed * 1000, 2),
                workspace_id=state.get("workspace_id"),
            )
            structlog.contextvars.unbind_contextvars("request_id")
