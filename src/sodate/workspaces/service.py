"""Workspaces, users and API keys. Functions take the session, flush, and never commit."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sodate.errors import Conflict, Forbidden, InvalidInput, NotFound
from sodate.workspaces import secrets
from sodate.workspaces.models import ApiKey, User, WebSession, Workspace
from sodate.workspaces.roles import Role, may_grant
from sodate.workspaces.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyKind,
    ApiKeyOut,
    Created,
    Locale,
    SenderIdentity,
    UserCreate,
    UserPatch,
    WorkspaceCreate,
    WorkspaceOut,
    WorkspacePatch,
)

SENDER_FIELDS = ("name", "email", "postal_address", "contact")
QUERY_YEARS = range(1000, 9001)
"""The years a time in a query may name (as the condition language's dates). Near either end
of the calendar, moving it to UTC (year 1 in Tokyo is year 0 there) or a caller moving it by
a span (a report's default period) would fall off the calendar."""


def create_workspace(session: Session, data: WorkspaceCreate, *, now: datetime) -> Workspace:
    if session.scalar(sa.select(Workspace.id).where(Workspace.name == data.name)) is not None:
        raise Conflict(f"a workspace named {data.name!r} already exists")
    workspace = Workspace(
        name=data.name,
        timezone=data.timezone,
        locale=data.locale.value,
        created_at=now,
        updated_at=now,
    )
    session.add(workspace)
    session.flush()
    return workspace


def create_workspace_with_keys(
    session: Session, data: WorkspaceCreate, *, now: datetime
) -> Created:
    """A new workspace with an owner-role admin key and a tracking write key."""
    workspace = create_workspace(session, data, now=now)
    admin_key = create_api_key(
        session,
        workspace.id,
        ApiKeyCreate(name="Initial admin key", kind=ApiKeyKind.ADMIN, role=Role.OWNER),
        granter=Role.OWNER,
        now=now,
    )
    write_key = create_api_key(
        session,
        workspace.id,
        ApiKeyCreate(name="Initial write key", kind=ApiKeyKind.TRACKING),
        granter=Role.OWNER,
        now=now,
    )
    return Created(workspace=workspace_out(workspace), admin_key=admin_key, write_key=write_key)


def list_workspaces(session: Session) -> list[Workspace]:
    return list(session.scalars(sa.select(Workspace).order_by(Workspace.created_at)))


def get_workspace(session: Session, workspace_id: str) -> Workspace:
    workspace = session.get(Workspace, workspace_id)
    if workspace is None:
        raise NotFound("workspace not found")
    return workspace


def workspace_zone(session: Session, workspace_id: str) -> ZoneInfo:
    """The workspace's time zone: its calendar, and contacts' where they have none."""
    return ZoneInfo(get_workspace(session, workspace_id).timezone)


def workspace_instant(
    session: Session, workspace_id: str, value: datetime, *, parameter: str
) -> datetime:
    """A time a user gave in the query parameter `parameter`, as an instant in UTC: without an
    offset (a date alone, `2026-11-01`, is its midnight) it is read in the workspace's time
    zone, as the person who typed it meant. Of a wall time that comes twice (the clocks going
    back), the first; one the clocks skipped (going forward) is refused, as no instant is it.
    So is one outside `QUERY_YEARS`.
    """
    if value.year not in QUERY_YEARS:
        raise InvalidInput(
            f"{parameter}: {value.isoformat()} is out of range: use a year from"
            f" {QUERY_YEARS.start} to {QUERY_YEARS.stop - 1}",
            details=[
                {
                    "loc": ["query", parameter],
                    "msg": f"a year from {QUERY_YEARS.start} to {QUERY_YEARS.stop - 1}",
                    "type": "time",
                }
            ],
        )
    if value.tzinfo is not None:
        return value.astimezone(UTC)
    zone = workspace_zone(session, workspace_id)
    instant = value.replace(tzinfo=zone).astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) != value:
        raise InvalidInput(
            f"{parameter}: {value.isoformat()} did not happen in {zone.key} (the clocks skipped"
            " it); give the time with its UTC offset",
            details=[
                {"loc": ["query", parameter], "msg": "a time the clocks skipped", "type": "time"}
            ],
        )
    return instant


def resolve_workspace(session: Session, reference: str | None) -> Workspace:
    """Find a workspace by id or name; with no reference, the only workspace there is."""
    if reference is None:
        workspaces = session.scalars(sa.select(Workspace).limit(2)).all()
        if len(workspaces) == 1:
            return workspaces[0]
        if not workspaces:
            raise NotFound(
                "there is no workspace yet: create one with `sodate workspace create NAME`"
            )
        raise InvalidInput("there are several workspaces: name one with --workspace")
    workspace = session.scalar(
        sa.select(Workspace).where(sa.or_(Workspace.id == reference, Workspace.name == reference))
    )
    if workspace is None:
        raise NotFound(f"no workspace with id or name {reference!r}")
    return workspace


def update_workspace(
    session: Session, workspace_id: str, patch: WorkspacePatch, *, now: datetime
) -> Workspace:
    workspace = get_workspace(session, workspace_id)
    if patch.name is not None and patch.name != workspace.name:
        taken = session.scalar(sa.select(Workspace.id).where(Workspace.name == patch.name))
        if taken is not None:
            raise Conflict(f"a workspace named {patch.name!r} already exists")
        workspace.name = patch.name
    if patch.timezone is not None:
        workspace.timezone = patch.timezone
    if patch.locale is not None:
        workspace.locale = patch.locale.value
    if patch.sender is not None:
        for field in patch.sender.model_fields_set:
            value = getattr(patch.sender, field)
            setattr(workspace, f"sender_{field}", str(value) if value is not None else None)
    workspace.updated_at = now
    session.flush()
    return workspace


def workspace_out(workspace: Workspace) -> WorkspaceOut:
    values = {field: getattr(workspace, f"sender_{field}") for field in SENDER_FIELDS}
    missing = [field for field, value in values.items() if not value]
    return WorkspaceOut(
        id=workspace.id,
        name=workspace.name,
        timezone=workspace.timezone,
        locale=Locale(workspace.locale),
        sender=SenderIdentity(**values, complete=not missing, missing=missing),
        created_at=workspace.created_at,
        updated_at=workspace.updated_at,
    )


def list_users(session: Session, workspace_id: str) -> list[User]:
    query = sa.select(User).where(User.workspace_id == workspace_id).order_by(User.id)
    return list(session.scalars(query))


def get_user(session: Session, workspace_id: str, user_id: int) -> User:
    user = session.scalar(
        sa.select(User).where(User.workspace_id == workspace_id, User.id == user_id)
    )
    if user is None:
        raise NotFound("user not found")
    return user


def create_user(
    session: Session, workspace_id: str, data: UserCreate, *, granter: Role, now: datetime
) -> User:
    _check_grant(granter, data.role)
    email = data.email.lower()
    exists = session.scalar(
        sa.select(User.id).where(User.workspace_id == workspace_id, User.email == email)
    )
    if exists is not None:
        raise Conflict(f"a user with email {email} already exists in this workspace")
    user = User(
        workspace_id=workspace_id,
        email=email,
        name=data.name,
        role=data.role.value,
        password_hash=secrets.hash_password(data.password),
        is_active=True,
        created_at=now,
    )
    session.add(user)
    session.flush()
    return user


def update_user(
    session: Session, workspace_id: str, user_id: int, patch: UserPatch, *, granter: Role
) -> User:
    user = get_user(session, workspace_id, user_id)
    _check_grant(granter, Role(user.role))
    if patch.role is not None:
        _check_grant(granter, patch.role)
    losing_owner = (
        user.role == Role.OWNER
        and user.is_active
        and ((patch.role is not None and patch.role != Role.OWNER) or patch.is_active is False)
    )
    if losing_owner and _active_owner_count(session, workspace_id) <= 1:
        raise Conflict("a workspace keeps at least one active owner")
    if patch.name is not None:
        user.name = patch.name
    if patch.role is not None:
        user.role = patch.role.value
    if patch.password is not None:
        user.password_hash = secrets.hash_password(patch.password)
    if patch.is_active is not None:
        user.is_active = patch.is_active
    if patch.is_active is False or patch.password is not None:
        # Deactivation or a new password ends every session: reactivation must not revive
        # them, and a password changed after a theft must lock the thief out.
        session.execute(sa.delete(WebSession).where(WebSession.user_id == user.id))
    session.flush()
    return user


def _active_owner_count(session: Session, workspace_id: str) -> int:
    # Lock the owners' rows so two owners demoting each other at once cannot both succeed.
    owners = (
        sa.select(User.id)
        .where(
            User.workspace_id == workspace_id,
            User.role == Role.OWNER.value,
            User.is_active.is_(True),
        )
        .with_for_update()
    )
    return len(session.scalars(owners).all())


def _check_grant(granter: Role, role: Role) -> None:
    if not may_grant(granter, role):
        raise Forbidden(f"a {granter.value} may not grant or change the role {role.value}")


def create_api_key(
    session: Session, workspace_id: str, data: ApiKeyCreate, *, granter: Role, now: datetime
) -> ApiKeyCreated:
    if data.kind is ApiKeyKind.TRACKING:
        if data.role is not None:
            raise InvalidInput(
                "a tracking key has no role",
                details=[{"loc": ["role"], "msg": "must be empty", "type": "value"}],
            )
        role = None
        prefix = secrets.WRITE_KEY_PREFIX
    else:
        role = data.role or Role.MARKETER
        _check_grant(granter, role)
        prefix = secrets.ADMIN_KEY_PREFIX
    plaintext = secrets.new_api_key(prefix)
    api_key = ApiKey(
        workspace_id=workspace_id,
        kind=data.kind.value,
        role=role.value if role else None,
        name=data.name,
        key_hash=secrets.digest(plaintext),
        hint=secrets.key_hint(plaintext),
        created_at=now,
    )
    session.add(api_key)
    session.flush()
    return ApiKeyCreated(**ApiKeyOut.model_validate(api_key).model_dump(), key=plaintext)


def list_api_keys(session: Session, workspace_id: str) -> list[ApiKey]:
    query = sa.select(ApiKey).where(ApiKey.workspace_id == workspace_id).order_by(ApiKey.id)
    return list(session.scalars(query))


def revoke_api_key(
    session: Session, workspace_id: str, key_id: int, *, granter: Role, now: datetime
) -> ApiKey:
    api_key = session.scalar(
        sa.select(ApiKey).where(ApiKey.workspace_id == workspace_id, ApiKey.id == key_id)
    )
    if api_key is None:
        raise NotFound("API key not found")
    if api_key.role is not None:
        _check_grant(granter, Role(api_key.role))
    if api_key.revoked_at is None:
        api_key.revoked_at = now
        session.flush()
    return api_key
