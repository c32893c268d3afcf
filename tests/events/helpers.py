"""Sending tracking messages and processing them, for tests."""

from __future__ import annotations

import base64
from typing import Any

from fastapi.testclient import TestClient

from sodate.pipeline import process_pending
from sodate.runtime import Runtime


def basic(write_key: str) -> dict[str, str]:
    token = base64.b64encode(f"{write_key}:".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def send(client: TestClient, write_key: str, path: str, body: dict[str, Any]) -> Any:
    response = client.post(f"/v1/{path}", json=body, headers=basic(write_key))
    assert response.status_code == 200, response.text
    return response.json()


def process_all(runtime: Runtime, batch_size: int = 1000) -> int:
    total = 0
    while done := process_pending(runtime, batch_size=batch_size):
        total += done
    return total
