"""Each contact's latest times per event name (`event_latest_times`), kept beside the events.

The pipeline adds a batch's events with `keep_latest_times`: one upsert per contact and name
the batch touches (one execution for them all on PostgreSQL, `upsert_many`), which merges the
new times into the row in the database. Merges rebuild the survivor's rows from its events
(`rebuild_latest_times`), which is also how a table filled by hand (a test, a benchmark's
load) is brought in step. Rows name their event by its number in `event_names` (`name_ids`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from sodate.db.base import epoch_micros
from sodate.db.bulk import fetch_in, upsert_many
from sodate.db.plans import workspace_check
from sodate.events.models import LATEST_KEPT, Event, EventLatestTimes, EventName

EVENTS: sa.Table = Event.__table__  # type: ignore[assignment]
NAMES: sa.Table = EventName.__table__  # type: ignore[assignment]
LATEST: sa.Table = EventLatestTimes.__table__  # type: ignore[assignment]
LATEST_COLUMNS = tuple(f"latest_{rank}" for rank in range(1, LATEST_KEPT + 1))


def _merge_upsert(postgresql: bool, table: str, key: str) -> str:
    """Insert a pair's newest times (sorted, newest first), or merge them into its row of
    `table` (keyed by `key` and the contact).

    The k-th latest of two lists sorted newest first, a and b, is the latest of min(a_i, b_j)
    over i + j = k (a_0 and b_0 being later than anything), so the merge is one expression per
    column and needs no read of the row first. A missing time counts as earlier than any
    (`floor`); a row whose oldest kept time is at or after every new one is left as it is.
    """
    floor = "'-infinity'::timestamptz" if postgresql else str(-(2**63))
    latest, least = ("greatest", "least") if postgresql else ("max", "min")

    def kept(rank: int) -> str:
        return f"coalesce({table}.latest_{rank}, {floor})"

    def new(rank: int) -> str:
        return f"coalesce(excluded.latest_{rank}, {floor})"

    def merged(k: int) -> str:
        terms = [new(k), kept(k)]
        terms += [f"{least}({kept(i)}, {new(k - i)})" for i in range(1, k)]
        return f"nullif({latest}({', '.join(terms)}), {floor})"

    return (
        f"INSERT INTO {table} ({key}, contact_id, "  # noqa: S608 (names only)
        + ", ".join(LATEST_COLUMNS)
        + ") VALUES ("
        + ", ".join("?" * (2 + LATEST_KEPT))
        + f") ON CONFLICT ({key}, contact_id) DO UPDATE SET "
        + ", ".join(f"latest_{k} = {merged(k)}" for k in range(1, LATEST_KEPT + 1))
        + f" WHERE excluded.latest_1 > {kept(LATEST_KEPT)}"
    )


_UPSERTS: dict[tuple[str, bool], str] = {}


def merge_latest_times(
    session: Session,
    table: str,
    key: str,
    times: dict[tuple[int, int], list[datetime]],
) -> None:
    """Merge new times, by (key, contact), into their rows of a table of latest times (this
    one's, or one of its shape keyed by `key`): one upsert a pair (`_merge_upsert`), in one
    driver call."""
    if not times:
        return
    on_postgresql = session.get_bind().dialect.name == "postgresql"
    statement = _UPSERTS.get((table, on_postgresql))
    if statement is None:
        statement = _UPSERTS[table, on_postgresql] = _merge_upsert(on_postgresql, table, key)
    stored = stored_time(session)
    rows: list[tuple[Any, ...]] = []
    for (owner, contact_id), moments in times.items():
        if len(moments) > 1:
            moments = sorted(moments, reverse=True)[:LATEST_KEPT]
        padding = (None,) * (LATEST_KEPT - len(moments))
        rows.append((owner, contact_id, *map(stored, moments), *padding))
    upsert_many(session, statement, rows, types=_LATEST_TYPES)


_LATEST_TYPES = ("bigint", "bigint", *("timestamptz",) * LATEST_KEPT)


def keep_latest_times(
    session: Session, workspace_id: str, events: Iterable[tuple[int, str | None, datetime]]
) -> None:
    """Add stored events (contact, name, time) to their contacts' latest times: one upsert per
    contact and name, which merges in the database (`_merge_upsert`)."""
    added: dict[tuple[str, int], list[datetime]] = defaultdict(list)
    for contact_id, name, moment in events:
        if name:
            added[name, contact_id].append(moment)
    if not added:
        return
    ids = name_ids(session, workspace_id, {name for name, _contact in added})
    merge_latest_times(
        session,
        "event_latest_times",
        "name_id",
        {(ids[name], contact_id): times for (name, contact_id), times in added.items()},
    )


def stored_time(session: Session) -> Callable[[datetime], Any]:
    """An instant as the table stores it (`MicrosecondTime`'s integer on SQLite), which is how
    `latest_rows` gives its times: boundaries converted once compare with them directly."""
    if session.get_bind().dialect.name == "postgresql":
        return lambda moment: moment
    return epoch_micros


def latest_rows(
    session: Session, workspace_id: str, names: Iterable[str], contact_ids: Sequence[int]
) -> list[tuple[str, int, tuple[Any, ...]]]:
    """(name, contact, its latest times newest first, `None` where fewer were made) of the
    contacts' rows for these names; the times as stored (`stored_time`)."""
    wanted = sorted(set(names))
    if not wanted or not contact_ids:
        return []
    query = "SELECT id, name FROM event_names WHERE workspace_id = ? AND name IN"
    named: dict[int, str] = dict(fetch_in(session, query, wanted, (workspace_id,)))
    if not named:
        return []
    return [
        (named[name_id], contact_id, times)
        for name_id, contact_id, times in kept_rows(
            session, "event_latest_times", "name_id", list(named), contact_ids
        )
    ]


def kept_rows(
    session: Session, table: str, key: str, keys: Sequence[int], contact_ids: Sequence[int]
) -> list[tuple[int, int, tuple[Any, ...]]]:
    """(key, contact, its latest times newest first) of the contacts' rows of a table of
    latest times for these keys; the times as stored (`stored_time`)."""
    if not keys or not contact_ids:
        return []
    statement = (
        f"SELECT {key}, contact_id, "  # noqa: S608 (column names and placeholders only)
        + ", ".join(LATEST_COLUMNS)
        + f" FROM {table} WHERE {key} IN ("
        + ", ".join("?" * len(keys))
        + ") AND contact_id IN"
    )
    return [
        (owner, contact_id, tuple(times))
        for owner, contact_id, *times in fetch_in(session, statement, contact_ids, tuple(keys))
    ]


def name_ids(session: Session, workspace_id: str, names: Iterable[str]) -> dict[str, int]:
    """The numbers of the workspace's event names, numbering the new ones."""
    wanted = sorted(set(names))
    query = "SELECT name, id FROM event_names WHERE workspace_id = ? AND name IN"
    found: dict[str, int] = dict(fetch_in(session, query, wanted, (workspace_id,)))
    missing = [name for name in wanted if name not in found]
    if missing:
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert(NAMES) if dialect == "postgresql" else sqlite.insert(NAMES)
        session.execute(
            insert.on_conflict_do_nothing(index_elements=["workspace_id", "name"]),
            [{"workspace_id": workspace_id, "name": name} for name in missing],
        )
        found.update(fetch_in(session, query, missing, (workspace_id,)))
    return found


def rebuild_latest_times(
    session: Session, workspace_id: str, contact_ids: Sequence[int] | None = None
) -> None:
    """Compute the latest times of `contact_ids` (every contact when None) from their events."""
    # For some contacts, their events (the contact index), not the workspace's whole range of
    # the name index.
    where: list[sa.ColumnElement[bool]] = [
        EVENTS.c.workspace_id == workspace_id
        if contact_ids is None
        else workspace_check(EVENTS.c.workspace_id, workspace_id)
    ]
    names = sa.select(NAMES.c.id).where(NAMES.c.workspace_id == workspace_id)
    old: list[sa.ColumnElement[bool]] = [LATEST.c.name_id.in_(names)]
    if contact_ids is not None:
        where.append(EVENTS.c.contact_id.in_(contact_ids))
        old.append(LATEST.c.contact_id.in_(contact_ids))
    session.execute(sa.delete(LATEST).where(*old))
    named = sa.select(EVENTS.c.name).where(*where, EVENTS.c.name.is_not(None), EVENTS.c.name != "")
    name_ids(session, workspace_id, session.execute(named.distinct()).scalars())
    session.execute(
        sa.insert(LATEST).from_select(
            ["name_id", "contact_id", *LATEST_COLUMNS],
            latest_times_of(where),
        )
    )


def latest_times_of(
    where: Sequence[sa.ColumnElement[bool]],
    key: sa.ColumnElement[int] | None = None,
) -> sa.Select[Any]:
    """(name_id, contact_id, latest_1 … latest_5) of the named events `where` selects (their
    names numbered already): ranked newest first per contact and name, the first ranks
    turned into columns, as the table stores them. With `key`, the rows carry it instead of
    the name's number (`where` then selects one name)."""
    timestamp = EVENTS.c.timestamp  # stored as the latest times are (`MicrosecondTime`)
    source: sa.FromClause = EVENTS
    if key is None:
        key = NAMES.c.id
        same = sa.and_(NAMES.c.workspace_id == EVENTS.c.workspace_id, NAMES.c.name == EVENTS.c.name)
        source = EVENTS.join(NAMES, same)
    ranked = (
        sa.select(
            key.label("name_id"),
            EVENTS.c.contact_id,
            timestamp.label("timestamp"),
            sa.func.row_number()
            .over(
                partition_by=(EVENTS.c.contact_id, EVENTS.c.name),
                order_by=EVENTS.c.timestamp.desc(),
            )
            .label("rank"),
        )
        .select_from(source)
        .where(*where)
        .subquery("ranked")
    )
    return (
        sa.select(
            ranked.c.name_id,
            ranked.c.contact_id,
            *(
                sa.type_coerce(
                    sa.func.max(sa.case((ranked.c.rank == rank, ranked.c.timestamp))),
                    LATEST.c[f"latest_{rank}"].type,
                )
                for rank in range(1, LATEST_KEPT + 1)
            ),
        )
        .where(ranked.c.rank <= LATEST_KEPT)
        .group_by(ranked.c.name_id, ranked.c.contact_id)
    )
