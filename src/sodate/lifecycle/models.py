"""Tables of lifecycle stages: each contact's stage, every change of it, each workspace's rules.

A contact with no row has no stage yet (an anonymous visitor, say). Dormant and churned are
left for inactivity and keep the stage they left (`resume_stage`), so activity brings the
contact back where it was. A *cycle* is one pass of nurturing toward MQL, ended by reaching
it; a contact sent back below MQL (recycled) begins a new one, and only a threshold reached
after that makes it MQL again.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from sodate.db.base import Base, BigId, JSONDocument


class Stage(StrEnum):
    SUBSCRIBER = "subscriber"
    LEAD = "lead"
    MQL = "mql"
    SQL = "sql"
    OPPORTUNITY = "opportunity"
    CUSTOMER = "customer"
    DORMANT = "dormant"
    CHURNED = "churned"


PROGRESSION: tuple[Stage, ...] = (
    Stage.SUBSCRIBER,
    Stage.LEAD,
    Stage.MQL,
    Stage.SQL,
    Stage.OPPORTUNITY,
    Stage.CUSTOMER,
)
"""The ordered stages; rules only ever move a contact forward along them."""

INACTIVE: tuple[Stage, ...] = (Stage.DORMANT, Stage.CHURNED)
NURTURING: tuple[Stage, ...] = (Stage.SUBSCRIBER, Stage.LEAD)
"""The stages a score threshold lifts to MQL."""


class ChangeSource(StrEnum):
    RULE = "rule"
    """A rule of the workspace's lifecycle document (named in `rule`)."""
    USER = "user"
    """A person signed in to Sodate."""
    API = "api"
    """A call with an API key."""


class ContactStage(Base):
    __tablename__ = "contact_stages"
    __table_args__ = (sa.Index("ix_contact_stages_workspace_id_stage", "workspace_id", "stage"),)

    contact_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[str] = mapped_column(sa.String(32))
    stage: Mapped[str] = mapped_column(sa.String(16))
    since: Mapped[datetime]
    resume_stage: Mapped[str | None] = mapped_column(sa.String(16))
    """Dormant or churned: the stage activity brings the contact back to."""
    cycle_started_at: Mapped[datetime | None]
    """When the contact was last sent back below MQL; None: never."""


class LifecycleChange(Base):
    """A contact moved from one stage to another: what journeys trigger on and KPIs count."""

    __tablename__ = "lifecycle_changes"
    __table_args__ = (
        sa.Index("ix_lifecycle_changes_contact_id_id", "contact_id", "id"),
        sa.Index("ix_lifecycle_changes_workspace_id_id", "workspace_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[str] = mapped_column(sa.String(32))
    contact_id: Mapped[int] = mapped_column(BigId)
    from_stage: Mapped[str | None] = mapped_column(sa.String(16))
    to_stage: Mapped[str] = mapped_column(sa.String(16))
    source: Mapped[str] = mapped_column(sa.String(8))
    rule: Mapped[str | None] = mapped_column(sa.String(32))
    """For `rule`: which one (`lead`, `mql`, `dormant`, `reactivated`, …)."""
    user_id: Mapped[int | None] = mapped_column(BigId)
    api_key_id: Mapped[int | None] = mapped_column(BigId)
    reason: Mapped[str | None] = mapped_column(sa.Text)
    at: Mapped[datetime]


class LifecycleRules(Base):
    """A workspace's lifecycle document, as saved."""

    __tablename__ = "lifecycle_rules"

    workspace_id: Mapped[str] = mapped_column(
        sa.ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    definition: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    updated_at: Mapped[datetime]
