"""Consent as given to the API and as shown."""

from __future__ import annotations

from datetime import datetime
from ipaddress import IPv4Address, IPv6Address
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from sodate.consents.models import DEFAULT_PURPOSE, Channel

Purpose = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
]
"""What consent is for (`marketing`, `newsletter`, …): a key, as the API and conditions take it."""


class ConsentIn(BaseModel):
    """`POST /api/v1/contacts/{id}/consents`: the person gave (`granted: true`) or withdrew
    consent to messages on a channel for a purpose, with the proof of it."""

    model_config = ConfigDict(extra="forbid")

    channel: Channel
    purpose: Purpose = Field(
        DEFAULT_PURPOSE, description="What the messages are for; `marketing` if not named."
    )
    granted: bool
    at: AwareDatetime | None = Field(
        None, description="When the person gave or withdrew it; now if not given. Not later."
    )
    text: str | None = Field(None, max_length=10_000, description="The text shown to the person.")
    ip: IPv4Address | IPv6Address | None = Field(
        None, description="The address the person's request came from."
    )


class ConsentOut(BaseModel):
    """A contact's consent now for one channel and purpose."""

    channel: str
    purpose: str
    granted: bool
    since: datetime


class ConsentRecordOut(BaseModel):
    """One grant or withdrawal, with its proof."""

    id: int
    contact_id: int
    channel: str
    purpose: str
    granted: bool
    at: datetime
    text: str | None
    ip: str | None
    source: str
    user_id: int | None
    api_key_id: int | None
    recorded_at: datetime


class ConsentRecordPage(BaseModel):
    items: list[ConsentRecordOut]
    next_cursor: int | None
