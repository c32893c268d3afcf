"""Tables of consent: every grant and withdrawal with its proof, and each contact's consent now.

A record is never changed or deleted (but with its contact): it is the proof Japan's
特定電子メール法 and the GDPR ask for (who, when, the text shown, from which address). A
contact's consent now is the latest record of each channel and purpose, kept as one row so
that conditions read it without going through the records.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from sodate.db.base import Base, BigId


class Channel(StrEnum):
    """The channels whose marketing messages need the person's consent."""

    EMAIL = "email"
    SMS = "sms"
    PUSH = "push"
    LINE = "line"


DEFAULT_PURPOSE = "marketing"
"""The purpose a consent is for when none is named: marketing messages on the channel."""


class ConsentSource(StrEnum):
    USER = "user"
    """A person signed in to Sodate recorded it."""
    API = "api"
    """A call with an API key recorded it."""


class ConsentRecord(Base):
    """One grant or withdrawal of consent, with its proof."""

    __tablename__ = "consent_records"
    # Read by contact (its proof), and by workspace (every opt-in record, for an audit).
    __table_args__ = (
        sa.Index("ix_consent_records_contact_id_id", "contact_id", "id"),
        sa.Index("ix_consent_records_workspace_id_id", "workspace_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[str] = mapped_column(sa.ForeignKey("workspaces.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(BigId)
    channel: Mapped[str] = mapped_column(sa.String(16))
    purpose: Mapped[str] = mapped_column(sa.String(100))
    granted: Mapped[bool]
    at: Mapped[datetime]
    """When the person gave or withdrew it (as told; the time it was recorded if not)."""
    text: Mapped[str | None] = mapped_column(sa.Text)
    """The words the person agreed to or withdrew from, as shown to them."""
    ip: Mapped[str | None] = mapped_column(sa.String(45))
    """The address the person's request came from."""
    source: Mapped[str] = mapped_column(sa.String(8))
    user_id: Mapped[int | None] = mapped_column(BigId)
    api_key_id: Mapped[int | None] = mapped_column(BigId)
    recorded_at: Mapped[datetime]


class ContactConsent(Base):
    """A contact's consent now for one channel and purpose: its latest record's."""

    __tablename__ = "contact_consents"
    # The SQL evaluator asks which contacts of a workspace hold one consent.
    __table_args__ = (
        sa.Index(
            "ix_contact_consents_workspace_id_channel_purpose_granted",
            "workspace_id",
            "channel",
            "purpose",
            "granted",
        ),
    )

    contact_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    purpose: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(sa.String(32))
    granted: Mapped[bool]
    since: Mapped[datetime]
    record_id: Mapped[int] = mapped_column(BigId)
