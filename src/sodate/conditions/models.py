"""The event filters live segments count, and each contact's latest times of their events
(`sodate.conditions.filtered`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from sodate.db.base import Base, BigId, JSONDocument, UTCDateTime
from sodate.events.models import LatestTimes


class EventFilter(Base):
    """An event name with property filters whose latest times the pipeline keeps per contact.

    `since`: the rows hold every matching event at or after it (all of them when None), so
    they answer counts whose window starts there or later. `digest` identifies the name and
    filters (`sodate.conditions.filtered.filter_digest`)."""

    __tablename__ = "event_filters"
    # Ids never reused: a filter dropped and another registered never share rows.
    __table_args__ = (
        sa.UniqueConstraint("workspace_id", "digest"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[str] = mapped_column(sa.ForeignKey("workspaces.id", ondelete="CASCADE"))
    digest: Mapped[str] = mapped_column(sa.String(64))
    name: Mapped[str] = mapped_column(sa.String(200))
    filters: Mapped[list[dict[str, Any]]] = mapped_column(JSONDocument)
    since: Mapped[datetime | None] = mapped_column(UTCDateTime)


class EventFilterLatestTimes(LatestTimes, Base):
    """A contact's latest times of the events matching one filter, newest first, as
    `event_latest_times` keeps them per name (and, like it, without foreign keys: the pipeline
    writes it for every contact and filter a batch touches)."""

    __tablename__ = "event_filter_latest_times"
    __table_args__ = (
        sa.Index("ix_event_filter_latest_times_contact_id", "contact_id"),
        {"sqlite_with_rowid": False},
    )

    filter_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(BigId, primary_key=True)
