"""Accepting tracking requests: key, size, body, rate, messages, then one durable insert.

Everything here runs before the HTTP response; the rows it writes are the durable record of
what was accepted, processed later by the event processor.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from pydantic import ValidationError

from sodate.errors import SodateError, Unauthorized
from sodate.events.ratelimit import MessageRateLimiter
from sodate.events.schemas import (
    MessageType,
    RejectedMessage,
    TrackingAccepted,
    TrackingBatch,
)
from sodate.events.service import add_to_inbox
from sodate.events.tracking import (
    MAX_BATCH_BYTES,
    MAX_MESSAGE_BYTES,
    AcceptedMessage,
    MessageRejected,
    check_message,
    field_errors,
)
from sodate.runtime import Runtime
from sodate.workspaces.auth import authenticate_write_key


class TrackingInvalid(SodateError):
    """Tracking input that cannot be accepted: 400, as the Segment API answers."""

    status_code = 400
    code = "invalid_input"


class PayloadTooLarge(SodateError):
    status_code = 413
    code = "payload_too_large"


@dataclass(frozen=True)
class TrackingRequest:
    body: bytes
    content_encoding: str | None
    authorization: str | None
    write_key_header: str | None
    message_type: MessageType | None  # None for /v1/batch


def ingest(
    runtime: Runtime, limiter: MessageRateLimiter, request: TrackingRequest
) -> TrackingAccepted:
    """Accept a request's valid messages durably; list the rejected ones by index."""
    limit = MAX_BATCH_BYTES if request.message_type is None else MAX_MESSAGE_BYTES
    document = _parse_body(request.body, request.content_encoding, limit)
    key = _write_key(request, document)
    with runtime.db.read() as session:
        owner = authenticate_write_key(session, key)
    received_at = runtime.clock.now()
    accepted, rejected = _check(document, request.message_type, received_at)
    if rejected and not accepted:
        details = [
            {"index": r.index, "field": e.field, "message": e.message}
            if request.message_type is None
            else {"field": e.field, "message": e.message}
            for r in rejected
            for e in r.errors
        ]
        raise TrackingInvalid("no message could be accepted", details=details)
    limiter.take(owner.workspace_id, len(accepted))
    with runtime.inbox.transaction() as session:
        add_to_inbox(
            session,
            owner.workspace_id,
            [message.payload for message in accepted],
            received_at=received_at,
        )
    return TrackingAccepted(accepted=len(accepted), rejected=rejected)


def _parse_body(body: bytes, encoding: str | None, limit: int) -> dict[str, Any]:
    if len(body) > limit:
        raise PayloadTooLarge(f"the body exceeds {limit} bytes")
    if encoding and encoding.strip().lower() == "gzip":
        try:
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            body = inflater.decompress(body, limit + 1)
        except (zlib.error, gzip.BadGzipFile) as exc:
            raise TrackingInvalid(f"the body is not valid gzip: {exc}") from None
        if len(body) > limit or inflater.unconsumed_tail:
            raise PayloadTooLarge(f"the uncompressed body exceeds {limit} bytes")
    elif encoding and encoding.strip().lower() not in ("identity", ""):
        raise TrackingInvalid(f"unsupported Content-Encoding {encoding!r}: send gzip or none")
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        # orjson is strict; Python's reader also takes what some SDKs send (NaN, lone
        # surrogates), which the message checks then turn into null or a precise refusal.
        try:
            document = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise TrackingInvalid(f"the body is not valid JSON: {exc}") from None
        except RecursionError:
            raise TrackingInvalid("the body is nested too deeply") from None
    if not isinstance(document, dict):
        raise TrackingInvalid("the body must be a JSON object")
    return _javascript_numbers(document) if _has_long_digits(body) else document


_DIGITS_AS_ZERO = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x78 for byte in range(256))


def _has_long_digits(body: bytes) -> bool:
    """Whether the body has a run of 19 digits or more, where an integer beyond signed 64 bits
    may be. A regular expression took 4.5 µs a message of the bench's batches; digits mapped
    to zeros and a substring search take 0.3."""
    return b"0" * 19 in body.translate(_DIGITS_AS_ZERO)


def _javascript_numbers(value: Any) -> Any:
    """Integers beyond signed 64 bits as floating point numbers, as JavaScript reads them.

    orjson keeps integers up to 2^64 - 1, which SQLite's JSON functions read as floating
    point: the two evaluators of conditions would then compare different numbers. One too
    large even for a float stays as it is."""
    if isinstance(value, dict):
        return {key: _javascript_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_javascript_numbers(item) for item in value]
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
        try:
            return float(value)
        except OverflowError:
            return value
    return value


def _write_key(request: TrackingRequest, document: dict[str, Any]) -> str:
    if request.authorization and request.authorization.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(request.authorization[6:].strip(), validate=True)
            user = decoded.decode().split(":", 1)[0]
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthorized("the Basic authorization header is malformed") from None
        if user:
            return user
    if request.write_key_header:
        return request.write_key_header.strip()
    body_key = document.get("writeKey")
    if isinstance(body_key, str) and body_key:
        if not body_key.isascii():  # keys are ASCII; this one may not even encode
            raise Unauthorized("invalid or revoked write key")
        return body_key
    raise Unauthorized(
        "a write key is required: HTTP Basic (key as user name), X-Write-Key, or writeKey"
    )


def _check(
    document: dict[str, Any], message_type: MessageType | None, received_at: datetime
) -> tuple[list[AcceptedMessage], list[RejectedMessage]]:
    if message_type is not None:
        try:
            return [check_message(document, message_type=message_type, received_at=received_at)], []
        except MessageRejected as exc:
            return [], [RejectedMessage(index=0, errors=exc.errors)]
    try:
        batch = TrackingBatch.model_validate(document)
    except ValidationError as exc:
        raise TrackingInvalid("the batch is not valid", details=_details(exc)) from None
    accepted: list[AcceptedMessage] = []
    rejected: list[RejectedMessage] = []
    for index, raw in enumerate(batch.batch):
        try:
            accepted.append(
                check_message(
                    raw,
                    message_type=None,
                    received_at=received_at,
                    batch_sent_at=batch.sentAt,
                    batch_context=batch.context,
                )
            )
        except MessageRejected as exc:
            rejected.append(RejectedMessage(index=index, errors=exc.errors))
    return accepted, rejected


def _details(exc: ValidationError) -> list[dict[str, Any]]:
    return [error.model_dump() for error in field_errors(exc)]
