"""The machinery of the workspace-isolation suite (`tests/test_isolation.py`).

Each capability keeps its cases in `tests/<capability>/isolation_cases.py`, registered with
`@case(method, path)`; `tests/test_isolation.py` imports them and runs every one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient

from sodate.runtime import Runtime
from sodate.workspaces.schemas import Created
from tests.conftest import bearer
from tests.workspaces.helpers import error_of

Route = tuple[str, str]


@dataclass
class Pair:
    """Two workspaces side by side: A holds the data, B tries to reach it."""

    client: TestClient
    runtime: Runtime
    a: Created
    b: Created

    @property
    def a_key(self) -> dict[str, str]:
        return bearer(self.a.admin_key.key)

    @property
    def b_key(self) -> dict[str, str]:
        return bearer(self.b.admin_key.key)

    def get(self, url: str, headers: dict[str, str]) -> Any:
        response = self.client.get(url, headers=headers)
        assert response.status_code == 200, (url, response.text)
        return response.json()


Case = Callable[[Pair], None]
CASES: dict[Route, Case] = {}


def case(method: str, path: str) -> Callable[[Case], Case]:
    def register(function: Case) -> Case:
        assert (method, path) not in CASES, (method, path)
        CASES[(method, path)] = function
        return function

    return register


NOT_SCOPED: dict[Route, str] = {
    ("POST", "/api/v1/auth/login"): (
        "takes no credentials and reads no workspace's data: it finds the user by email (and "
        "the workspace named in the body) and opens a session scoped to that user's workspace; "
        "test_a_session_sees_only_its_own_workspace shows the session is confined to it"
    ),
    ("GET", "/api/v1/openapi.json"): "the API's description, the same for everyone",
    ("GET", "/api/v1/clock"): (
        "the clock is one for the whole installation and holds no workspace data"
    ),
    ("POST", "/api/v1/clock/advance"): (
        "moves the installation's manual clock (tests and demos only); holds no workspace data"
    ),
}


def not_found(response: Any) -> None:
    assert response.status_code == 404, response.text
    assert error_of(response)["code"] == "not_found"
