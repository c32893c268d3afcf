"""Who is calling: API keys, password sign-in and browser sessions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sodate.errors import Forbidden, InvalidInput, Unauthorized
from sodate.workspaces import secrets
from sodate.workspaces.models import ApiKey, User, WebSession, Workspace
from sodate.workspaces.roles import Permission, Role, has_permission
from sodate.workspaces.schemas import ApiKeyKind


@dataclass(frozen=True)
class Principal:
    """An authenticated caller, always inside exactly one workspace."""

    workspace_id: str
    role: Role
    user_id: int | None = None
    api_key_id: int | None = None
    csrf_token: str | None = None

    @property
    def via_session(self) -> bool:
        return self.csrf_token is not None

    def require(self, permission: Permission) -> None:
        if not has_permission(self.role, permission):
            raise Forbidden(f"the role {self.role.value} may not do this ({permission.value})")


@dataclass(frozen=True)
class WriteKeyOwner:
    workspace_id: str
    api_key_id: int


def authenticate_admin_key(session: Session, key: str) -> Principal:
    api_key = _active_key(session, key)
    if api_key is None or api_key.kind != ApiKeyKind.ADMIN.value or api_key.role is None:
        raise Unauthorized("invalid or revoked API key")
    return Principal(
        workspace_id=api_key.workspace_id, role=Role(api_key.role), api_key_id=api_key.id
    )


def authenticate_write_key(session: Session, key: str) -> WriteKeyOwner:
    api_key = _active_key(session, key)
    if api_key is None or api_key.kind != ApiKeyKind.TRACKING.value:
        raise Unauthorized("invalid or revoked write key")
    return WriteKeyOwner(workspace_id=api_key.workspace_id, api_key_id=api_key.id)


def _active_key(session: Session, key: str) -> ApiKey | None:
    query = sa.select(ApiKey).where(
        ApiKey.key_hash == secrets.digest(key), ApiKey.revoked_at.is_(None)
    )
    return session.scalar(query)


MAX_WORKSPACES_PER_EMAIL = 10


@dataclass(frozen=True)
class SignedIn:
    token: str
    principal: Principal
    expires_at: datetime


def sign_in(
    session: Session,
    *,
    email: str,
    password: str,
    workspace: str | None,
    now: datetime,
    ttl: timedelta,
) -> SignedIn:
    query = sa.select(User).where(User.email == email.lower(), User.is_active.is_(True))
    if workspace is not None:
        query = query.join(Workspace, Workspace.id == User.workspace_id).where(
            sa.or_(Workspace.id == workspace, Workspace.name == workspace)
        )
    candidates = session.scalars(query.limit(MAX_WORKSPACES_PER_EMAIL)).all()
    # Check the password before saying anything about the account, and against a dummy hash
    # when there is none, so neither the answer nor its timing tells whether the email exists.
    matching = [u for u in candidates if secrets.verify_password(u.password_hash, password)]
    if not candidates:
        secrets.verify_password(None, password)
    if len(matching) > 1:
        raise InvalidInput("this email belongs to several workspaces: name the workspace")
    if not matching:
        raise Unauthorized("wrong email or password")
    user = matching[0]
    token = secrets.new_token()
    web_session = WebSession(
        token_hash=secrets.digest(token),
        user_id=user.id,
        workspace_id=user.workspace_id,
        csrf_token=secrets.new_token(),
        created_at=now,
        expires_at=now + ttl,
    )
    user.last_login_at = now
    session.add(web_session)
    session.flush()
    return SignedIn(
        token=token,
        principal=_session_principal(web_session, user),
        expires_at=web_session.expires_at,
    )


def authenticate_session(session: Session, token: str, *, now: datetime) -> Principal:
    row = session.execute(
        sa.select(WebSession, User)
        .join(User, User.id == WebSession.user_id)
        .where(
            WebSession.token_hash == secrets.digest(token),
            WebSession.expires_at > now,
            User.is_active.is_(True),
        )
    ).first()
    if row is None:
        raise Unauthorized("not signed in or the session has expired")
    web_session, user = row
    return _session_principal(web_session, user)


def _session_principal(web_session: WebSession, user: User) -> Principal:
    return Principal(
        workspace_id=web_session.workspace_id,
        role=Role(user.role),
        user_id=user.id,
        csrf_token=web_session.csrf_token,
    )


def sign_out(session: Session, token: str) -> None:
    session.execute(sa.delete(WebSession).where(WebSession.token_hash == secrets.digest(token)))


def delete_expired_sessions(session: Session, *, now: datetime) -> int:
    result = session.execute(sa.delete(WebSession).where(WebSession.expires_at <= now))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
