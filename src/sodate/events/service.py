"""The event log: the inbox of accepted messages, stored events, daily counts, timelines."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from sodate.contacts.resolution import PlannedMerge
from sodate.db.base import floor_seconds
from sodate.db.bulk import fetch_all, fetch_in, insert_rows
from sodate.db.paging import fetch_page
from sodate.db.plans import workspace_check
from sodate.events.latest import rebuild_latest_times, stored_time
from sodate.events.models import (
    NO_MESSAGE_KEY,
    Event,
    EventDailyCount,
    InboxRequest,
    message_key,
)
from sodate.events.schemas import EventOut, EventPage

INBOX: sa.Table = InboxRequest.__table__  # type: ignore[assignment]
EVENTS: sa.Table = Event.__table__  # type: ignore[assignment]
DAILY: sa.Table = EventDailyCount.__table__  # type: ignore[assignment]
CHUNK = 500


@dataclass(frozen=True)
class InboxRow:
    id: int
    messages: str
    """A JSON array of normalized messages."""


def add_to_inbox(
    session: Session, workspace_id: str, payloads: Sequence[str], *, received_at: datetime
) -> None:
    """Keep one request's accepted messages (each already JSON) until they are processed."""
    if payloads:
        session.execute(
            sa.insert(INBOX).values(
                workspace_id=workspace_id,
                messages="[" + ",".join(payloads) + "]",
                message_count=len(payloads),
                received_at=received_at,
            )
        )


def oldest_pending_workspace(session: Session, *, skip: Sequence[str] = ()) -> str | None:
    statement = sa.select(INBOX.c.workspace_id).order_by(INBOX.c.id).limit(1)
    if skip:
        statement = statement.where(INBOX.c.workspace_id.not_in(skip))
    return session.execute(statement).scalar()


def take_inbox(
    session: Session, workspace_id: str, *, limit: int
) -> Generator[InboxRow, None, None]:
    """The workspace's oldest requests, as many as fit in `limit` messages (at least one), read
    one at a time as they are asked for: each holds up to 2,500 messages of text. The caller
    may stop early; the requests it did not read stay in the inbox."""
    counts = session.execute(
        sa.select(INBOX.c.id, INBOX.c.message_count)
        .where(INBOX.c.workspace_id == workspace_id)
        .order_by(INBOX.c.id)
        .limit(limit)
    ).all()
    ids: list[int] = []
    total = 0
    for row_id, count in counts:
        if ids and total + count > limit:
            break
        ids.append(row_id)
        total += count
    for start in range(0, len(ids), CHUNK):
        rows = session.execute(
            sa.select(INBOX.c.id, INBOX.c.messages)
            .where(INBOX.c.id.in_(ids[start : start + CHUNK]))
            .order_by(INBOX.c.id)
        )
        for row in rows:
            yield InboxRow(id=row.id, messages=row.messages)


def delete_inbox(session: Session, ids: Sequence[int]) -> None:
    for start in range(0, len(ids), CHUNK):
        session.execute(sa.delete(INBOX).where(INBOX.c.id.in_(ids[start : start + CHUNK])))


def pending_count(session: Session, workspace_id: str | None = None) -> int:
    """How many accepted messages wait to be processed."""
    statement = sa.select(sa.func.coalesce(sa.func.sum(INBOX.c.message_count), 0))
    if workspace_id is not None:
        statement = statement.where(INBOX.c.workspace_id == workspace_id)
    return int(session.execute(statement).scalar_one())


def stored_message_ids(session: Session, workspace_id: str, message_ids: Sequence[str]) -> set[str]:
    """Which of these messages were processed before (a resent message is not counted twice)."""
    # `|| ''` keeps SQLite from walking the workspace's whole range of the name index; the
    # keys are never 0, and saying so lets the databases use the index, which holds no 0s.
    rows = fetch_in(
        session,
        "SELECT message_id FROM events"
        " WHERE workspace_id || '' = ? AND message_key <> 0 AND message_key IN",
        sorted({message_key(message_id) for message_id in message_ids}),
        (workspace_id,),
    )
    return {row[0] for row in rows}.intersection(message_ids)


class EventRow(NamedTuple):
    """One event to store. A named tuple, not a dataclass: a batch makes one per event, and
    it is made in under half the time (0.44 against 0.99 µs)."""

    contact_id: int
    message_id: str
    type: str
    name: str | None
    properties: str
    """JSON text, as `DriverValues.json` writes it."""
    context: str
    """JSON text, likewise."""
    timestamp: datetime
    received_at: datetime
    keyed: bool = True
    """Stored with its message id's key (`BatchEvent.keyed`)."""


_EVENT_COLUMNS = (
    "id",
    "workspace_id",
    "contact_id",
    "message_id",
    "message_key",
    "type",
    "name",
    "properties",
    "context",
    "timestamp",
    "received_at",
)


