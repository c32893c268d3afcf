"""The Segment-compatible tracking API under /v1. Handlers only delegate to `ingest`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from sodate.events.ingest import TrackingRequest, ingest
from sodate.events.jobs import EVENT_PROCESSOR
from sodate.events.ratelimit import MessageRateLimiter, RateLimited
from sodate.events.schemas import MessageType, TrackingAccepted, TrackingBatch, TrackingMessage

router = APIRouter(prefix="/v1", tags=["tracking"])

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, Content-Encoding, X-Write-Key",
    "Access-Control-Max-Age": "86400",
}

ENDPOINTS: tuple[tuple[str, str, MessageType | None], ...] = (
    ("identify", "i", MessageType.IDENTIFY),
    ("track", "t", MessageType.TRACK),
    ("page", "p", MessageType.PAGE),
    ("screen", "s", MessageType.SCREEN),
    ("group", "g", MessageType.GROUP),
    ("alias", "a", MessageType.ALIAS),
    ("batch", "b", None),
)

_WRITE_KEY_HELP = (
    "Authenticate with the workspace's write key (`wk_…`): HTTP Basic with the key as user "
    "name and an empty password, the `X-Write-Key` header, or `writeKey` in the body. The body "
    "may be `application/json` or `text/plain`, optionally gzip-compressed."
)


def _limiter(request: Request) -> MessageRateLimiter:
    app_state = request.app.state
    limiter: MessageRateLimiter | None = getattr(app_state, "tracking_limiter", None)
    if limiter is None:
        settings = app_state.runtime.settings
        rate = settings.tracking_rate_limit
        limiter = MessageRateLimiter(rate, rate * settings.tracking_burst_seconds)
        app_state.tracking_limiter = limiter
    return limiter


def _handler(message_type: MessageType | None) -> Callable[[Request], Awaitable[Response]]:
    async def handle(request: Request) -> Response:
        tracking_request = TrackingRequest(
            body=await request.body(),
            content_encoding=request.headers.get("content-encoding"),
            authorization=request.headers.get("authorization"),
            write_key_header=request.headers.get("x-write-key"),
            message_type=message_type,
        )
        runtime = request.app.state.runtime
        try:
            result = await run_in_threadpool(ingest, runtime, _limiter(request), tracking_request)
        except RateLimited as exc:
            return JSONResponse(
                {
                    "error": {
                        "code": "rate_limited",
                        "message": str(exc),
                        "details": [],
                    }
                },
                429,
                headers={**CORS_HEADERS, "Retry-After": str(exc.retry_after_seconds)},
            )
        if result.accepted and request.app.state.runner is not None:
            request.app.state.runner.wake(EVENT_PROCESSOR)
        return JSONResponse(result.model_dump(), headers=CORS_HEADERS)

    return handle


async def _preflight() -> Response:
    return Response(status_code=204, headers=CORS_HEADERS)


def _body_schema(message_type: MessageType | None) -> dict[str, Any]:
    model = TrackingBatch if message_type is None else TrackingMessage
    schema = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema}, "text/plain": {"schema": schema}},
        }
    }


for _long, _short, _type in ENDPOINTS:
    for _path in (_long, _short):
        router.add_api_route(
            f"/{_path}",
            _handler(_type),
            methods=["POST"],
            response_model=TrackingAccepted,
            summary=f"Send {'a batch of messages' if _type is None else 'a ' + _type.value}",
            description=_WRITE_KEY_HELP,
            openapi_extra=_body_schema(_type),
            include_in_schema=_path == _long,
        )
        router.add_api_route(f"/{_path}", _preflight, methods=["OPTIONS"], include_in_schema=False)
