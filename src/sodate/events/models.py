"""Tables of the event log: accepted messages awaiting processing, events, daily counts."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from sodate.db.base import Base, BigId, JSONDocument


class InboxRequest(Base):
    """The messages one tracking request delivered, accepted and not yet processed.

    The row is written before the HTTP response, and deleted in the same transaction that
    applies its messages' effects, so a crash between the two can neither lose nor repeat
    them. One row per request keeps accepting cheap; duplicate message ids are dropped when
    the messages are processed.
    """

    __tablename__ = "event_inbox"
    __table_args__ = (sa.Index("ix_event_inbox_workspace_id_id", "workspace_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[str] = mapped_column(sa.ForeignKey("workspaces.id", ondelete="CASCADE"))
    messages: Mapped[str] = mapped_column(sa.Text)
    """A JSON array of the messages as `sodate.events.tracking` normalized them."""
    message_count: Mapped[int]
    received_at: Mapped[datetime]


class Event(Base):
    """A processed event on a contact's timeline.

    `name` is what conditions match on: the event of a `track`, "Page Viewed" and
    "Screen Viewed" for `page` and `screen`, and empty for `identify`, `group` and `alias`.
    """

    __tablename__ = "events"
    __table_args__ = (
        sa.UniqueConstraint("workspace_id", "message_id"),
        sa.Index("ix_events_contact_id_timestamp", "contact_id", "timestamp"),
        # Set-based work asks which contacts did an event (a segment's count, a scoring rule):
        # a range of one name's events in time, holding the contacts, answers it without
        # reading the events table.
        sa.Index(
            "ix_events_workspace_id_name_timestamp",
            "workspace_id",
            "name",
            "timestamp",
            "contact_id",
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[str] = mapped_column(sa.ForeignKey("workspaces.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("contacts.id", ondelete="CASCADE"))
    message_id: Mapped[str] = mapped_column(sa.String(200))
    type: Mapped[str] = mapped_column(sa.String(16))
    name: Mapped[str | None] = mapped_column(sa.String(200))
    properties: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    context: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    timestamp: Mapped[datetime]
    received_at: Mapped[datetime]


class EventDailyCount(Base):
    """How many events of one name a contact had on one day (UTC)."""

    __tablename__ = "event_daily_counts"

    contact_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    workspace_id: Mapped[str] = mapped_column(
        sa.ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    count: Mapped[int]
    first_at: Mapped[datetime]
    last_at: Mapped[datetime]
