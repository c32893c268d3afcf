"""The Segment-compatible tracking API under /v1. Handlers only delegate to `ingest`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from fastapi.security.http import HTTPBase
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from sodate.errors import SodateError
from sodate.events.ingest import TrackingRequest, ingest
from sodate.events.jobs import EVENT_PROCESSOR
from sodate.events.ratelimit import MessageRateLimiter, RateLimited
from sodate.events.schemas import MessageType, TrackingAccepted, TrackingBatch, TrackingMessage
from sodate.events.tracking import REQUIRED_BY_TYPE

router = APIRouter(prefix="/v1", tags=["tracking"])

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": (
        "Authorization, Content-Type, Content-Encoding, X-Write-Key, X-Retry-Count"
    ),
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
        except SodateError as exc:
            # Answered here rather than by the app's handler so that a browser may read why.
            return JSONResponse(
                {"error": {"code": exc.code, "message": exc.message, "details": exc.details}},
                exc.status_code,
                headers=CORS_HEADERS,
            )
        if result.accepted and request.app.state.runner is not None:
            request.app.state.runner.wake(EVENT_PROCESSOR)
        return JSONResponse(result.model_dump(), headers=CORS_HEADERS)

    return handle


async def _preflight() -> Response:
    return Response(status_code=204, headers=CORS_HEADERS)


# OpenAPI only. FastAPI documents the models it sees in signatures; these handlers read the raw
# body (JSON or text/plain, maybe gzip), so the request schema is given explicitly, inlined with
# its `$defs` resolved: a `#/$defs/…` reference would point at the document's root.


def _inline_refs(schema: Any, defs: dict[str, Any]) -> Any:
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            target = _inline_refs(defs[ref.removeprefix("#/$defs/")], defs)
            siblings = {k: _inline_refs(v, defs) for k, v in schema.items() if k != "$ref"}
            return {**target, **siblings}
        return {k: _inline_refs(v, defs) for k, v in schema.items() if k != "$defs"}
    if isinstance(schema, list):
        return [_inline_refs(item, defs) for item in schema]
    return schema


def _model_schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    inlined: dict[str, Any] = _inline_refs(schema, schema.get("$defs", {}))
    return inlined


def _message_schema(required: tuple[str, ...]) -> dict[str, Any]:
    schema = _model_schema(TrackingMessage)
    if required:
        schema["required"] = list(required)
    schema["anyOf"] = [{"required": ["userId"]}, {"required": ["anonymousId"]}]
    return schema


def _body_schema(message_type: MessageType | None) -> dict[str, Any]:
    if message_type is None:
        schema = _model_schema(TrackingBatch)
        schema["properties"]["batch"]["items"] = _message_schema(("type",))
    else:
        schema = _message_schema(REQUIRED_BY_TYPE.get(message_type, ()))
        schema["title"] = f"{message_type.value.title()}Message"
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema}, "text/plain": {"schema": schema}},
        }
    }


class TrackingErrorInfo(BaseModel):
    code: str
    message: str
    details: list[dict[str, Any]]


class TrackingError(BaseModel):
    error: TrackingErrorInfo


_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {
        "model": TrackingError,
        "description": "Nothing could be accepted: the body is not a JSON object, or every "
        "message is invalid (`details` names each bad field, with its `index` in a batch)",
    },
    401: {"model": TrackingError, "description": "No write key, or an unknown one"},
    413: {"model": TrackingError, "description": "The body, or a message, is too large"},
    429: {
        "model": TrackingError,
        "description": "The workspace's message rate limit is exceeded",
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    },
}

# Declared for the document's `security`; `ingest` reads and checks the key itself.
_WRITE_KEY_SCHEMES = [
    Depends(
        HTTPBase(
            scheme="basic",
            scheme_name="WriteKeyBasic",
            description="The write key as user name, an empty password",
            auto_error=False,
        )
    ),
    Depends(APIKeyHeader(name="X-Write-Key", scheme_name="WriteKeyHeader", auto_error=False)),
]


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
            responses=_ERROR_RESPONSES,
            dependencies=_WRITE_KEY_SCHEMES,
            include_in_schema=_path == _long,
        )
        router.add_api_route(f"/{_path}", _preflight, methods=["OPTIONS"], include_in_schema=False)
