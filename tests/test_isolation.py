"""Workspace isolation on every admin API endpoint.

Every /api/v1 route of the app must appear in CASES (a test showing that workspace B cannot see
or change workspace A's data through it) or in NOT_SCOPED (with the reason it holds no workspace
data). `test_every_api_route_has_an_isolation_case` fails when a route is missing, so a new
endpoint cannot ship without its isolation case.

The machinery is in `tests/isolation.py`; each capability's cases are in
`tests/<capability>/isolation_cases.py`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import fastapi.routing
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient

import tests.commerce.isolation_cases
import tests.consents.isolation_cases
import tests.contacts.isolation_cases
import tests.handoff.isolation_cases
import tests.imports.isolation_cases
import tests.lifecycle.isolation_cases
import tests.scoring.isolation_cases
import tests.segments.isolation_cases
from sodate.app import create_app
from sodate.queue.models import Job, JobState
from sodate.queue.service import NewJob, enqueue
from sodate.runtime import Runtime
from sodate.workspaces.models import User
from sodate.workspaces.schemas import Created
from tests.conftest import bearer, new_workspace
from tests.isolation import CASES, NOT_SCOPED, Pair, Route, case, not_found
from tests.workspaces.helpers import create_key, create_user, login, use_cheap_argon2

# Imported for the cases they register.
CAPABILITY_CASES = (
    tests.commerce.isolation_cases,
    tests.consents.isolation_cases,
    tests.contacts.isolation_cases,
    tests.imports.isolation_cases,
    tests.scoring.isolation_cases,
    tests.segments.isolation_cases,
)


def _user_row(pair: Pair, user_id: int) -> dict[str, Any]:
    with pair.runtime.db.read() as session:
        row = session.execute(sa.select(User.__table__).where(User.id == user_id)).mappings().one()
    return dict(row)


def _job_in(pair: Pair, workspace_id: str, *, name: str, dead: bool = False) -> int:
    now = pair.runtime.clock.now()
    job = NewJob(
        kind="test.isolation",
        idempotency_key=f"{workspace_id}:{name}",
        due_at=now + timedelta(days=1),  # not due: no worker touches it meanwhile
        payload={"email": f"{name}@example.jp"},
        workspace_id=workspace_id,
    )
    with pair.runtime.db.transaction() as session:
        assert enqueue(session, [job], now=now, max_attempts=1) == 1
        job_id = session.scalar(sa.select(Job.id).where(Job.idempotency_key == job.idempotency_key))
        assert job_id is not None
        if dead:
            session.execute(
                sa.update(Job).where(Job.id == job_id).values(state=JobState.DEAD.value)
            )
    return job_id


# --- workspace -------------------------------------------------------------------------------


@case("GET", "/api/v1/workspace")
def _get_workspace(pair: Pair) -> None:
    sender = {"sender": {"name": "A社 マーケティング部", "email": "a@example.jp"}}
    assert (
        pair.client.patch("/api/v1/workspace", json=sender, headers=pair.a_key).status_code == 200
    )
    seen_by_b = pair.get("/api/v1/workspace", pair.b_key)
    assert seen_by_b["id"] == pair.b.workspace.id
    assert seen_by_b["name"] == pair.b.workspace.name
    assert seen_by_b["sender"]["name"] is None
    assert seen_by_b["sender"]["email"] is None
    assert pair.get("/api/v1/workspace", pair.a_key)["id"] == pair.a.workspace.id


@case("PATCH", "/api/v1/workspace")
def _patch_workspace(pair: Pair) -> None:
    a_before = pair.get("/api/v1/workspace", pair.a_key)
    patch = {
        "timezone": "Europe/London",
        "locale": "en",
        "sender": {"name": "B Ltd", "email": "b@example.com"},
    }
    response = pair.client.patch("/api/v1/workspace", json=patch, headers=pair.b_key)
    assert response.status_code == 200, response.text
    assert response.json()["id"] == pair.b.workspace.id
    b_after = pair.get("/api/v1/workspace", pair.b_key)
    assert (b_after["timezone"], b_after["locale"]) == ("Europe/London", "en")
    assert b_after["sender"]["name"] == "B Ltd"
    assert pair.get("/api/v1/workspace", pair.a_key) == a_before


# --- users -----------------------------------------------------------------------------------


@case("GET", "/api/v1/users")
def _list_users(pair: Pair) -> None:
    a_user = create_user(pair.client, pair.a_key, email="a-user@example.jp", role="admin")
    b_user = create_user(pair.client, pair.b_key, email="b-user@example.jp", role="viewer")
    assert pair.get("/api/v1/users", pair.b_key) == [b_user]
    assert pair.get("/api/v1/users", pair.a_key) == [a_user]


@case("POST", "/api/v1/users")
def _create_user(pair: Pair) -> None:
    a_user = create_user(pair.client, pair.a_key, email="same@example.jp", role="admin")
    # The same email in another workspace is another person: no conflict, no link.
    b_user = create_user(pair.client, pair.b_key, email="same@example.jp", role="viewer")
    assert b_user["id"] != a_user["id"]
    assert pair.get("/api/v1/users", pair.b_key) == [b_user]
    assert pair.get("/api/v1/users", pair.a_key) == [a_user]


@case("GET", "/api/v1/users/{user_id}")
def _get_user(pair: Pair) -> None:
    a_user = create_user(pair.client, pair.a_key, email="a-user@example.jp", role="admin")
    not_found(pair.client.get(f"/api/v1/users/{a_user['id']}", headers=pair.b_key))
    assert pair.get(f"/api/v1/users/{a_user['id']}", pair.a_key) == a_user


@case("PATCH", "/api/v1/users/{user_id}")
def _patch_user(pair: Pair) -> None:
    a_user = create_user(pair.client, pair.a_key, email="a-user@example.jp", role="admin")
    before = _user_row(pair, a_user["id"])
    for patch in (
        {"name": "乗っ取り"},
        {"role": "viewer"},
        {"is_active": False},
        {"password": "taken over by workspace B"},
    ):
        response = pair.client.patch(
            f"/api/v1/users/{a_user['id']}", json=patch, headers=pair.b_key
        )
        not_found(response)
    assert _user_row(pair, a_user["id"]) == before
    # A itself can still change its user: the 404 above was about the workspace, not the id.
    response = pair.client.patch(
        f"/api/v1/users/{a_user['id']}", json={"name": "本人"}, headers=pair.a_key
    )
    assert response.status_code == 200, response.text


# --- API keys --------------------------------------------------------------------------------


def _key_ids(pair: Pair, headers: dict[str, str]) -> set[int]:
    return {key["id"] for key in pair.get("/api/v1/api-keys", headers)}


@case("GET", "/api/v1/api-keys")
def _list_api_keys(pair: Pair) -> None:
    extra = create_key(pair.client, pair.a_key, role="viewer")
    assert _key_ids(pair, pair.b_key) == {pair.b.admin_key.id, pair.b.write_key.id}
    assert _key_ids(pair, pair.a_key) == {pair.a.admin_key.id, pair.a.write_key.id, extra["id"]}


@case("POST", "/api/v1/api-keys")
def _create_api_key(pair: Pair) -> None:
    a_keys = _key_ids(pair, pair.a_key)
    created = create_key(pair.client, pair.b_key, role="owner", name="B の新しい鍵")
    assert created["id"] in _key_ids(pair, pair.b_key)
    assert _key_ids(pair, pair.a_key) == a_keys
    # The new key opens B, and only B.
    new_key = bearer(created["key"])
    assert pair.get("/api/v1/workspace", new_key)["id"] == pair.b.workspace.id
    assert created["id"] not in {u["id"] for u in pair.get("/api/v1/api-keys", pair.a_key)}


@case("DELETE", "/api/v1/api-keys/{key_id}")
def _revoke_api_key(pair: Pair) -> None:
    before = pair.get("/api/v1/api-keys", pair.a_key)
    for key_id in (pair.a.admin_key.id, pair.a.write_key.id):
        not_found(pair.client.delete(f"/api/v1/api-keys/{key_id}", headers=pair.b_key))
    assert pair.get("/api/v1/api-keys", pair.a_key) == before
    assert all(key["revoked_at"] is None for key in before)
    assert pair.get("/api/v1/workspace", pair.a_key)["id"] == pair.a.workspace.id


# --- sessions --------------------------------------------------------------------------------


@case("GET", "/api/v1/auth/session")
def _current_session(pair: Pair) -> None:
    seen_by_b = pair.get("/api/v1/auth/session", pair.b_key)
    assert seen_by_b["workspace_id"] == pair.b.workspace.id
    assert seen_by_b["api_key_id"] == pair.b.admin_key.id
    create_user(pair.client, pair.a_key, email="a-user@example.jp", role="viewer")
    login(pair.client, "a-user@example.jp")
    seen_by_a_user = pair.client.get("/api/v1/auth/session").json()
    assert seen_by_a_user["workspace_id"] == pair.a.workspace.id


@case("POST", "/api/v1/auth/logout")
def _logout(pair: Pair) -> None:
    create_user(pair.client, pair.a_key, email="a-user@example.jp", role="viewer")
    create_user(pair.client, pair.b_key, email="b-user@example.jp", role="viewer")
    with TestClient(create_app(pair.runtime)) as a_browser:
        login(a_browser, "a-user@example.jp")
        b_csrf = login(pair.client, "b-user@example.jp")["csrf_token"]
        response = pair.client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": b_csrf})
        assert response.status_code == 204
        assert pair.client.get("/api/v1/auth/session").status_code == 401
        # B signing out leaves A's browser signed in.
        seen = a_browser.get("/api/v1/auth/session")
        assert seen.status_code == 200
        assert seen.json()["workspace_id"] == pair.a.workspace.id


# --- jobs ------------------------------------------------------------------------------------


@case("GET", "/api/v1/jobs")
def _list_jobs(pair: Pair) -> None:
    a_job = _job_in(pair, pair.a.workspace.id, name="a-scheduled")
    a_dead = _job_in(pair, pair.a.workspace.id, name="a-dead", dead=True)
    b_job = _job_in(pair, pair.b.workspace.id, name="b-scheduled")
    assert [job["id"] for job in pair.get("/api/v1/jobs", pair.b_key)] == [b_job]
    assert pair.get("/api/v1/jobs?state=dead", pair.b_key) == []
    assert pair.get(f"/api/v1/jobs?before_id={b_job}", pair.b_key) == []
    assert {job["id"] for job in pair.get("/api/v1/jobs", pair.a_key)} == {a_job, a_dead}


@case("GET", "/api/v1/jobs/{job_id}")
def _get_job(pair: Pair) -> None:
    a_job = _job_in(pair, pair.a.workspace.id, name="a-scheduled")
    not_found(pair.client.get(f"/api/v1/jobs/{a_job}", headers=pair.b_key))
    assert pair.get(f"/api/v1/jobs/{a_job}", pair.a_key)["id"] == a_job


@case("POST", "/api/v1/jobs/{job_id}/retry")
def _retry_job(pair: Pair) -> None:
    a_dead = _job_in(pair, pair.a.workspace.id, name="a-dead", dead=True)
    before = pair.get(f"/api/v1/jobs/{a_dead}", pair.a_key)
    not_found(pair.client.post(f"/api/v1/jobs/{a_dead}/retry", headers=pair.b_key))
    after = pair.get(f"/api/v1/jobs/{a_dead}", pair.a_key)
    assert after == before
    assert after["state"] == "dead"
    # A itself may retry it: the 404 above was about the workspace, not the job.
    response = pair.client.post(f"/api/v1/jobs/{a_dead}/retry", headers=pair.a_key)
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "scheduled"


# --- the tests -------------------------------------------------------------------------------


@pytest.fixture
def pair(
    client: TestClient, runtime: Runtime, workspace: Created, monkeypatch: pytest.MonkeyPatch
) -> Pair:
    use_cheap_argon2(monkeypatch)
    return Pair(client=client, runtime=runtime, a=workspace, b=new_workspace(runtime, "B株式会社"))


def _api_routes(app: FastAPI) -> set[Route]:
    """Every (method, path) the app serves under /api/v1, however deeply routers are nested.

    FastAPI 0.137+ keeps included routers as opaque entries in `app.routes`;
    `iter_route_contexts` walks them with their prefixes applied. Older versions flatten them.
    """
    iterate = getattr(fastapi.routing, "iter_route_contexts", None)
    routes = iterate(app.routes) if iterate is not None else app.routes
    found: set[Route] = set()
    for route in routes:
        path, methods = getattr(route, "path", None), getattr(route, "methods", None)
        if path is not None and path.startswith("/api/v1/") and methods:
            found.update((method, path) for method in methods if method != "HEAD")
    return found


def _documented_routes(app: FastAPI) -> set[Route]:
    return {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        if path.startswith("/api/v1/")
        for method in operations
    }


def test_every_api_route_has_an_isolation_case(runtime: Runtime) -> None:
    app = create_app(runtime)
    routes = _api_routes(app)
    # The enumeration must not go quiet: it sees at least every documented operation.
    documented = _documented_routes(app)
    assert documented, "the OpenAPI document lists no /api/v1 operation"
    assert documented <= routes, sorted(documented - routes)

    covered = set(CASES) | set(NOT_SCOPED)
    missing = sorted(routes - covered)
    assert not missing, (
        f"these routes have no workspace-isolation case: {missing}; add one to CASES in "
        "tests/test_isolation.py (or, if the route holds no workspace data, to NOT_SCOPED "
        "with the reason)"
    )
    stale = sorted(covered - routes)
    assert not stale, f"isolation cases for routes that no longer exist: {stale}"
    assert not set(CASES) & set(NOT_SCOPED)
    assert all(reason.strip() for reason in NOT_SCOPED.values())


@pytest.mark.parametrize("route", sorted(CASES), ids=lambda route: f"{route[0]} {route[1]}")
def test_workspace_b_cannot_reach_workspace_a(pair: Pair, route: Route) -> None:
    CASES[route](pair)


def test_a_session_sees_only_its_own_workspace(pair: Pair) -> None:
    b_user = create_user(pair.client, pair.b_key, email="b-user@example.jp", role="viewer")
    b_job = _job_in(pair, pair.b.workspace.id, name="b-dead", dead=True)
    create_user(pair.client, pair.a_key, email="a-admin@example.jp", role="admin")
    b_before = pair.get("/api/v1/workspace", pair.b_key)

    csrf = {"X-CSRF-Token": login(pair.client, "a-admin@example.jp")["csrf_token"]}
    assert pair.client.get("/api/v1/workspace").json()["id"] == pair.a.workspace.id
    assert [u["email"] for u in pair.client.get("/api/v1/users").json()] == ["a-admin@example.jp"]
    not_found(pair.client.get(f"/api/v1/users/{b_user['id']}"))
    not_found(pair.client.patch(f"/api/v1/users/{b_user['id']}", json={"name": "x"}, headers=csrf))
    not_found(pair.client.get(f"/api/v1/jobs/{b_job}"))
    not_found(pair.client.post(f"/api/v1/jobs/{b_job}/retry", headers=csrf))
    not_found(pair.client.delete(f"/api/v1/api-keys/{pair.b.admin_key.id}", headers=csrf))
    assert pair.client.get("/api/v1/jobs").json() == []
    response = pair.client.patch("/api/v1/workspace", json={"locale": "en"}, headers=csrf)
    assert response.status_code == 200
    assert pair.get("/api/v1/workspace", pair.b_key) == b_before
    assert pair.get(f"/api/v1/users/{b_user['id']}", pair.b_key) == b_user
    assert pair.get(f"/api/v1/jobs/{b_job}", pair.b_key)["state"] == "dead"


def test_naming_another_workspace_at_sign_in_does_not_open_it(pair: Pair) -> None:
    create_user(pair.client, pair.a_key, email="a-user@example.jp", role="admin")
    for workspace in (pair.b.workspace.id, pair.b.workspace.name):
        response = pair.client.post(
            "/api/v1/auth/login",
            json={
                "email": "a-user@example.jp",
                "password": "correct horse battery staple",
                "workspace": workspace,
            },
        )
        assert response.status_code == 401, response.text
        assert not pair.client.cookies.get("sodate_session")
