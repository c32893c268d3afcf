"""Tables of segments, their members, and every entry and exit."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from sodate.db.base import Base, BigId, JSONDocument


class SegmentKind(StrEnum):
    DYNAMIC = "dynamic"
    """Members are the contacts that satisfy the condition, kept up to date."""
    STATIC = "static"
    """Members are added and removed by hand (API, CSV)."""


class ChangeCause(StrEnum):
    SAVED = "saved"
    """The segment was created or its condition changed."""
    EVENT = "event"
    """Events or profile changes of the contact, processed in real time."""
    TIME = "time"
    """Time passed (a window moved, a date came): the sweep found it."""
    API = "api"
    MERGE = "merge"
    MODEL = "model"
    """A scoring model the condition reads was saved, and everyone rescored."""
    STAGE = "stage"
    """Lifecycle stages the condition reads changed outside event processing (by hand, by
    saved lifecycle rules, by inactivity)."""
    CONSENT = "consent"
    """A consent the condition reads was given or withdrawn."""


class Segment(Base):
    __tablename__ = "segments"
    __table_args__ = (sa.UniqueConstraint("workspace_id", "key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[str] = mapped_column(sa.ForeignKey("workspaces.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(sa.String(100))
    name: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str | None] = mapped_column(sa.Text)
    kind: Mapped[str] = mapped_column(sa.String(16))
    condition: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    time_dependent: Mapped[bool]
    """Its condition reads the clock (a window, a relative date), so the sweep recomputes it."""
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    computed_at: Mapped[datetime | None]
    """When its members were last recomputed from the condition as a whole."""


class SegmentMember(Base):
    __tablename__ = "segment_members"
    # With the segment, a contact's memberships are read from the index alone. On SQLite the
    # table is its primary key's tree, not a rowid's (migration 0026).
    __table_args__ = (
        sa.Index("ix_segment_members_contact_id_segment_id", "contact_id", "segment_id"),
        {"sqlite_with_rowid": False},
    )

    segment_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("segments.id", ondelete="CASCADE"), primary_key=True
    )
    contact_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[str] = mapped_column(sa.String(32))
    since: Mapped[datetime]


class SegmentChange(Base):
    """A contact entered or left a segment: what journeys trigger on and analytics count."""

    __tablename__ = "segment_changes"
    # Read by segment, in order (its changes' page; what journeys will trigger on). Every
    # index is written for each change, and a batch that brings new contacts records a dozen
    # changes for each: an index by contact or by workspace waits for a reader that needs it.
    __table_args__ = (sa.Index("ix_segment_changes_segment_id_id", "segment_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[str] = mapped_column(sa.String(32))
    segment_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("segments.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(BigId)
    entered: Mapped[bool]
    """True for an entry, False for an exit."""
    cause: Mapped[str] = mapped_column(sa.String(16))
    at: Mapped[datetime]
