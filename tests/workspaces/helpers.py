"""Small HTTP helpers shared by the workspace, role, sign-in and isolation tests."""

from __future__ import annotations

from typing import Any, Protocol

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from sodate.workspaces import secrets
from tests.conftest import bearer

PASSWORD = "correct horse battery staple"

# Argon2 with its production cost takes a third of a second per hash on a small machine; tests
# that are not about hashing use a cheap Argon2 instead (still Argon2, still salted).
CHEAP_ARGON2 = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def use_cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(secrets, "_password_hasher", CHEAP_ARGON2)


class Response(Protocol):
    """What the tests read of a TestClient response (httpx or httpx2, whichever is installed)."""

    @property
    def status_code(self) -> int: ...

    @property
    def text(self) -> str: ...

    @property
    def headers(self) -> Any: ...

    def json(self, **kwargs: Any) -> Any: ...


def error_of(response: Response) -> dict[str, Any]:
    """The `error` object of an error response, checking the one error format on the way."""
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert set(error) == {"code", "message", "details"}, error
    return error


def error_locs(response: Response) -> list[list[Any]]:
    return [detail["loc"] for detail in error_of(response)["details"]]


def create_key(
    client: TestClient, headers: dict[str, str], *, role: str | None, name: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name or f"{role} key", "kind": "admin", "role": role}
    response = client.post("/api/v1/api-keys", json=body, headers=headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def key_headers(
    client: TestClient, headers: dict[str, str], *, role: str, name: str | None = None
) -> dict[str, str]:
    return bearer(create_key(client, headers, role=role, name=name)["key"])


def create_user(
    client: TestClient,
    headers: dict[str, str],
    *,
    email: str,
    role: str,
    name: str = "山田 花子",
    password: str = PASSWORD,
) -> dict[str, Any]:
    body = {"email": email, "name": name, "role": role, "password": password}
    response = client.post("/api/v1/users", json=body, headers=headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def login(
    client: TestClient, email: str, password: str = PASSWORD, workspace: str | None = None
) -> dict[str, Any]:
    """Sign in; the client keeps the session cookie. Returns the session document."""
    body: dict[str, Any] = {"email": email, "password": password}
    if workspace is not None:
        body["workspace"] = workspace
    response = client.post("/api/v1/auth/login", json=body)
    assert response.status_code == 200, response.text
    session: dict[str, Any] = response.json()
    return session
