"""Password sign-in, the session cookie, CSRF protection, sign-out and session expiry."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from sodate.app import create_app
from sodate.clock import ManualClock
from sodate.runtime import Runtime
from sodate.settings import Settings
from sodate.workspaces.models import User
from sodate.workspaces.schemas import Created
from tests.conftest import bearer, make_settings, new_workspace
from tests.workspaces.helpers import PASSWORD, create_user, error_of, login

pytestmark = pytest.mark.usefixtures("cheap_argon2")

EMAIL = "suzuki@example.jp"
COOKIE = "sodate_session"


@pytest.fixture
def user(client: TestClient, admin_headers: dict[str, str]) -> dict[str, Any]:
    """An admin user: allowed to change the workspace, so CSRF is what decides."""
    return create_user(client, admin_headers, email=EMAIL, role="admin", name="鈴木 一郎")


def _set_cookie(response: Any) -> str:
    headers = [value for value in response.headers.get_list("set-cookie") if COOKIE in value]
    assert len(headers) == 1, response.headers
    return str(headers[0])


def test_sign_in_sets_an_http_only_cookie_and_returns_a_csrf_token(
    client: TestClient, user: dict[str, Any], workspace: Created, runtime: Runtime
) -> None:
    response = client.post("/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["workspace_id"] == workspace.workspace.id
    assert body["user"]["id"] == user["id"]
    assert body["user"]["last_login_at"] is not None
    assert body["role"] == "admin"
    assert body["api_key_id"] is None
    assert isinstance(body["csrf_token"], str)
    assert len(body["csrf_token"]) >= 32

    cookie = _set_cookie(response).lower()
    attributes = cookie.split("; ")[1:]
    assert "httponly" in attributes
    assert "samesite=lax" in attributes
    assert "path=/" in attributes
    assert f"max-age={runtime.settings.session_ttl_hours * 3600}" in attributes
    assert "secure" not in attributes  # served over plain http here
    token = client.cookies.get(COOKIE)
    assert token
    assert token != body["csrf_token"]

    session = client.get("/api/v1/auth/session")
    assert session.status_code == 200
    assert session.json()["csrf_token"] == body["csrf_token"]
    assert session.json()["user"]["email"] == EMAIL


def test_the_email_is_matched_whatever_its_case(client: TestClient, user: dict[str, Any]) -> None:
    assert login(client, EMAIL.upper())["user"]["id"] == user["id"]


def test_a_wrong_password_looks_exactly_like_an_unknown_email(
    client: TestClient, user: dict[str, Any], admin_headers: dict[str, str]
) -> None:
    wrong_password = client.post(
        "/api/v1/auth/login", json={"email": EMAIL, "password": "not the password"}
    )
    unknown_email = client.post(
        "/api/v1/auth/login", json={"email": "nobody@example.jp", "password": PASSWORD}
    )
    client.patch(f"/api/v1/users/{user['id']}", json={"is_active": False}, headers=admin_headers)
    inactive_user = client.post("/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD})
    for response in (wrong_password, unknown_email, inactive_user):
        assert response.status_code == 401, response.text
        assert response.json() == wrong_password.json()
        assert COOKIE not in response.headers.get("set-cookie", "")
    assert error_of(wrong_password)["code"] == "unauthorized"
    assert not client.cookies.get(COOKIE)


def test_cookie_writes_need_the_csrf_token(
    client: TestClient, user: dict[str, Any], admin_headers: dict[str, str]
) -> None:
    csrf = login(client, EMAIL)["csrf_token"]
    patch = {"locale": "en"}

    for headers in ({}, {"X-CSRF-Token": ""}, {"X-CSRF-Token": csrf[:-1] + "x"}):
        response = client.patch("/api/v1/workspace", json=patch, headers=headers)
        assert response.status_code == 403, (headers, response.text)
        assert error_of(response)["code"] == "forbidden"
        assert client.get("/api/v1/workspace").json()["locale"] == "ja"

    response = client.patch("/api/v1/workspace", json=patch, headers={"X-CSRF-Token": csrf})
    assert response.status_code == 200, response.text
    assert client.get("/api/v1/workspace", headers=admin_headers).json()["locale"] == "en"


def test_reads_need_no_csrf_token(client: TestClient, user: dict[str, Any]) -> None:
    login(client, EMAIL)
    assert client.get("/api/v1/workspace").status_code == 200
    assert client.get(f"/api/v1/users/{user['id']}").status_code == 200


def test_another_sessions_csrf_token_does_not_do(
    client: TestClient, user: dict[str, Any], runtime: Runtime
) -> None:
    with TestClient(create_app(runtime)) as other:
        other_csrf = login(other, EMAIL)["csrf_token"]
    login(client, EMAIL)
    response = client.patch(
        "/api/v1/workspace", json={"locale": "en"}, headers={"X-CSRF-Token": other_csrf}
    )
    assert response.status_code == 403


def test_without_a_cookie_or_key_nothing_is_allowed(client: TestClient, user: Any) -> None:
    assert client.get("/api/v1/workspace").status_code == 401
    client.cookies.set(COOKIE, "forged-session-token")
    assert client.get("/api/v1/workspace").status_code == 401


def test_sign_out_ends_the_session_on_the_server(client: TestClient, user: Any) -> None:
    csrf = login(client, EMAIL)["csrf_token"]
    token = client.cookies.get(COOKIE)
    assert token

    # Signing out is a write: a forged cross-site request cannot sign the user out.
    assert client.post("/api/v1/auth/logout").status_code == 403
    assert client.get("/api/v1/workspace").status_code == 200

    response = client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf})
    assert response.status_code == 204
    assert COOKIE in response.headers.get("set-cookie", "")
    assert not client.cookies.get(COOKIE)
    # The old cookie, replayed, is refused: the session is gone, not just forgotten.
    client.cookies.set(COOKIE, token)
    response = client.get("/api/v1/workspace")
    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthorized"


def test_a_deactivated_users_session_stops_working(
    client: TestClient, user: dict[str, Any], admin_headers: dict[str, str]
) -> None:
    login(client, EMAIL)
    assert client.get("/api/v1/workspace").status_code == 200
    response = client.patch(
        f"/api/v1/users/{user['id']}", json={"is_active": False}, headers=admin_headers
    )
    assert response.status_code == 200
    assert client.get("/api/v1/workspace").status_code == 401
    # Deactivation ends the session for good: reactivating the user does not bring back a
    # cookie that may have been taken; the user signs in again.
    response = client.patch(
        f"/api/v1/users/{user['id']}", json={"is_active": True}, headers=admin_headers
    )
    assert response.status_code == 200
    assert client.get("/api/v1/workspace").status_code == 401
    login(client, EMAIL)
    assert client.get("/api/v1/workspace").status_code == 200


def test_an_inactive_users_session_is_refused_however_the_user_was_deactivated(
    client: TestClient, user: dict[str, Any], runtime: Runtime
) -> None:
    login(client, EMAIL)
    with runtime.db.transaction() as session:
        session.execute(sa.update(User).where(User.id == user["id"]).values(is_active=False))
    assert client.get("/api/v1/workspace").status_code == 401


def test_a_session_expires_after_its_time_to_live(
    client: TestClient, user: Any, runtime: Runtime
) -> None:
    clock = runtime.clock
    assert isinstance(clock, ManualClock)
    ttl = timedelta(hours=runtime.settings.session_ttl_hours)
    login(client, EMAIL)

    clock.advance(ttl - timedelta(minutes=1))
    assert client.get("/api/v1/workspace").status_code == 200
    clock.advance(timedelta(minutes=2))
    response = client.get("/api/v1/workspace")
    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthorized"


def test_an_email_in_two_workspaces_signs_in_to_the_one_named(
    client: TestClient, user: dict[str, Any], runtime: Runtime, workspace: Created
) -> None:
    other = new_workspace(runtime, "別会社")
    create_user(client, bearer(other.admin_key.key), email=EMAIL, role="viewer")
    response = client.post("/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD})
    assert response.status_code == 422
    assert not client.cookies.get(COOKIE)

    session = login(client, EMAIL, workspace="別会社")
    assert session["workspace_id"] == other.workspace.id
    assert session["role"] == "viewer"
    assert client.get("/api/v1/workspace").json()["id"] == other.workspace.id
    client.cookies.clear()
    session = login(client, EMAIL, workspace=workspace.workspace.id)
    assert session["workspace_id"] == workspace.workspace.id
    assert session["role"] == "admin"


@pytest.fixture
def https_client(settings: Settings, tmp_path: Path) -> Iterator[TestClient]:
    https_settings = make_settings(
        settings.database_url, tmp_path, base_url="https://sodate.example.jp"
    )
    runtime = Runtime.create(https_settings)
    try:
        with TestClient(create_app(runtime), base_url="https://testserver") as client:
            yield client
    finally:
        runtime.close()


def test_the_cookie_is_secure_when_served_over_https(
    https_client: TestClient, user: dict[str, Any]
) -> None:
    response = https_client.post("/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD})
    assert response.status_code == 200, response.text
    assert "secure" in _set_cookie(response).lower().split("; ")
