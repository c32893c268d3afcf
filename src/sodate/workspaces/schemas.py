"""Input and output documents of the workspace API."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
)

from sodate.workspaces.roles import Role

TIME_PARAMETER_HELP = (
    "A time with its UTC offset (2026-11-01T09:00:00+09:00), or without one (2026-11-01T09:00,"
    " or 2026-11-01 for its midnight) in the workspace's time zone; years 1000 to 9000"
)


def _not_a_number(value: object) -> object:
    # pydantic reads digits as seconds since 1970: `20261101` would be a day of 1970.
    if isinstance(value, str) and value.strip().lstrip("+-").replace(".", "", 1).isdigit():
        raise ValueError("a date or time such as 2026-11-01 or 2026-11-01T09:00+09:00")
    return value


TimeParameter = Annotated[datetime, BeforeValidator(_not_a_number)]
"""A time in a query parameter: ISO 8601, with or without its offset (`workspace_instant`)."""


class Locale(StrEnum):
    JA = "ja"
    EN = "en"


def _known_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(
            f"unknown time zone {value!r} (use an IANA name such as Asia/Tokyo)"
        ) from exc
    return value


TimeZoneName = Annotated[str, AfterValidator(_known_timezone)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Password = Annotated[str, StringConstraints(min_length=10, max_length=200)]


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class SenderIdentity(Output):
    """Who every marketing email says it is from (特定電子メール法: name, address, contact)."""

    name: str | None
    email: str | None
    postal_address: str | None
    contact: str | None
    complete: bool
    missing: list[str]


class WorkspaceOut(Output):
    id: str
    name: str
    timezone: str
    locale: Locale
    sender: SenderIdentity
    created_at: datetime
    updated_at: datetime


class SenderIdentityPatch(Input):
    name: Text | None = None
    email: EmailStr | None = None
    postal_address: LongText | None = None
    contact: LongText | None = None


class WorkspacePatch(Input):
    name: Text | None = None
    timezone: TimeZoneName | None = None
    locale: Locale | None = None
    sender: SenderIdentityPatch | None = None


class WorkspaceCreate(Input):
    name: Text
    timezone: TimeZoneName = "Asia/Tokyo"
    locale: Locale = Locale.JA


class UserOut(Output):
    id: int
    email: str
    name: str
    role: Role
    is_active: bool
    created_at: datetime
    last_login_at: datetime | None


class UserCreate(Input):
    email: EmailStr
    name: Text
    role: Role
    password: Password


class UserPatch(Input):
    name: Text | None = None
    role: Role | None = None
    password: Password | None = None
    is_active: bool | None = None


class ApiKeyKind(StrEnum):
    ADMIN = "admin"
    TRACKING = "tracking"


class ApiKeyCreate(Input):
    name: Text
    kind: ApiKeyKind = ApiKeyKind.ADMIN
    role: Role | None = Field(
        default=None, description="Role of an admin key (default: marketer). Not for tracking keys."
    )


class ApiKeyOut(Output):
    id: int
    kind: ApiKeyKind
    role: Role | None
    name: str
    hint: str
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The key itself. It is shown only this once.")


class LoginIn(Input):
    email: EmailStr
    password: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    workspace: str | None = Field(
        default=None, description="Workspace id or name; needed only if the email is in several."
    )


class SessionOut(BaseModel):
    workspace_id: str
    user: UserOut | None
    api_key_id: int | None
    role: Role
    csrf_token: str | None = None


class Created(BaseModel):
    """What `workspace create` returns: the workspace and its first two keys."""

    workspace: WorkspaceOut
    admin_key: ApiKeyCreated
    write_key: ApiKeyCreated
