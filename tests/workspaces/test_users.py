"""Users of a workspace: created, listed, read and changed through the admin API."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from sodate.runtime import Runtime
from sodate.workspaces.models import User
from tests.workspaces.helpers import PASSWORD, create_user, error_locs, error_of, login

USER_FIELDS = {"id", "email", "name", "role", "is_active", "created_at", "last_login_at"}


def _password_hash(runtime: Runtime, user_id: int) -> str:
    with runtime.db.read() as session:
        value = session.scalar(sa.select(User.password_hash).where(User.id == user_id))
    assert value is not None
    return value


@pytest.mark.usefixtures("cheap_argon2")
def test_create_list_get_and_patch_a_user(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    response = client.post(
        "/api/v1/users",
        json={
            "email": "Hanako.Yamada@Example.JP",
            "name": "山田 花子",
            "role": "marketer",
            "password": PASSWORD,
        },
        headers=admin_headers,
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert set(created) == USER_FIELDS  # no password, no hash
    assert created["email"] == "hanako.yamada@example.jp"
    assert created["name"] == "山田 花子"
    assert created["role"] == "marketer"
    assert created["is_active"] is True
    assert created["last_login_at"] is None

    listed = client.get("/api/v1/users", headers=admin_headers)
    assert listed.status_code == 200
    assert listed.json() == [created]

    fetched = client.get(f"/api/v1/users/{created['id']}", headers=admin_headers)
    assert fetched.status_code == 200
    assert fetched.json() == created

    patched = client.patch(
        f"/api/v1/users/{created['id']}",
        json={"name": "佐藤 花子", "role": "sales"},
        headers=admin_headers,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json() == {**created, "name": "佐藤 花子", "role": "sales"}
    again = client.get(f"/api/v1/users/{created['id']}", headers=admin_headers)
    assert again.json() == patched.json()


def test_passwords_are_stored_as_argon2_hashes(
    client: TestClient, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    user = create_user(client, admin_headers, email="hash@example.jp", role="viewer")
    stored = _password_hash(runtime, user["id"])
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored

    new_password = "another long passphrase"
    response = client.patch(
        f"/api/v1/users/{user['id']}", json={"password": new_password}, headers=admin_headers
    )
    assert response.status_code == 200, response.text
    changed = _password_hash(runtime, user["id"])
    assert changed.startswith("$argon2")
    assert changed != stored
    assert new_password not in changed
    # The new password signs in; the old one no longer does.
    assert login(client, "hash@example.jp", new_password)["user"]["id"] == user["id"]
    old = client.post("/api/v1/auth/login", json={"email": "hash@example.jp", "password": PASSWORD})
    assert old.status_code == 401


@pytest.mark.usefixtures("cheap_argon2")
def test_a_duplicate_email_is_a_conflict_whatever_its_case(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    create_user(client, admin_headers, email="taro@example.jp", role="viewer")
    response = client.post(
        "/api/v1/users",
        json={"email": "TARO@example.jp", "name": "別人", "role": "admin", "password": PASSWORD},
        headers=admin_headers,
    )
    assert response.status_code == 409, response.text
    assert error_of(response)["code"] == "conflict"
    users = client.get("/api/v1/users", headers=admin_headers).json()
    assert [(u["email"], u["role"]) for u in users] == [("taro@example.jp", "viewer")]


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        pytest.param({"email": "not-an-email"}, ["body", "email"], id="bad-email"),
        pytest.param({"password": "short"}, ["body", "password"], id="short-password"),
        pytest.param({"role": "superuser"}, ["body", "role"], id="unknown-role"),
        pytest.param({"name": ""}, ["body", "name"], id="empty-name"),
        pytest.param({"is_admin": True}, ["body", "is_admin"], id="unknown-field"),
    ],
)
def test_invalid_users_are_refused_with_the_field_named(
    client: TestClient, admin_headers: dict[str, str], change: dict[str, Any], loc: list[str]
) -> None:
    body = {"email": "ok@example.jp", "name": "田中", "role": "viewer", "password": PASSWORD}
    response = client.post("/api/v1/users", json={**body, **change}, headers=admin_headers)
    assert response.status_code == 422, response.text
    assert error_of(response)["code"] == "invalid_input"
    assert loc in error_locs(response)
    assert client.get("/api/v1/users", headers=admin_headers).json() == []


def test_an_unknown_user_is_404(client: TestClient, admin_headers: dict[str, str]) -> None:
    assert client.get("/api/v1/users/999999", headers=admin_headers).status_code == 404
    response = client.patch("/api/v1/users/999999", json={"name": "x"}, headers=admin_headers)
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


@pytest.mark.usefixtures("cheap_argon2")
def test_the_last_active_owner_cannot_be_demoted_or_deactivated(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    owner = create_user(client, admin_headers, email="owner@example.jp", role="owner")
    url = f"/api/v1/users/{owner['id']}"
    for patch in ({"role": "admin"}, {"is_active": False}, {"role": "viewer", "is_active": False}):
        response = client.patch(url, json=patch, headers=admin_headers)
        assert response.status_code == 409, (patch, response.text)
        assert error_of(response)["code"] == "conflict"
        assert client.get(url, headers=admin_headers).json() == owner
    # Changes that keep the owner an active owner are fine.
    response = client.patch(
        url, json={"name": "オーナー", "is_active": True}, headers=admin_headers
    )
    assert response.status_code == 200, response.text

    # With a second owner, the first may step down; then the second is the last one.
    second = create_user(client, admin_headers, email="second@example.jp", role="owner")
    response = client.patch(url, json={"role": "admin"}, headers=admin_headers)
    assert response.status_code == 200, response.text
    second_url = f"/api/v1/users/{second['id']}"
    response = client.patch(second_url, json={"is_active": False}, headers=admin_headers)
    assert response.status_code == 409
    assert client.get(second_url, headers=admin_headers).json()["is_active"] is True


@pytest.mark.usefixtures("cheap_argon2")
def test_an_inactive_owner_can_be_demoted_while_an_active_owner_remains(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    create_user(client, admin_headers, email="active@example.jp", role="owner")
    former = create_user(client, admin_headers, email="former@example.jp", role="owner")
    url = f"/api/v1/users/{former['id']}"
    response = client.patch(url, json={"is_active": False}, headers=admin_headers)
    assert response.status_code == 200, response.text
    # Demoting someone who is no longer an active owner takes no owner away.
    response = client.patch(url, json={"role": "viewer"}, headers=admin_headers)
    assert response.status_code == 200, response.text
    assert response.json()["role"] == "viewer"


@pytest.mark.parametrize("user_id", ["0", "2147483648", "99999999999999999999"])
def test_an_impossible_user_id_is_refused_cleanly(
    client: TestClient, admin_headers: dict[str, str], user_id: str
) -> None:
    # Ids past the database's integer range must not reach the database (a 5xx there).
    for response in (
        client.get(f"/api/v1/users/{user_id}", headers=admin_headers),
        client.patch(f"/api/v1/users/{user_id}", json={"name": "x"}, headers=admin_headers),
    ):
        assert response.status_code == 422, response.text
        assert ["path", "user_id"] in error_locs(response)
