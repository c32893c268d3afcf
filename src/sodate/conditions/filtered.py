"""Latest times of filtered events: each contact's latest times of the events of one name that
match property filters, for the filters that live segments count.

`event_latest_times` answers "at least 3 page views in 30 days" from one row per contact, but
not "at least 3 page views of /products… in 30 days": real-time checks counted those on the
contact's events, which costs more the longer a contact's history. The filters the dynamic
segments count (`wanted_filters`) are registered in `event_filters`, and the pipeline keeps
their rows in `event_filter_latest_times` as `sodate.events.latest` keeps names': each new
event's properties are tested in memory (`property_matcher`, which a property test holds to
the SQL filters), and the new times merged into the contact's row in the database. Both
evaluators read those rows as they read names' (`sodate.conditions.state`,
`sodate.conditions.sql`), where `sodate.conditions.kept` says the rows answer the count.

Saving or deleting a segment, and every event batch, bring the kept filters in line with the
segments (`sync_filters`): a filter newly wanted is registered and its rows filled from the
stored events, set-based, as far back as the widest window that counts it (`since`; every
event when one has no window); a filter no longer wanted is dropped. Its rows answer a count
whose window starts at or after `since`. Only filters that read neither the clock nor a time
zone are kept, so that whether an event matches never changes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sodate.conditions import terms
from sodate.conditions.comparisons import property_matcher
from sodate.conditions.kept import FILTERS, filter_digest, keeps, tracked_filters
from sodate.conditions.reads import nodes
from sodate.conditions.schemas import Condition, EventCondition, PropFilter
from sodate.conditions.sql import EVENTS, FILTERED, property_filters
from sodate.contacts.resolution import PlannedMerge
from sodate.db.plans import workspace_check
from sodate.events import latest

_TABLE, _KEY = "event_filter_latest_times", "filter_id"
_NO_ZONE = ZoneInfo("UTC")
"""What the filters are given for a time zone: the ones kept read none."""


@dataclass(frozen=True)
class WantedFilter:
    name: str
    where: tuple[PropFilter, ...]
    since: datetime | None
    """The start of the widest window that counts it; None when one counts every event."""


def wanted_filters(conditions: Iterable[Condition], now: datetime) -> dict[str, WantedFilter]:
    """The filters the conditions count that kept times can answer, by digest."""
    wanted: dict[str, WantedFilter] = {}
    for condition in conditions:
        for _path, node in nodes(condition):
            if not isinstance(node, EventCondition):
                continue
            spec = node.event
            if not keeps(spec, spec.count.ceiling):
                continue
            since = now - terms.parse_positive_duration(spec.within) if spec.within else None
            digest = filter_digest(spec.name, spec.where)
            known = wanted.get(digest)
            if known is not None:
                since = None if known.since is None or since is None else min(known.since, since)
            wanted[digest] = WantedFilter(spec.name, tuple(spec.where), since)
    return wanted


def kept_rows(
    session: Session, filter_ids: Sequence[int], contact_ids: Sequence[int]
) -> list[tuple[int, int, tuple[Any, ...]]]:
    """(filter, contact, its latest times newest first, as stored) of the contacts' rows."""
    return latest.kept_rows(session, _TABLE, _KEY, filter_ids, contact_ids)


class FilteredEvent(Protocol):
    """What the pipeline gives of each stored event (its `BatchEvent`)."""

    @property
    def contact_id(self) -> int: ...
    @property
    def name(self) -> str | None: ...
    @property
    def properties(self) -> Mapping[str, Any]: ...
    @property
    def timestamp(self) -> datetime: ...


def keep_filtered_times(
    session: Session,
    workspace_id: str,
    wanted: dict[str, WantedFilter],
    events: Sequence[FilteredEvent],
    now: datetime,
) -> None:
    """Bring the kept filters in line with `wanted`, then add a batch's stored events to the
    rows of the filters kept before it (a filter registered now was filled from them)."""
    kept = sync_filters(session, workspace_id, wanted, now)
    if not kept or not events:
        return
    holds = property_matcher(now=now, zone=_NO_ZONE)
    added: dict[tuple[int, int], list[datetime]] = defaultdict(list)
    for event in events:
        for filter_id, where, since in kept.get(event.name or "", ()):
            # An event older than the rows reach (sent late) is left out, as a fill leaves it.
            if (since is None or event.timestamp >= since) and holds(where, event.properties):
                added[filter_id, event.contact_id].append(event.timestamp)
    latest.merge_latest_times(session, _TABLE, _KEY, added)


