"""Counting the events conditions read, for many contacts at once.

For the in-memory evaluator's state (`sodate.conditions.state`). A count whose comparisons
need no more events than the latest times kept is read from the contacts' latest times of its
event (or of its kept filter, `sodate.conditions.filtered`); any other is one grouped query over
the contacts' own events, with the SQL evaluator's filters. Events whose filters read the
contact's local date are loaded instead, to be counted in memory.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sodate.conditions import terms
from sodate.conditions.loaders import chunks
from sodate.conditions.memory import EventFact
from sodate.conditions.schemas import EventSpec
from sodate.conditions.sql import EVENTS, property_filters
from sodate.db.plans import workspace_check
from sodate.events import latest

Kept = TypeVar("Kept", str, int)
"""What a table of latest times is keyed by: an event name, or a kept filter's id."""


def count_events(
    session: Session,
    workspace_id: str,
    contact_ids: Sequence[int],
    specs: dict[str, EventSpec],
    now: datetime,
    zone: ZoneInfo,
) -> dict[str, dict[int, int]]:
    """For each spec, how many of its events each contact has; one pass over the contacts'
    events for all the specs, as far back as the widest window of each name."""
    counts = {key: dict.fromkeys(contact_ids, 0) for key in specs}
    if not specs or not contact_ids:
        return counts
    dialect = session.get_bind().dialect.name
    sums = []
    for spec in specs.values():
        matches = [EVENTS.c.name == spec.name, *_window(spec, now)]
        matches += property_filters(
            spec.where,
            EVENTS.c.properties,
            dialect=dialect,
            workspace_id=workspace_id,
            now=now,
            zone=zone,
        )
        sums.append(sa.func.sum(sa.case((sa.and_(*matches), 1), else_=0)))
    statement = (
        sa.select(EVENTS.c.contact_id, *sums)
        .where(
            workspace_check(EVENTS.c.workspace_id, workspace_id),
            EVENTS.c.contact_id.in_(sa.bindparam("contacts", expanding=True)),
            _reach(specs.values(), now),
        )
        .group_by(EVENTS.c.contact_id)
    )
    keys = list(specs)
    for chunk in chunks(contact_ids):
        for contact, *found in session.execute(statement, {"contacts": list(chunk)}):
            for key, count in zip(keys, found, strict=True):
                if count:
                    counts[key][contact] = int(count)
    return counts


def count_latest(
    session: Session,
    workspace_id: str,
    contact_ids: Sequence[int],
    specs: dict[str, tuple[EventSpec, int, Kept]],
    rows: Iterable[tuple[Kept, int, tuple[Any, ...]]],
    now: datetime,
    zone: ZoneInfo,
) -> dict[str, dict[int, int]]:
    """Counts of specs whose comparisons need no more events counted than the latest times
    kept, from the `rows` of the contacts' kept times (of a name for specs without filters,
    of a kept filter for the others, as the specs give with their ceilings): how many of a
    contact's first `ceiling` latest times are in the window.

    One row per contact and name (or filter), where counting the events reads them all. A
    windowed count of a contact with a time after now is counted on its events, since the
    window's own events may lie beyond the times kept.
    """
    counts = {key: dict.fromkeys(contact_ids, 0) for key in specs}
    if not specs or not contact_ids:
        return counts
    stored = latest.stored_time(session)
    present = stored(now)
    by_kept: dict[Kept, list[tuple[str, Any, int]]] = defaultdict(list)
    for key, (spec, ceiling, owner) in specs.items():
        since = stored(now - terms.parse_positive_duration(spec.within)) if spec.within else None
        by_kept[owner].append((key, since, ceiling))
    recount: dict[str, set[int]] = defaultdict(set)
    for owner, contact, times in rows:
        for key, since, ceiling in by_kept[owner]:
            if since is not None and times[0] is not None and times[0] > present:
                recount[key].add(contact)
                continue
            counts[key][contact] = sum(
                1
                for moment in times[:ceiling]
                if moment is not None and (since is None or moment >= since)
            )
    if recount:
        found = count_events(
            session,
            workspace_id,
            sorted(set().union(*recount.values())),
            {key: specs[key][0] for key in recount},
            now,
            zone,
        )
        for key, contacts in recount.items():
            counts[key].update(
                (contact, made) for contact, made in found[key].items() if contact in contacts
            )
    return counts


def _window(spec: EventSpec, now: datetime) -> list[sa.ColumnElement[bool]]:
    if not spec.within:
        return []
    since = now - terms.parse_positive_duration(spec.within)
    return [EVENTS.c.timestamp >= since, EVENTS.c.timestamp <= now]


def _reach(specs: Iterable[EventSpec], now: datetime) -> sa.ColumnElement[bool]:
    """The events any spec may count: by name, as far back as its widest window."""
    windows: dict[str, timedelta | None] = {}
    for spec in specs:
        window = terms.parse_positive_duration(spec.within) if spec.within else None
        if spec.name in windows:
            known = windows[spec.name]
            window = None if known is None or window is None else max(known, window)
        windows[spec.name] = window
    return sa.or_(
        *(
            EVENTS.c.name == name
            if window is None
            else sa.and_(EVENTS.c.name == name, EVENTS.c.timestamp >= now - window)
            for name, window in windows.items()
        )
    )


def load_events(
    session: Session,
    workspace_id: str,
    contact_ids: Sequence[int],
    specs: Iterable[EventSpec],
    now: datetime,
) -> dict[int, list[EventFact]]:
    """The events of the specs counted in memory, oldest first, with their properties."""
    found: dict[int, list[EventFact]] = defaultdict(list)
    specs = list(specs)
    if not specs or not contact_ids:
        return found
    statement = sa.select(
        EVENTS.c.contact_id, EVENTS.c.name, EVENTS.c.properties, EVENTS.c.timestamp
    ).where(
        workspace_check(EVENTS.c.workspace_id, workspace_id),
        EVENTS.c.contact_id.in_(sa.bindparam("contacts", expanding=True)),
        _reach(specs, now),
    )
    rows: list[Any] = []
    for chunk in chunks(contact_ids):
        rows += session.execute(statement, {"contacts": list(chunk)}).all()
    rows.sort(key=lambda row: row[3])
    for contact_id, name, document, timestamp in rows:
        found[contact_id].append(EventFact(name, document, timestamp))
    return found
