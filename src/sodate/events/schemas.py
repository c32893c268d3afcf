"""The Segment tracking spec's messages, as accepted on /v1/*, and the API's event shapes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    field_validator,
)

MAX_ID_CHARS = 200


class MessageType(StrEnum):
    IDENTIFY = "identify"
    TRACK = "track"
    PAGE = "page"
    SCREEN = "screen"
    GROUP = "group"
    ALIAS = "alias"


VIEW_TYPES = frozenset((MessageType.PAGE, MessageType.SCREEN))
EARLIEST_EVENT = datetime(1970, 1, 2, tzinfo=UTC)
"""A time before this is a clock at zero (or a date typed wrong), not an event."""
LATEST_EVENT_AHEAD = timedelta(days=1)
"""How far after its receipt (or its import) an event's time may be: a clock years off, or a
year typed wrong, would otherwise set its contact's last seen for good."""


def plausible_event_time(moment: datetime, received_at: datetime | None) -> bool:
    """Whether an event's time is one to take: from `EARLIEST_EVENT` to `LATEST_EVENT_AHEAD`
    after it was received (or its import submitted; no upper bound without one)."""
    if moment < EARLIEST_EVENT:
        return False
    return received_at is None or moment <= received_at + LATEST_EVENT_AHEAD


def view_properties(
    properties: dict[str, Any], name: str | None, category: str | None
) -> dict[str, Any]:
    """A page or screen view's properties, holding its name and category too, as Segment's do."""
    if not (name or category):
        return properties
    named = (("name", name), ("category", category))
    return {**properties, **{key: value for key, value in named if value}}


def _id_to_text(value: object) -> object:
    # SDKs send numeric ids as numbers; booleans are never ids.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str):
        return value.strip()
    return value


# The constraints before the validator, so that their errors speak of characters, not items.
MessageId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_ID_CHARS),
    BeforeValidator(_id_to_text),
]
OptionalId = (
    Annotated[str, StringConstraints(max_length=MAX_ID_CHARS), BeforeValidator(_id_to_text)] | None
)
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class ExternalId(BaseModel):
    """An entry of `context.externalIds`: an id in another system, such as a LINE user id."""

    model_config = ConfigDict(extra="allow")

    id: MessageId
    type: Name


class MessageContext(BaseModel):
    model_config = ConfigDict(extra="allow")

    externalIds: list[ExternalId] | None = None  # noqa: N815 - the spec's name


class TrackingMessage(BaseModel):
    """One message of the Segment spec. Which fields are required depends on `type`."""

    model_config = ConfigDict(extra="allow")

    type: MessageType | None = None
    messageId: MessageId | None = None  # noqa: N815
    userId: OptionalId = None  # noqa: N815
    anonymousId: OptionalId = None  # noqa: N815
    event: Name | None = None
    name: Annotated[str, StringConstraints(max_length=200)] | None = None
    category: Annotated[str, StringConstraints(max_length=200)] | None = None
    groupId: OptionalId = None  # noqa: N815
    previousId: OptionalId = None  # noqa: N815
    properties: dict[str, Any] | None = None
    traits: dict[str, Any] | None = None
    context: MessageContext | None = None
    integrations: dict[str, Any] | None = None
    timestamp: datetime | None = None
    originalTimestamp: datetime | None = None  # noqa: N815
    sentAt: datetime | None = None  # noqa: N815
    writeKey: str | None = None  # noqa: N815

    @field_validator("timestamp", "originalTimestamp", "sentAt")
    @classmethod
    def _assume_utc(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class TrackingBatch(BaseModel):
    """The body of /v1/batch. Messages are checked one by one, so they stay loose here: even
    an item that is not an object is rejected alone, by index, and the others are kept."""

    model_config = ConfigDict(extra="allow")

    batch: list[Annotated[Any, WithJsonSchema({"type": "object"})]] = Field(max_length=2500)
    sentAt: datetime | None = None  # noqa: N815
    context: dict[str, Any] | None = None
    writeKey: str | None = None  # noqa: N815


class FieldError(BaseModel):
    field: str
    message: str


class RejectedMessage(BaseModel):
    index: int
    errors: list[FieldError]


class TrackingAccepted(BaseModel):
    success: bool = True
    accepted: int
    rejected: list[RejectedMessage] = Field(default_factory=list)


class EventOut(BaseModel):
    id: int
    message_id: str
    type: str
    name: str | None
    properties: dict[str, Any]
    context: dict[str, Any]
    timestamp: datetime
    received_at: datetime


class EventPage(BaseModel):
    items: list[EventOut]
    next_cursor: str | None
