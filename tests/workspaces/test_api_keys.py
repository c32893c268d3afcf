"""API keys: shown once, stored only as digests, revocable at once."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from sodate.db.metadata import metadata
from sodate.errors import Unauthorized
from sodate.runtime import Runtime
from sodate.workspaces import auth
from sodate.workspaces.schemas import Created
from tests.conftest import bearer
from tests.workspaces.helpers import PASSWORD, create_key, create_user, error_locs, error_of, login

KEY_FIELDS = {"id", "kind", "role", "name", "hint", "created_at", "revoked_at"}


def test_a_new_key_is_shown_once_and_never_listed(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    created = create_key(client, admin_headers, role="viewer", name="BI ツール")
    assert set(created) == {*KEY_FIELDS, "key"}
    assert created["key"].startswith("sk_")
    assert len(created["key"]) >= 40
    assert created["role"] == "viewer"
    assert created["kind"] == "admin"
    assert created["revoked_at"] is None
    assert created["key"].startswith(created["hint"].rstrip("…"))
    assert created["hint"] != created["key"]

    response = client.get("/api/v1/api-keys", headers=admin_headers)
    assert response.status_code == 200
    listed = response.json()
    assert all(set(key) == KEY_FIELDS for key in listed)
    assert created["key"] not in response.text
    mine = next(key for key in listed if key["id"] == created["id"])
    assert mine == {field: created[field] for field in KEY_FIELDS}
    # The key works.
    assert client.get("/api/v1/workspace", headers=bearer(created["key"])).status_code == 200


def test_a_tracking_key_has_its_own_prefix_and_no_role(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    body = {"name": "Web サイト", "kind": "tracking"}
    response = client.post("/api/v1/api-keys", json=body, headers=admin_headers)
    assert response.status_code == 201, response.text
    assert response.json()["key"].startswith("wk_")
    assert response.json()["role"] is None


def test_a_tracking_key_with_a_role_is_refused(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    before = client.get("/api/v1/api-keys", headers=admin_headers).json()
    body = {"name": "tracking", "kind": "tracking", "role": "owner"}
    response = client.post("/api/v1/api-keys", json=body, headers=admin_headers)
    assert response.status_code == 422, response.text
    error = error_of(response)
    assert error["code"] == "invalid_input"
    assert error["details"] == [{"loc": ["role"], "msg": "must be empty", "type": "value"}]
    assert client.get("/api/v1/api-keys", headers=admin_headers).json() == before


def test_a_revoked_key_is_refused_at_once(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    created = create_key(client, admin_headers, role="admin")
    headers = bearer(created["key"])
    assert client.get("/api/v1/workspace", headers=headers).status_code == 200

    response = client.delete(f"/api/v1/api-keys/{created['id']}", headers=admin_headers)
    assert response.status_code == 200, response.text
    revoked_at = response.json()["revoked_at"]
    assert revoked_at is not None
    assert "key" not in response.json()

    response = client.get("/api/v1/workspace", headers=headers)
    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthorized"
    # Revoking again changes nothing; the key stays dead.
    again = client.delete(f"/api/v1/api-keys/{created['id']}", headers=admin_headers)
    assert again.status_code == 200
    assert again.json()["revoked_at"] == revoked_at
    assert client.get("/api/v1/workspace", headers=headers).status_code == 401


def test_a_key_can_revoke_itself(client: TestClient, workspace: Created) -> None:
    headers = bearer(workspace.admin_key.key)
    response = client.delete(f"/api/v1/api-keys/{workspace.admin_key.id}", headers=headers)
    assert response.status_code == 200
    assert client.get("/api/v1/workspace", headers=headers).status_code == 401


def test_a_revoked_write_key_is_refused(
    client: TestClient, workspace: Created, runtime: Runtime
) -> None:
    with runtime.db.read() as session:
        owner = auth.authenticate_write_key(session, workspace.write_key.key)
    assert owner.workspace_id == workspace.workspace.id
    response = client.delete(
        f"/api/v1/api-keys/{workspace.write_key.id}", headers=bearer(workspace.admin_key.key)
    )
    assert response.status_code == 200
    with runtime.db.read() as session, pytest.raises(Unauthorized):
        auth.authenticate_write_key(session, workspace.write_key.key)


def test_an_unknown_key_id_is_404(client: TestClient, admin_headers: dict[str, str]) -> None:
    response = client.delete("/api/v1/api-keys/999999", headers=admin_headers)
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


@pytest.mark.usefixtures("cheap_argon2")
def test_no_key_token_or_password_is_stored_in_clear(
    client: TestClient, workspace: Created, runtime: Runtime
) -> None:
    owner = bearer(workspace.admin_key.key)
    extra_admin = create_key(client, owner, role="admin")["key"]
    extra_write = client.post(
        "/api/v1/api-keys", json={"name": "app", "kind": "tracking"}, headers=owner
    ).json()["key"]
    create_user(client, owner, email="scan@example.jp", role="admin")
    login(client, "scan@example.jp")
    cookie = client.cookies.get("sodate_session")
    assert cookie
    secrets_in_clear = {
        "admin key": workspace.admin_key.key,
        "write key": workspace.write_key.key,
        "extra admin key": extra_admin,
        "extra write key": extra_write,
        "session cookie": cookie,
        "password": PASSWORD,
    }

    found: list[str] = []
    scanned_rows = 0
    with runtime.db.read() as session:
        for table in metadata.sorted_tables:
            for row in session.execute(sa.select(table)).mappings():
                scanned_rows += 1
                for column, value in row.items():
                    text = value if isinstance(value, str) else repr(value)
                    found.extend(
                        f"{label} in {table.name}.{column}"
                        for label, secret in secrets_in_clear.items()
                        if secret in text
                    )
    assert scanned_rows >= 7  # workspace, user, four keys, a session
    assert not found, found


@pytest.mark.parametrize("key_id", ["0", "2147483648", "99999999999999999999"])
def test_an_impossible_key_id_is_refused_cleanly(
    client: TestClient, admin_headers: dict[str, str], key_id: str
) -> None:
    # Ids past the database's integer range must not reach the database (a 5xx there).
    response = client.delete(f"/api/v1/api-keys/{key_id}", headers=admin_headers)
    assert response.status_code == 422, response.text
    assert ["path", "key_id"] in error_locs(response)
