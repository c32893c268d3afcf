"""HTTP routes of workspaces, users, API keys and sign-in. Handlers only delegate."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response, status
from sqlalchemy.orm import Session

from sodate.deps import SESSION_COOKIE, Caller, allowed, authenticate, get_runtime
from sodate.runtime import Runtime
from sodate.workspaces import auth, service
from sodate.workspaces.auth import Principal
from sodate.workspaces.roles import Permission
from sodate.workspaces.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyOut,
    LoginIn,
    SessionOut,
    UserCreate,
    UserOut,
    UserPatch,
    WorkspaceOut,
    WorkspacePatch,
)

router = APIRouter(prefix="/api/v1")

# User and key ids are 32-bit integer columns: a larger id must be refused here, not by the
# database (PostgreSQL fails the query and SQLite's driver overflows, both giving a 500).
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.get("/workspace", response_model=WorkspaceOut, tags=["workspace"])
def get_workspace(caller: Caller = Depends(allowed(Permission.READ))) -> WorkspaceOut:
    with caller.runtime.db.read() as session:
        return service.workspace_out(service.get_workspace(session, caller.workspace_id))


@router.patch("/workspace", response_model=WorkspaceOut, tags=["workspace"])
def patch_workspace(
    patch: WorkspacePatch, caller: Caller = Depends(allowed(Permission.WORKSPACE_MANAGE))
) -> WorkspaceOut:
    with caller.runtime.db.transaction() as session:
        workspace = service.update_workspace(session, caller.workspace_id, patch, now=caller.now())
        return service.workspace_out(workspace)


@router.get("/users", response_model=list[UserOut], tags=["users"])
def list_users(caller: Caller = Depends(allowed(Permission.USERS_MANAGE))) -> list[UserOut]:
    with caller.runtime.db.read() as session:
        return [UserOut.model_validate(u) for u in service.list_users(session, caller.workspace_id)]


@router.post("/users", response_model=UserOut, status_code=status.HTTP_201_CREATED, tags=["users"])
def create_user(
    data: UserCreate, caller: Caller = Depends(allowed(Permission.USERS_MANAGE))
) -> UserOut:
    with caller.runtime.db.transaction() as session:
        user = service.create_user(
            session, caller.workspace_id, data, granter=caller.principal.role, now=caller.now()
        )
        return UserOut.model_validate(user)


@router.get("/users/{user_id}", response_model=UserOut, tags=["users"])
def get_user(user_id: RowId, caller: Caller = Depends(allowed(Permission.USERS_MANAGE))) -> UserOut:
    with caller.runtime.db.read() as session:
        return UserOut.model_validate(service.get_user(session, caller.workspace_id, user_id))


@router.patch("/users/{user_id}", response_model=UserOut, tags=["users"])
def patch_user(
    user_id: RowId, patch: UserPatch, caller: Caller = Depends(allowed(Permission.USERS_MANAGE))
) -> UserOut:
    with caller.runtime.db.transaction() as session:
        user = service.update_user(
            session, caller.workspace_id, user_id, patch, granter=caller.principal.role
        )
        return UserOut.model_validate(user)


@router.get("/api-keys", response_model=list[ApiKeyOut], tags=["api-keys"])
def list_api_keys(caller: Caller = Depends(allowed(Permission.API_KEYS_MANAGE))) -> list[ApiKeyOut]:
    with caller.runtime.db.read() as session:
        keys = service.list_api_keys(session, caller.workspace_id)
        return [ApiKeyOut.model_validate(key) for key in keys]


@router.post(
    "/api-keys",
    response_model=ApiKeyCreated,
    status_code=status.HTTP_201_CREATED,
    tags=["api-keys"],
)
def create_api_key(
    data: ApiKeyCreate, caller: Caller = Depends(allowed(Permission.API_KEYS_MANAGE))
) -> ApiKeyCreated:
    with caller.runtime.db.transaction() as session:
        return service.create_api_key(
            session, caller.workspace_id, data, granter=caller.principal.role, now=caller.now()
        )


@router.delete("/api-keys/{key_id}", response_model=ApiKeyOut, tags=["api-keys"])
def revoke_api_key(
    key_id: RowId, caller: Caller = Depends(allowed(Permission.API_KEYS_MANAGE))
) -> ApiKeyOut:
    with caller.runtime.db.transaction() as session:
        key = service.revoke_api_key(
            session, caller.workspace_id, key_id, granter=caller.principal.role, now=caller.now()
        )
        return ApiKeyOut.model_validate(key)


@router.post("/auth/login", response_model=SessionOut, tags=["auth"])
def login(data: LoginIn, response: Response, runtime: Runtime = Depends(get_runtime)) -> SessionOut:
    ttl = timedelta(hours=runtime.settings.session_ttl_hours)
    with runtime.db.transaction() as session:
        signed_in = auth.sign_in(
            session,
            email=str(data.email),
            password=data.password,
            workspace=data.workspace,
            now=runtime.clock.now(),
            ttl=ttl,
        )
        out = _session_out(session, signed_in.principal)
    response.set_cookie(
        SESSION_COOKIE,
        signed_in.token,
        max_age=int(ttl.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=runtime.settings.secure_cookies,
        path="/",
    )
    return out


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT, tags=["auth"])
def logout(
    request: Request,
    response: Response,
    runtime: Runtime = Depends(get_runtime),
    _principal: Principal = Depends(authenticate),
) -> None:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        with runtime.db.transaction() as session:
            auth.sign_out(session, token)
    response.delete_cookie(SESSION_COOKIE, path="/")


@router.get("/auth/session", response_model=SessionOut, tags=["auth"])
def current_session(caller: Caller = Depends(allowed(Permission.READ))) -> SessionOut:
    with caller.runtime.db.read() as session:
        return _session_out(session, caller.principal)


def _session_out(session: Session, principal: Principal) -> SessionOut:
    user = (
        UserOut.model_validate(service.get_user(session, principal.workspace_id, principal.user_id))
        if principal.user_id is not None
        else None
    )
    return SessionOut(
        workspace_id=principal.workspace_id,
        user=user,
        api_key_id=principal.api_key_id,
        role=principal.role,
        csrf_token=principal.csrf_token,
    )
