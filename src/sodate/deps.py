"""FastAPI dependencies shared by every capability's routes: runtime, caller, permission."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from fastapi import Depends, Request
from fastapi.routing import APIRoute
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from sodate.errors import Forbidden, InvalidInput, Unauthorized
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


QUERY_PREFIXES = "x-query-prefixes"
"""The key of an endpoint's `openapi_extra` that lists the prefixes of the query parameters
it reads by name from the request (`trait.` for `trait.<name>=value`)."""


def known_query_parameters(request: Request) -> None:
    """Refuse query parameters the endpoint does not take: a misspelt filter (`placed_afer`)
    would otherwise be ignored, and the answer would look like a filtered one."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    known = _query_names(route)  # a few dozen fields: the admin API's requests are not hot
    prefixes = tuple((route.openapi_extra or {}).get(QUERY_PREFIXES, ()))
    unknown = sorted(
        name for name in set(request.query_params) - known if not name.startswith(prefixes)
    )
    if unknown:
        takes = ", ".join(sorted(known)) or "none"
        raise InvalidInput(
            f"unknown query parameter: {', '.join(unknown)}",
            details=[
                {
                    "loc": ["query", name],
                    "msg": f"not a parameter of this endpoint (it takes: {takes})",
                    "type": "unknown_parameter",
                }
                for name in unknown
            ],
        )


def _query_names(route: APIRoute) -> frozenset[str]:
    names: set[str] = set()
    pending = [route.dependant]
    while pending:
        dependant = pending.pop()
        names.update(field.alias for field in dependant.query_params)
        pending.extend(dependant.dependencies)
    return frozenset(names)


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
