"""Roles, enforced on the admin API: each role may do exactly what the matrix below says."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sodate.workspaces.schemas import Created
from tests.conftest import bearer
from tests.workspaces.helpers import (
    PASSWORD,
    Response,
    create_key,
    create_user,
    error_of,
    key_headers,
)

pytestmark = pytest.mark.usefixtures("cheap_argon2")

ROLES = ("owner", "admin", "marketer", "sales", "viewer")
EVERYONE = frozenset(ROLES)
MANAGERS = frozenset({"owner", "admin"})
OWNERS = frozenset({"owner"})


@dataclass
class World:
    client: TestClient
    owner: dict[str, str]
    spare_owner_key_id: int
    role: str


@dataclass(frozen=True)
class Action:
    """One request, the roles allowed to make it, and how to see (as the owner) that it took."""

    name: str
    allowed: frozenset[str]
    request: Callable[[World, dict[str, str]], Response]
    took_effect: Callable[[World], bool] | None = None


def _user_emails(world: World) -> set[str]:
    return {user["email"] for user in world.client.get("/api/v1/users", headers=world.owner).json()}


def _key_names(world: World) -> set[str]:
    keys = world.client.get("/api/v1/api-keys", headers=world.owner).json()
    return {key["name"] for key in keys}


def _new_user(role: str) -> Callable[[World, dict[str, str]], Response]:
    def request(world: World, headers: dict[str, str]) -> Response:
        body = {
            "email": f"{role}-by-{world.role}@example.jp",
            "name": "新しい人",
            "role": role,
            "password": PASSWORD,
        }
        return world.client.post("/api/v1/users", json=body, headers=headers)

    return request


def _new_key(role: str) -> Callable[[World, dict[str, str]], Response]:
    def request(world: World, headers: dict[str, str]) -> Response:
        body = {"name": f"{role} key by {world.role}", "kind": "admin", "role": role}
        return world.client.post("/api/v1/api-keys", json=body, headers=headers)

    return request


def _workspace_locale(world: World) -> str:
    locale: str = world.client.get("/api/v1/workspace", headers=world.owner).json()["locale"]
    return locale


def _spare_key_revoked(world: World) -> bool:
    keys = world.client.get("/api/v1/api-keys", headers=world.owner).json()
    spare = next(key for key in keys if key["id"] == world.spare_owner_key_id)
    return spare["revoked_at"] is not None


ACTIONS = [
    Action("read workspace", EVERYONE, lambda w, h: w.client.get("/api/v1/workspace", headers=h)),
    Action(
        "patch workspace",
        MANAGERS,
        lambda w, h: w.client.patch("/api/v1/workspace", json={"locale": "en"}, headers=h),
        lambda w: _workspace_locale(w) == "en",
    ),
    Action("read session", EVERYONE, lambda w, h: w.client.get("/api/v1/auth/session", headers=h)),
    Action("list jobs", EVERYONE, lambda w, h: w.client.get("/api/v1/jobs", headers=h)),
    Action("read clock", EVERYONE, lambda w, h: w.client.get("/api/v1/clock", headers=h)),
    Action(
        "advance clock",
        MANAGERS,
        lambda w, h: w.client.post("/api/v1/clock/advance", json={"by": "1m"}, headers=h),
    ),
    Action("list users", MANAGERS, lambda w, h: w.client.get("/api/v1/users", headers=h)),
    Action(
        "create a marketer user",
        MANAGERS,
        _new_user("marketer"),
        lambda w: f"marketer-by-{w.role}@example.jp" in _user_emails(w),
    ),
    Action(
        "create an owner user",
        OWNERS,
        _new_user("owner"),
        lambda w: f"owner-by-{w.role}@example.jp" in _user_emails(w),
    ),
    Action("list API keys", MANAGERS, lambda w, h: w.client.get("/api/v1/api-keys", headers=h)),
    Action(
        "create a marketer key",
        MANAGERS,
        _new_key("marketer"),
        lambda w: f"marketer key by {w.role}" in _key_names(w),
    ),
    Action(
        "create an owner key",
        OWNERS,
        _new_key("owner"),
        lambda w: f"owner key by {w.role}" in _key_names(w),
    ),
    Action(
        "revoke an owner key",
        OWNERS,
        lambda w, h: w.client.delete(f"/api/v1/api-keys/{w.spare_owner_key_id}", headers=h),
        _spare_key_revoked,
    ),
]


@pytest.mark.parametrize("role", ROLES)
def test_role_matrix(client: TestClient, workspace: Created, role: str) -> None:
    owner = bearer(workspace.admin_key.key)
    spare = create_key(client, owner, role="owner", name="spare owner key")
    headers = owner if role == "owner" else key_headers(client, owner, role=role)
    world = World(client=client, owner=owner, spare_owner_key_id=spare["id"], role=role)

    wrong: list[str] = []
    for action in ACTIONS:
        response = action.request(world, headers)
        allowed = role in action.allowed
        if allowed and not 200 <= response.status_code < 300:
            wrong.append(f"{action.name}: expected success, got {response.status_code}")
        refused = response.status_code == 403 and error_of(response)["code"] == "forbidden"
        if not allowed and not refused:
            wrong.append(f"{action.name}: expected 403, got {response.status_code}")
        if action.took_effect is not None and action.took_effect(world) != allowed:
            wrong.append(f"{action.name}: took effect = {not allowed}")
    assert not wrong, f"role {role}: " + "; ".join(wrong)


def test_admin_cannot_touch_owners(client: TestClient, workspace: Created) -> None:
    owner = bearer(workspace.admin_key.key)
    admin = key_headers(client, owner, role="admin")
    boss = create_user(client, owner, email="boss@example.jp", role="owner")
    staff = create_user(client, admin, email="staff@example.jp", role="marketer")

    # An admin manages everyone but owners ...
    response = client.patch(f"/api/v1/users/{staff['id']}", json={"role": "admin"}, headers=admin)
    assert response.status_code == 200, response.text
    # ... may not promote anyone to owner, nor change an owner.
    for user, patch in (
        (staff, {"role": "owner"}),
        (boss, {"role": "viewer"}),
        (boss, {"name": "乗っ取り"}),
        (boss, {"password": "hijacked password"}),
        (boss, {"is_active": False}),
    ):
        response = client.patch(f"/api/v1/users/{user['id']}", json=patch, headers=admin)
        assert response.status_code == 403, (patch, response.text)
    assert client.get(f"/api/v1/users/{boss['id']}", headers=owner).json() == boss
    assert client.get(f"/api/v1/users/{staff['id']}", headers=owner).json()["role"] == "admin"
    # The owner's own key cannot be revoked by an admin either.
    response = client.delete(f"/api/v1/api-keys/{workspace.admin_key.id}", headers=admin)
    assert response.status_code == 403
    assert client.get("/api/v1/workspace", headers=owner).status_code == 200


def test_admin_key_role_defaults_to_marketer(client: TestClient, admin_headers: dict[str, str]):
    response = client.post("/api/v1/api-keys", json={"name": "no role"}, headers=admin_headers)
    assert response.status_code == 201, response.text
    assert response.json()["role"] == "marketer"
    marketer = bearer(response.json()["key"])
    assert client.get("/api/v1/users", headers=marketer).status_code == 403


def test_a_user_acts_with_the_role_it_has_now(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    user = create_user(client, admin_headers, email="demoted@example.jp", role="admin")
    response = client.post(
        "/api/v1/auth/login", json={"email": "demoted@example.jp", "password": PASSWORD}
    )
    assert response.status_code == 200
    csrf = {"X-CSRF-Token": response.json()["csrf_token"]}
    assert client.get("/api/v1/users", headers=csrf).status_code == 200
    demote = {"role": "viewer"}
    response = client.patch(f"/api/v1/users/{user['id']}", json=demote, headers=admin_headers)
    assert response.status_code == 200
    # The signed-in browser loses the admin rights at once.
    assert client.get("/api/v1/users", headers=csrf).status_code == 403
    assert client.patch("/api/v1/workspace", json={"locale": "en"}, headers=csrf).status_code == 403


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-credentials"),
        pytest.param(bearer("sk_not-a-real-key"), id="unknown-key"),
        pytest.param({"Authorization": "Basic c2tfeDo="}, id="basic-auth"),
    ],
)
def test_the_admin_api_needs_an_admin_key(
    client: TestClient, workspace: Created, headers: dict[str, str]
) -> None:
    response = client.get("/api/v1/workspace", headers=headers)
    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthorized"


def test_a_tracking_write_key_is_refused_on_the_admin_api(
    client: TestClient, workspace: Created
) -> None:
    write = bearer(workspace.write_key.key)
    for method, url, body in (
        ("GET", "/api/v1/workspace", None),
        ("PATCH", "/api/v1/workspace", {"locale": "en"}),
        ("GET", "/api/v1/users", None),
        ("POST", "/api/v1/api-keys", {"name": "escalate", "role": "owner"}),
    ):
        response = client.request(method, url, json=body, headers=write)
        assert response.status_code == 401, (method, url, response.text)
        assert error_of(response)["code"] == "unauthorized"
    workspace_now: dict[str, Any] = client.get(
        "/api/v1/workspace", headers=bearer(workspace.admin_key.key)
    ).json()
    assert workspace_now["locale"] == "ja"