def sync_filters(
    session: Session, workspace_id: str, wanted: dict[str, WantedFilter], now: datetime
) -> dict[str, list[tuple[int, tuple[PropFilter, ...], datetime | None]]]:
    """Register and fill the wanted filters not kept yet (again from further back, if a
    window wider than the rows' has come), and drop those no longer wanted; return the
    others, by event name, with their ids and how far back their rows reach."""
    tracked = tracked_filters(session, workspace_id)
    gone = [found.id for digest, found in tracked.items() if digest not in wanted]
    if gone:
        session.execute(sa.delete(FILTERED).where(FILTERED.c.filter_id.in_(gone)))
        session.execute(sa.delete(FILTERS).where(FILTERS.c.id.in_(gone)))
    kept: dict[str, list[tuple[int, tuple[PropFilter, ...], datetime | None]]] = defaultdict(list)
    for digest, wanted_since in wanted.items():
        want = replace(wanted_since, since=_reach_back(wanted_since.since))
        found = tracked.get(digest)
        if found is None:
            filter_id = session.execute(
                sa.insert(FILTERS)
                .values(
                    workspace_id=workspace_id,
                    digest=digest,
                    name=want.name,
                    filters=[item.model_dump(mode="json") for item in want.where],
                    since=want.since,
                )
                .returning(FILTERS.c.id)
            ).scalar_one()
            _fill(session, workspace_id, filter_id, want, now)
        elif found.since is not None and (
            wanted_since.since is None or wanted_since.since < found.since
        ):
            # A wider window than the rows were filled for: fill them again from further back.
            session.execute(sa.delete(FILTERED).where(FILTERED.c.filter_id == found.id))
            session.execute(
                sa.update(FILTERS).where(FILTERS.c.id == found.id).values(since=want.since)
            )
            _fill(session, workspace_id, found.id, want, now)
        else:
            kept[want.name].append((found.id, want.where, found.since))
    return kept


def _reach_back(since: datetime | None) -> datetime | None:
    """How far back a filter's rows reach: to the midnight (UTC) a day or more before its
    widest window's start. Windows read from a slightly earlier `now` (a batch's, read just
    before a segment was saved) then still start within the rows, and are not filled again."""
    if since is None:
        return None
    return (since.astimezone(UTC) - timedelta(days=1)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )


def move_filtered_times(
    session: Session, workspace_id: str, merges: Sequence[PlannedMerge], now: datetime
) -> None:
    """After a merge moved the events: the merged and surviving contacts' rows, from their
    events."""
    contacts = sorted({c for merge in merges for c in (merge.merged, merge.survivor)})
    if contacts:
        rebuild_filtered_times(session, workspace_id, now, contacts)


def rebuild_filtered_times(
    session: Session, workspace_id: str, now: datetime, contact_ids: Sequence[int] | None = None
) -> None:
    """The kept filters' rows of `contact_ids` (every contact when None), from their events."""
    rows = session.execute(
        sa.select(FILTERS.c.id, FILTERS.c.name, FILTERS.c.filters, FILTERS.c.since).where(
            FILTERS.c.workspace_id == workspace_id
        )
    ).all()
    if not rows:
        return
    old = [FILTERED.c.filter_id.in_([row.id for row in rows])]
    if contact_ids is not None:
        old.append(FILTERED.c.contact_id.in_(contact_ids))
    session.execute(sa.delete(FILTERED).where(*old))
    for filter_id, name, filters, since in rows:
        where = tuple(PropFilter.model_validate(item) for item in filters)
        _fill(session, workspace_id, filter_id, WantedFilter(name, where, since), now, contact_ids)


def _fill(
    session: Session,
    workspace_id: str,
    filter_id: int,
    want: WantedFilter,
    now: datetime,
    contact_ids: Sequence[int] | None = None,
) -> None:
    """The filter's rows from the stored events (of `contact_ids`, else of every contact)."""
    dialect = session.get_bind().dialect.name
    where: list[sa.ColumnElement[bool]] = [
        EVENTS.c.workspace_id == workspace_id
        if contact_ids is None
        else workspace_check(EVENTS.c.workspace_id, workspace_id),
        EVENTS.c.name == want.name,
        *property_filters(
            want.where,
            EVENTS.c.properties,
            dialect=dialect,
            workspace_id=workspace_id,
            now=now,
            zone=_NO_ZONE,
        ),
    ]
    if want.since is not None:
        where.append(EVENTS.c.timestamp >= want.since)
    if contact_ids is not None:
        where.append(EVENTS.c.contact_id.in_(contact_ids))
    session.execute(
        sa.insert(FILTERED).from_select(
            ["filter_id", "contact_id", *latest.LATEST_COLUMNS],
            latest.latest_times_of(where, key=sa.literal(filter_id, sa.BigInteger())),
        )
    )
