"""Tables of sales handoff: each workspace's handoff rules, the handoffs and what befell them.

A handoff opens when a contact becomes MQL: the lead is assigned to an owner, who is told why
it is hot, and has until `due_at` (the SLA) to accept it (→ SQL) or reject it (→ back to
nurturing). When nobody acts, the handoff escalates to a manager and may pass to another
owner. Every step is a row of `handoff_steps`, which the lead KPIs read.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from sodate.db.base import Base, BigId, JSONDocument


class HandoffState(StrEnum):
    PENDING = "pending"
    """Assigned; waiting for the owner to accept or reject."""
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    CLOSED = "closed"
    """The contact left MQL some other way (moved by hand, merged) before anyone decided."""


class StepKind(StrEnum):
    OPENED = "opened"
    ESCALATED = "escalated"
    REASSIGNED = "reassigned"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    CLOSED = "closed"


class HandoffRules(Base):
    """A workspace's handoff document, and where its reading of stage changes has got to."""

    __tablename__ = "handoff_rules"

    workspace_id: Mapped[str] = mapped_column(
        sa.ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    definition: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    read_changes_to: Mapped[int] = mapped_column(BigId)
    """The last lifecycle change looked at: MQL moves after it open handoffs."""
    last_owners: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    """Round-robin: per owner pool, the user who got the last lead."""
    updated_at: Mapped[datetime]


class Handoff(Base):
    __tablename__ = "handoffs"
    __table_args__ = (
        sa.UniqueConstraint("mql_change_id"),
        sa.Index("ix_handoffs_workspace_id_state", "workspace_id", "state"),
        sa.Index("ix_handoffs_contact_id", "contact_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[str] = mapped_column(sa.ForeignKey("workspaces.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("contacts.id", ondelete="CASCADE"))
    mql_change_id: Mapped[int] = mapped_column(BigId)
    """The lifecycle change to MQL that opened it (one handoff per such change)."""
    state: Mapped[str] = mapped_column(sa.String(16))
    owner_user_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    assigned_by: Mapped[str] = mapped_column(sa.String(32))
    """`assign.N` (the rule that chose the owner pool) or `sales` (every sales user)."""
    opened_at: Mapped[datetime]
    due_at: Mapped[datetime | None]
    """When the owner's time to act runs out (None once decided)."""
    escalations: Mapped[int] = mapped_column(default=0)
    decided_at: Mapped[datetime | None]
    reason: Mapped[str | None] = mapped_column(sa.Text)
    """Why it was rejected."""
    engagement_reset: Mapped[bool] = mapped_column(default=False)


class HandoffStep(Base):
    """Something that happened to a handoff, with whom it concerned and who did it."""

    __tablename__ = "handoff_steps"
    __table_args__ = (sa.Index("ix_handoff_steps_handoff_id_id", "handoff_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    handoff_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("handoffs.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(sa.String(16))
    owner_user_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    """The owner after this step."""
    by_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    by_api_key_id: Mapped[int | None] = mapped_column(BigId)
    at: Mapped[datetime]
