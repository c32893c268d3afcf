"""Tables of the event log: accepted messages awaiting processing, events, daily counts, and
each contact's latest times per event name.

The tables the pipeline writes for every event, or every contact and name (events, daily
counts, latest times), have no foreign keys: on PostgreSQL each referencing row paid a
reference check that locks the contact's row, a third of processing. Their ids come from the
pipeline itself, and whatever deletes a contact or workspace deletes these rows too
(`sodate/events/README.md`)."""

from __future__ import annotations

from datetime import date, datetime
from hashlib import sha256
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from sodate.db.base import (
    NAMING_CONVENTION,
    Base,
    BigId,
    JSONDocument,
    MicrosecondTime,
    UTCDateTime,
)

NO_MESSAGE_KEY = 0
"""The key of an event whose message id nobody can send again (`BatchEvent.keyed`): the
index of keys leaves such events out."""


def message_key(message_id: str) -> int:
    """A message id's hash: the first 8 bytes of its SHA-256, as a signed 64-bit integer;
    never `NO_MESSAGE_KEY` (a hash of 0 counts as 1).

    Two ids may share a key; lookups compare the ids themselves. SHA-256 because PostgreSQL
    computes it too (migration 0014 fills the keys of stored events in SQL).
    """
    key = _KEYS.get(message_id)
    if key is None:
        if len(_KEYS) >= _KEPT_KEYS:
            _KEYS.clear()
        hashed = int.from_bytes(sha256(message_id.encode()).digest()[:8], "big", signed=True)
        key = _KEYS[message_id] = hashed or 1
    return key


# A batch asks for each message's key twice (its look-up of stored messages, then its insert):
# the second is a look-up (0.02 µs) instead of a hash (0.5 µs).
_KEYS: dict[str, int] = {}
_KEPT_KEYS = 65_536


def _message_key_default(context: Any) -> int:
    return message_key(context.get_current_parameters()["message_id"])


