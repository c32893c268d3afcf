"""FastAPI dependencies shared by every capability's routes: runtime, caller, permission."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from sodate.errors import Forbidden, Unauthorized
from sodate.runtime import Runtime
from sodate.workspaces import auth
from sodate.workspaces.auth import Principal
from sodate.workspaces.roles import Permission
from sodate.workspaces.secrets import same

SESSION_COOKIE = "sodate_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_bearer = HTTPBearer(auto_error=False, description="An admin API key: `Authorization: Bearer sk_…`")
_cookie = APIKeyCookie(
    name=SESSION_COOKIE, auto_error=False, description="A signed-in browser session"
)


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


@dataclass(frozen=True)
class Caller:
    """The runtime and the authenticated principal of one request."""

    runtime: Runtime
    principal: Principal

    @property
    def workspace_id(self) -> str:
        return self.principal.workspace_id

    def now(self) -> datetime:
        return self.runtime.clock.now()


def authenticate(
    request: Request,
    runtime: Runtime = Depends(get_runtime),
    bearer: HTTPAuthorizationCredentials | None = Depends(_bearer),
    cookie: str | None = Depends(_cookie),
) -> Principal:
    with runtime.db.read() as session:
        if bearer is not None:
            principal = auth.authenticate_admin_key(session, bearer.credentials)
        elif cookie:
            principal = auth.authenticate_session(session, cookie, now=runtime.clock.now())
            if request.method not in SAFE_METHODS:
                _check_csrf(request, principal)
        else:
            raise Unauthorized("authentication required: send `Authorization: Bearer <API key>`")
    request.state.workspace_id = principal.workspace_id
    return principal


def _check_csrf(request: Request, principal: Principal) -> None:
    sent = request.headers.get(CSRF_HEADER, "")
    if not sent or principal.csrf_token is None or not same(sent, principal.csrf_token):
        raise Forbidden(f"missing or wrong {CSRF_HEADER} header for a cookie-authenticated request")


def allowed(permission: Permission) -> Callable[..., Caller]:
    """A dependency giving the caller, after checking it holds `permission`."""

    def dependency(
        runtime: Runtime = Depends(get_runtime), principal: Principal = Depends(authenticate)
    ) -> Caller:
        principal.require(permission)
        return Caller(runtime=runtime, principal=principal)

    return dependency
