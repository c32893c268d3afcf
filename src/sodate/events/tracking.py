"""Checking and normalizing tracking messages as the Segment spec defines them.

A message is accepted when it has a usable `userId` or `anonymousId` and the fields its type
requires. Its time is corrected for the sender's clock skew:
`timestamp = receivedAt − (sentAt − originalTimestamp)`.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, NamedTuple

import orjson
from pydantic import ValidationError

from sodate.contacts.identifiers import usable_id
from sodate.events.schemas import (
    VIEW_TYPES,
    FieldError,
    MessageContext,
    MessageType,
    TrackingMessage,
    plausible_event_time,
    view_properties,
)

MAX_MESSAGE_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
MAX_BATCH_MESSAGES = 2500

REQUIRED_BY_TYPE: dict[MessageType, tuple[str, ...]] = {
    MessageType.TRACK: ("event",),
    MessageType.GROUP: ("groupId",),
    MessageType.ALIAS: ("previousId",),
}


class AcceptedMessage(NamedTuple):
    """A tuple: a request makes one for each of up to 2,500 messages, and a frozen dataclass's
    construction took 0.6 µs of it."""

    message_id: str
    payload: str


class MessageRejected(Exception):
    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors


def check_message(
    raw: object,
    *,
    message_type: MessageType | None,
    received_at: datetime,
    batch_sent_at: datetime | None = None,
    batch_context: dict[str, Any] | None = None,
) -> AcceptedMessage:
    """Validate one message and return it normalized and serialized, or raise MessageRejected.

    `message_type` is the type the endpoint implies; inside a batch each message names its own.
    """
    if not isinstance(raw, dict):
        raise MessageRejected([FieldError(field="", message="a message must be a JSON object")])
    try:
        message = TrackingMessage.model_validate(raw)
    except ValidationError as exc:
        raise MessageRejected(field_errors(exc)) from None
    if batch_context:  # the batch's context is the message's too, where it says nothing
        try:
            MessageContext.model_validate({**batch_context, **(raw.get("context") or {})})
        except ValidationError as exc:
            errors = [
                FieldError(field=f"context.{e.field}", message=e.message) for e in field_errors(exc)
            ]
            raise MessageRejected(errors) from None
    kind = message_type or message.type
    if kind is None:
        raise MessageRejected([FieldError(field="type", message="required: " + _TYPES)])
    errors = [
        FieldError(field=name, message=f"required for {_article(kind.value)} {kind.value} message")
        for name in REQUIRED_BY_TYPE.get(kind, ())
        if getattr(message, name) in (None, "")
    ]
    user_id = usable_id(message.userId)
    anonymous_id = usable_id(message.anonymousId)
    if user_id is None and anonymous_id is None:
        errors.append(
            FieldError(
                field="userId",
                message="userId or anonymousId is required (placeholders such as "
                "'undefined' or '0' do not count)",
            )
        )
    if errors:
        raise MessageRejected(errors)
    try:
        document = _normalized(
            message, raw, kind, user_id, anonymous_id, received_at, batch_sent_at, batch_context
        )
    except OverflowError:
        raise MessageRejected(
            [FieldError(field="timestamp", message="the message's times are out of range")]
        ) from None
    payload = _payload(document)
    # Its JSON texts take on escapes inside it, and a view's name and category are in its
    # properties too: the limit is for the message as the sender's JSON had it.
    if len(payload) > MAX_MESSAGE_BYTES and _size(document, message) > MAX_MESSAGE_BYTES:
        raise MessageRejected(
            [FieldError(field="", message=f"a message may be at most {MAX_MESSAGE_BYTES} bytes")]
        )
    return AcceptedMessage(message_id=document["messageId"], payload=payload.decode())


def _size(document: dict[str, Any], message: TrackingMessage) -> int:
    """The size of the message with its properties and context as objects, as they came."""
    context = orjson.loads(document["context"])
    return len(_payload({**document, "properties": message.properties or {}, "context": context}))


# A NUL character, as JSON escapes it: `\u0000` after an even number of backslashes.
_ESCAPED_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def _payload(value: Any) -> bytes:
    """The value as JSON text that every database stores and every reader parses back.

    NaN and infinities (which Python's JSON reader accepts) become null, as in JavaScript. Text
    that is not valid Unicode (an unpaired surrogate), nesting too deep to serialize again, an
    integer beyond a double's range (which the event processor could not read back) and NUL
    characters (which PostgreSQL's text and JSONB cannot hold) are refused.
    """
    try:
        payload = orjson.dumps(value)
    except orjson.JSONEncodeError as exc:
        error = FieldError(field="", message=f"not storable as JSON: {exc}")
        raise MessageRejected([error]) from None
    if b"\\u0000" in payload and _ESCAPED_NUL.search(payload):
        raise MessageRejected(
            [FieldError(field="", message="text may not contain NUL characters (\\u0000)")]
        )
    return payload


def _text(value: Any) -> str:
    """A part of the message as JSON text of its own (`_normalized`), by `_payload`'s rules."""
    return _payload(value).decode()


_TYPES = ", ".join(t.value for t in MessageType)


def _normalized(
    message: TrackingMessage,
    raw: dict[str, Any],
    kind: MessageType,
    user_id: str | None,
    anonymous_id: str | None,
    received_at: datetime,
    batch_sent_at: datetime | None,
    batch_context: dict[str, Any] | None,
) -> dict[str, Any]:
    original = message.originalTimestamp or message.timestamp
    sent_at = message.sentAt or batch_sent_at
    if original is not None and sent_at is not None:
        timestamp = received_at - (sent_at - original)
    else:
        timestamp = original or received_at
    if not plausible_event_time(timestamp, received_at):
        # A device's clock years off would set the contact's first or last seen for good.
        when = "in the future" if timestamp > received_at else "before 1970-01-02"
        when = f"{when} ({_iso(timestamp)}, received {_iso(received_at)})"
        if (
            sent_at is not None
            and original is not None
            and plausible_event_time(original, received_at)
        ):
            field, advice = "sentAt", "the correction by sentAt puts it so: check sentAt"
        else:
            field = "originalTimestamp" if message.originalTimestamp else "timestamp"
            advice = "check the device's clock, or send sentAt so that Sodate can correct it"
        raise MessageRejected([FieldError(field=field, message=f"{when}: {advice}")])
    context = dict(batch_context or {})
    context.update(raw.get("context") or {})
    stamped = _utc(timestamp)
    if original is None:
        original_text = None
    elif original is timestamp:  # no sentAt to correct it by
        original_text = stamped
    else:
        original_text = _utc(original)
    return {
        "type": kind.value,
        "messageId": message.messageId or str(uuid.uuid4()),
        "userId": user_id,
        "anonymousId": anonymous_id,
        "event": message.event,
        "name": message.name,
        "category": message.category,
        "groupId": message.groupId,
        "previousId": message.previousId,
        # As JSON texts of their own: the event processor stores them as they are, and parses
        # them only where a step reads them.
        "properties": _text(_properties(kind, message)),
        "traits": _traits(kind, message.traits, context),
        "context": _text(context),
        "timestamp": stamped,
        "originalTimestamp": original_text,
        "sentAt": _iso(sent_at) if sent_at else None,
        "receivedAt": _iso(received_at),
    }


def _properties(kind: MessageType, message: TrackingMessage) -> dict[str, Any]:
    properties = message.properties or {}
    if kind in VIEW_TYPES:
        return view_properties(properties, message.name, message.category)
    return properties


def _traits(
    kind: MessageType, traits: dict[str, Any] | None, context: dict[str, Any]
) -> dict[str, Any]:
    """The message's traits; an identify's `context.traits` too, where RudderStack SDKs put them."""
    if kind == MessageType.IDENTIFY and isinstance(context.get("traits"), dict):
        return {**context["traits"], **(traits or {})}
    return traits or {}


def _utc(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


@lru_cache(maxsize=4096)
def _iso(value: datetime) -> str:
    """`_utc`, cached for the times a request's messages share (receivedAt, often a batch's
    sentAt); a message's own time is another each time, and a cache only costs it."""
    return _utc(value)


def field_errors(exc: ValidationError) -> list[FieldError]:
    errors = []
    for error in exc.errors(include_url=False):
        field = ""
        for part in error["loc"]:
            field += f"[{part}]" if isinstance(part, int) else (f".{part}" if field else str(part))
        errors.append(FieldError(field=field, message=error["msg"]))
    return errors


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"