class InboxBase(DeclarativeBase):
    """The inbox's table, apart from the rest: on SQLite it lives in a database file of its own
    (`sodate.events.inbox`), on PostgreSQL in the database with everything else."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: dict[Any, Any] = {datetime: UTCDateTime()}  # noqa: RUF012


class InboxRequest(InboxBase):
    """The messages one tracking request delivered, accepted and not yet processed.

    The row is written before the HTTP response and deleted by the transaction that applies
    its messages' effects, or, on SQLite, whose inbox is a file of its own, once that
    transaction has committed. A crash between the two leaves it to be read again, and its
    messages are then dropped as already processed (their ids are stored with the events), so
    nothing is lost or applied twice. One row per request keeps accepting cheap.
    The workspace is not a foreign key: on SQLite the workspaces live in another file.
    """

    __tablename__ = "event_inbox"
    __table_args__ = (
        # Holds the message count: a request's messages are a long text that SQLite keeps in
        # a chain of overflow pages, and a column stored after them is read only by walking
        # the chain, so choosing a batch by counts from the table read every waiting request.
        sa.Index("ix_event_inbox_workspace_id_id_count", "workspace_id", "id", "message_count"),
        # Ids are never used again on SQLite either: a processor deletes its requests after
        # its commit, and must not delete a new request that took a freed id meanwhile.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[str] = mapped_column(sa.String(32))
    messages: Mapped[str] = mapped_column(sa.Text)
    """A JSON array of the messages as `sodate.events.tracking` normalized them."""
    message_count: Mapped[int]
    received_at: Mapped[datetime]


class Event(Base):
    """A processed event on a contact's timeline.

    `name` is what conditions match on: the event of a `track`, "Page Viewed" and
    "Screen Viewed" for `page` and `screen`, and empty for `identify`, `group` and `alias`.

    Its times are integers of microseconds on SQLite (`MicrosecondTime`, migration 0029):
    the time is in two of the indexes, and 26 bytes of text made each entry twice the size.
    """

    __tablename__ = "events"
    __table_args__ = (
        # The message id's own index: a hash of 8 bytes keeps it a fifth of the size of one
        # of (workspace, message id) text, and cheaper to insert into at random. Without the
        # events whose ids nobody sends again: an import's identify events, one a row, would
        # otherwise be an insert at random each.
        sa.Index(
            "ix_events_message_key",
            "message_key",
            sqlite_where=sa.text("message_key <> 0"),
            postgresql_where=sa.text("message_key <> 0"),
        ),
        sa.Index("ix_events_contact_id_timestamp", "contact_id", "timestamp"),
        # Set-based work asks which contacts did an event (a segment's count, a scoring rule):
        # a range of one name's events in time, holding the contacts, answers it without
        # reading the events table. Events without a name (identify, group, alias) are never
        # asked about by name: they stay out, so an import's rows, one identify event each,
        # do not pay for an entry.
        sa.Index(
            "ix_events_workspace_id_name_timestamp",
            "workspace_id",
            "name",
            "timestamp",
            "contact_id",
            sqlite_where=sa.text("name IS NOT NULL"),
            postgresql_where=sa.text("name IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[str] = mapped_column(sa.String(32))
    contact_id: Mapped[int] = mapped_column(BigId)
    message_id: Mapped[str] = mapped_column(sa.String(200))
    message_key: Mapped[int] = mapped_column(sa.BigInteger, default=_message_key_default)
    """`message_id`'s hash (`message_key`), by which it is looked up; `NO_MESSAGE_KEY` for
    the ids Sodate makes up for profile edits (imports, the API), which are never looked up.

    A message id is unique in its workspace because only the workspace's processor inserts
    events and it drops the ids already stored (`stored_message_ids`), not by a constraint."""
    type: Mapped[str] = mapped_column(sa.String(16))
    name: Mapped[str | None] = mapped_column(sa.String(200))
    properties: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    context: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    timestamp: Mapped[datetime] = mapped_column(MicrosecondTime)
    received_at: Mapped[datetime] = mapped_column(MicrosecondTime)


class EventDailyCount(Base):
    """How many events of one name a contact had on one day (UTC)."""

    __tablename__ = "event_daily_counts"
    # SQLite: the table is its primary key's tree, not a rowid's (migration 0026). Nothing
    # reads the counts by workspace (migration 0027): a contact's rows begin its key.
    __table_args__ = ({"sqlite_with_rowid": False},)

    contact_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    workspace_id: Mapped[str] = mapped_column(sa.String(32))
    count: Mapped[int]
    first_at: Mapped[datetime] = mapped_column(MicrosecondTime)
    last_at: Mapped[datetime] = mapped_column(MicrosecondTime)


class EventName(Base):
    """An event name a workspace has seen, numbered: tables kept per contact and name hold the
    number, which identifies the workspace too, rather than both texts on every row."""

    __tablename__ = "event_names"
    __table_args__ = (sa.UniqueConstraint("workspace_id", "name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[str] = mapped_column(sa.ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(sa.String(200))


LATEST_KEPT = 5
"""How many of a contact's latest times per event name `event_latest_times` keeps."""


class LatestTimes:
    """The times a table of latest times keeps for a contact, newest first: `LATEST_KEPT`
    columns of 8 bytes (`MicrosecondTime`), as `sodate.events.latest` merges them."""

    latest_1: Mapped[datetime] = mapped_column(MicrosecondTime)
    latest_2: Mapped[datetime | None] = mapped_column(MicrosecondTime)
    latest_3: Mapped[datetime | None] = mapped_column(MicrosecondTime)
    latest_4: Mapped[datetime | None] = mapped_column(MicrosecondTime)
    latest_5: Mapped[datetime | None] = mapped_column(MicrosecondTime)


class EventLatestTimes(LatestTimes, Base):
    """A contact's `LATEST_KEPT` latest event times of one name, newest first (`latest_1`).

    Set-based conditions read it instead of grouping events: a contact has at least k events
    of a name since a moment only if its k-th latest time is at or after that moment, so one
    row per contact answers "at least 3 page views in 30 days" where counting would group a
    million events. When no time kept is after now, the row is the exact answer for k up to
    `LATEST_KEPT` (`sodate.conditions.sql`). Kept by the event pipeline beside the daily
    counts (`sodate.events.latest`), and rebuilt from the events on merges.

    The pipeline rewrites a row for each contact and name a batch touches, so the row is
    small: the name's number (`event_names`, which also scopes it to the workspace) and
    times of 8 bytes (`MicrosecondTime`). A name's rows lie side by side, so that a condition
    reads one range; on SQLite they live in the key's own b-tree (no rowid).
    """

    __tablename__ = "event_latest_times"
    __table_args__ = (
        sa.Index("ix_event_latest_times_contact_id", "contact_id"),
        {"sqlite_with_rowid": False},
    )

    name_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(BigId, primary_key=True)
