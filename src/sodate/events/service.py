"""The event log: the inbox of accepted messages, stored events, daily counts, timelines."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from sodate.contacts.resolution import PlannedMerge
from sodate.db.paging import fetch_page
from sodate.events.models import Event, EventDailyCount, InboxMessage
from sodate.events.schemas import EventOut, EventPage

INBOX: sa.Table = InboxMessage.__table__  # type: ignore[assignment]
EVENTS: sa.Table = Event.__table__  # type: ignore[assignment]
DAILY: sa.Table = EventDailyCount.__table__  # type: ignore[assignment]
CHUNK = 500


@dataclass(frozen=True)
class InboxRow:
    id: int
    payload: str


def oldest_pending_workspace(session: Session, *, skip: Sequence[str] = ()) -> str | None:
    statement = sa.select(INBOX.c.workspace_id).order_by(INBOX.c.id).limit(1)
    if skip:
        statement = statement.where(INBOX.c.workspace_id.not_in(skip))
    return session.execute(statement).scalar()


def take_inbox(session: Session, workspace_id: str, *, limit: int) -> list[InboxRow]:
    rows = session.execute(
        sa.select(INBOX.c.id, INBOX.c.payload)
        .where(INBOX.c.workspace_id == workspace_id)
        .order_by(INBOX.c.id)
        .limit(limit)
    )
    return [InboxRow(id=row.id, payload=row.payload) for row in rows]


def delete_inbox(session: Session, ids: Sequence[int]) -> None:
    for start in range(0, len(ids), CHUNK):
        session.execute(sa.delete(INBOX).where(INBOX.c.id.in_(ids[start : start + CHUNK])))


def pending_count(session: Session, workspace_id: str | None = None) -> int:
    statement = sa.select(sa.func.count()).select_from(INBOX)
    if workspace_id is not None:
        statement = statement.where(INBOX.c.workspace_id == workspace_id)
    return session.execute(statement).scalar_one()


def stored_message_ids(session: Session, workspace_id: str, message_ids: Sequence[str]) -> set[str]:
    """Which of these messages were processed before (a resent message is not counted twice)."""
    found: set[str] = set()
    for start in range(0, len(message_ids), CHUNK):
        found.update(
            session.execute(
                sa.select(EVENTS.c.message_id).where(
                    EVENTS.c.workspace_id == workspace_id,
                    EVENTS.c.message_id.in_(message_ids[start : start + CHUNK]),
                )
            ).scalars()
        )
    return found


def insert_events(session: Session, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Store events whose message ids are distinct; return their ids in the rows' order."""
    if not rows:
        return []
    # Matched by message id: asking for ids in parameter order would make SQLite insert one
    # row per statement.
    statement = sa.insert(EVENTS).returning(EVENTS.c.message_id, EVENTS.c.id)
    ids: dict[str, int] = dict(session.execute(statement, list(rows)).all())
    return [ids[row["message_id"]] for row in rows]


def add_daily_counts(
    session: Session, workspace_id: str, occurrences: Sequence[tuple[int, str, datetime]]
) -> None:
    """Add events to the per contact, name and UTC day counts."""
    totals: dict[tuple[int, str, Any], list[Any]] = {}
    for contact_id, name, at in occurrences:
        key = (contact_id, name, at.date())
        entry = totals.get(key)
        if entry is None:
            totals[key] = [1, at, at]
        else:
            entry[0] += 1
            entry[1] = min(entry[1], at)
            entry[2] = max(entry[2], at)
    rows = [
        {
            "contact_id": contact_id,
            "name": name,
            "day": day,
            "workspace_id": workspace_id,
            "count": count,
            "first_at": first,
            "last_at": last,
        }
        for (contact_id, name, day), (count, first, last) in totals.items()
    ]
    if rows:
        session.execute(_upsert_daily(session), rows)


def _upsert_daily(session: Session, select: sa.Select[Any] | None = None) -> Any:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert(DAILY) if dialect == "postgresql" else sqlite.insert(DAILY)
    if select is not None:
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


def move_history(session: Session, workspace_id: str, merges: Sequence[PlannedMerge]) -> None:
    """Give the surviving contact of each merge the events and counts of the merged one."""
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
        items=[
            EventOut(
                id=e.id,
                message_id=e.message_id,
                type=e.type,
                name=e.name,
                properties=e.properties,
                context=e.context,
                timestamp=e.timestamp,
                received_at=e.received_at,
            )
            for e in page
        ],
        next_cursor=next_cursor,
    )