def insert_events(session: Session, workspace_id: str, rows: Sequence[EventRow]) -> list[int]:
    """Store events whose message ids are distinct; return their ids, ascending, in order."""
    if not rows:
        return []
    ids = _allocate_event_ids(session, len(rows))
    time = stored_time(session)
    insert_rows(
        session,
        "events",
        _EVENT_COLUMNS,
        [
            (
                event_id,
                workspace_id,
                row.contact_id,
                row.message_id,
                message_key(row.message_id) if row.keyed else NO_MESSAGE_KEY,
                row.type,
                row.name,
                row.properties,
                row.context,
                time(row.timestamp),
                time(row.received_at),
            )
            for event_id, row in zip(ids, rows, strict=True)
        ],
    )
    return ids


def _allocate_event_ids(session: Session, count: int) -> list[int]:
    """Ids for new events, so that rows go in without RETURNING and in ascending order.

    SQLite's write transaction is exclusive, so the ids after the largest are free until it
    ends. PostgreSQL hands out the sequence's values, which other workspaces' processors may
    interleave with; each workspace's own events still get ascending ids.
    """
    if session.get_bind().dialect.name == "postgresql":
        return [
            row[0]
            for row in fetch_all(
                session,
                "SELECT nextval(pg_get_serial_sequence('events', 'id')) FROM generate_series(1, ?)",
                (count,),
            )
        ]
    start = session.execute(sa.select(sa.func.coalesce(sa.func.max(EVENTS.c.id), 0))).scalar_one()
    return list(range(start + 1, start + 1 + count))


def count_stored_events(session: Session, workspace_id: str, first_id: int, last_id: int) -> None:
    """Add the workspace's events with ids in [first_id, last_id] to the daily counts."""
    if session.get_bind().dialect.name == "postgresql":
        day: sa.ColumnElement[Any] = sa.cast(sa.func.timezone("UTC", EVENTS.c.timestamp), sa.Date)
    else:
        day = sa.func.date(floor_seconds(EVENTS.c.timestamp), "unixepoch")
    totals = (
        sa.select(
            EVENTS.c.contact_id,
            EVENTS.c.name,
            day,
            EVENTS.c.workspace_id,
            sa.func.count(),
            sa.func.min(EVENTS.c.timestamp),
            sa.func.max(EVENTS.c.timestamp),
        )
        .where(
            # On the workspace's name index SQLite would read every event it ever had.
            workspace_check(EVENTS.c.workspace_id, workspace_id),
            EVENTS.c.id.between(first_id, last_id),
            EVENTS.c.name.is_not(None),
        )
        .group_by(EVENTS.c.contact_id, EVENTS.c.name, day, EVENTS.c.workspace_id)
    )
    session.execute(_upsert_daily(session, totals))


def _upsert_daily(session: Session, select: sa.Select[Any]) -> Any:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert(DAILY) if dialect == "postgresql" else sqlite.insert(DAILY)
    insert = insert.from_select(
        ["contact_id", "name", "day", "workspace_id", "count", "first_at", "last_at"], select
    )
    excluded = insert.excluded
    return insert.on_conflict_do_update(
        index_elements=["contact_id", "name", "day"],
        set_={
            "count": DAILY.c.count + excluded.count,
            "first_at": sa.case(
                (excluded.first_at < DAILY.c.first_at, excluded.first_at), else_=DAILY.c.first_at
            ),
            "last_at": sa.case(
                (excluded.last_at > DAILY.c.last_at, excluded.last_at), else_=DAILY.c.last_at
            ),
        },
    )


def move_history(
    session: Session, workspace_id: str, merges: Sequence[PlannedMerge], now: datetime
) -> None:
    """Give the surviving contact of each merge the events, counts and latest times of the
    merged one."""
    for merge in merges:
        session.execute(
            sa.update(EVENTS)
            .where(EVENTS.c.workspace_id == workspace_id, EVENTS.c.contact_id == merge.merged)
            .values(contact_id=merge.survivor)
        )
        moved = sa.select(
            sa.literal(merge.survivor, sa.BigInteger()),
            DAILY.c.name,
            DAILY.c.day,
            DAILY.c.workspace_id,
            DAILY.c.count,
            DAILY.c.first_at,
            DAILY.c.last_at,
        ).where(DAILY.c.contact_id == merge.merged)
        session.execute(_upsert_daily(session, moved))
        session.execute(sa.delete(DAILY).where(DAILY.c.contact_id == merge.merged))
    pairs = [contact for merge in merges for contact in (merge.survivor, merge.merged)]
    if pairs:
        rebuild_latest_times(session, workspace_id, pairs)


def timeline(
    session: Session, workspace_id: str, contact_id: int, *, limit: int, before: int | None
) -> EventPage:
    """A contact's events, newest first; `before` is the cursor of the previous page."""
    statement = (
        sa.select(Event)
        .where(Event.workspace_id == workspace_id, Event.contact_id == contact_id)
        .order_by(Event.timestamp.desc(), Event.id.desc())
    )
    if before is not None:
        anchor = session.get(Event, before)
        if anchor is not None and anchor.workspace_id == workspace_id:
            statement = statement.where(
                sa.or_(
                    Event.timestamp < anchor.timestamp,
                    sa.and_(Event.timestamp == anchor.timestamp, Event.id < anchor.id),
                )
            )
    page, next_cursor = fetch_page(session, statement, limit=limit)
    return EventPage(
        items=[EventOut.model_validate(event, from_attributes=True) for event in page],
        next_cursor=next_cursor,
    )
