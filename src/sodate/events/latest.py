"""Each contact's latest times per event name (`event_latest_times`), kept beside the events.

The pipeline adds a batch's events with `keep_latest_times`: one read of the rows the batch
touches, the merge done here, and one write of the rows that changed. Merges rebuild the
survivor's rows from its events (`rebuild_latest_times`), which is also how a table filled by
hand (a test, a benchmark's load) is brought in step.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sodate.db.bulk import driver_values, execute_many, fetch_in
from sodate.events.models import LATEST_KEPT, Event, EventLatestTimes

EVENTS: sa.Table = Event.__table__  # type: ignore[assignment]
LATEST: sa.Table = EventLatestTimes.__table__  # type: ignore[assignment]
LATEST_COLUMNS = tuple(f"latest_{rank}" for rank in range(1, LATEST_KEPT + 1))

_UPSERT = (
    "INSERT INTO event_latest_times (workspace_id, name, contact_id, "  # noqa: S608 (names only)
    + ", ".join(LATEST_COLUMNS)
    + ") VALUES ("
    + ", ".join("?" * (3 + LATEST_KEPT))
    + ") ON CONFLICT (workspace_id, name, contact_id) DO UPDATE SET "
    + ", ".join(f"{column} = excluded.{column}" for column in LATEST_COLUMNS)
)
_KEPT = (
    "SELECT contact_id, "  # noqa: S608 (names only)
    + ", ".join(LATEST_COLUMNS)
    + " FROM event_latest_times WHERE workspace_id = ? AND name = ? AND contact_id IN"
)


def keep_latest_times(
    session: Session, workspace_id: str, events: Iterable[tuple[int, str | None, datetime]]
) -> None:
    """Add stored events (contact, name, time) to their contacts' latest times.

    Times are compared in the driver's form, which orders as time does: UTC text of one fixed
    format on SQLite, aware datetimes on PostgreSQL.
    """
    values = driver_values(session)
    added: dict[str, dict[int, list[Any]]] = defaultdict(lambda: defaultdict(list))
    for contact_id, name, moment in events:
        if name:
            added[name][contact_id].append(values.time(moment))
    rows: list[tuple[Any, ...]] = []
    for name, by_contact in added.items():
        kept = {
            contact_id: [moment for moment in times if moment is not None]
            for contact_id, *times in fetch_in(
                session, _KEPT, sorted(by_contact), (workspace_id, name)
            )
        }
        for contact_id, times in by_contact.items():
            before = kept.get(contact_id, [])
            latest = sorted([*before, *times], reverse=True)[:LATEST_KEPT]
            if latest != before:  # events older than every kept time change nothing
                padding = (None,) * (LATEST_KEPT - len(latest))
                rows.append((workspace_id, name, contact_id, *latest, *padding))
    execute_many(session, _UPSERT, rows)


def rebuild_latest_times(
    session: Session, workspace_id: str, contact_ids: Sequence[int] | None = None
) -> None:
    """Compute the latest times of `contact_ids` (every contact when None) from their events."""
    where: list[sa.ColumnElement[bool]] = [EVENTS.c.workspace_id == workspace_id]
    latest_where: list[sa.ColumnElement[bool]] = [LATEST.c.workspace_id == workspace_id]
    if contact_ids is not None:
        where.append(EVENTS.c.contact_id.in_(contact_ids))
        latest_where.append(LATEST.c.contact_id.in_(contact_ids))
    session.execute(sa.delete(LATEST).where(*latest_where))
    session.execute(
        sa.insert(LATEST).from_select(
            ["workspace_id", "name", "contact_id", *LATEST_COLUMNS], latest_times_of(where)
        )
    )


def latest_times_of(where: Sequence[sa.ColumnElement[bool]]) -> sa.Select[Any]:
    """(workspace_id, name, contact_id, latest_1 … latest_5) of the named events `where`
    selects: ranked newest first per contact and name, the first ranks turned into columns."""
    ranked = (
        sa.select(
            EVENTS.c.workspace_id,
            EVENTS.c.name,
            EVENTS.c.contact_id,
            EVENTS.c.timestamp,
            sa.func.row_number()
            .over(
                partition_by=(EVENTS.c.contact_id, EVENTS.c.name),
                order_by=EVENTS.c.timestamp.desc(),
            )
            .label("rank"),
        )
        .where(*where, EVENTS.c.name.is_not(None), EVENTS.c.name != "")
        .subquery("ranked")
    )
    return (
        sa.select(
            ranked.c.workspace_id,
            ranked.c.name,
            ranked.c.contact_id,
            *(
                sa.func.max(sa.case((ranked.c.rank == rank, ranked.c.timestamp)))
                for rank in range(1, LATEST_KEPT + 1)
            ),
        )
        .where(ranked.c.rank <= LATEST_KEPT)
        .group_by(ranked.c.workspace_id, ranked.c.name, ranked.c.contact_id)
    )
