"""The official Segment and RudderStack Python SDKs deliver to Sodate unchanged.

Each SDK is pointed at a real HTTP server (uvicorn on a loopback port) serving Sodate, sends
its calls in sync mode, and the profile and timeline are then read back through the admin API.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import rudderstack.analytics.client as rudder
import segment.analytics.client as segment
import uvicorn
from fastapi.testclient import TestClient

from sodate.app import create_app
from sodate.runtime import Runtime
from sodate.workspaces.schemas import Created
from tests.events.helpers import process_all


@pytest.fixture
def server_url(runtime: Runtime) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(create_app(runtime), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def _deliver(sdk: Any, errors: list[Exception]) -> None:
    sdk.identify(
        "u-sdk-1",
        {"email": "Hanako.Sato@Example.JP", "lastName": "佐藤", "firstName": "花子"},
        anonymous_id="anon-sdk-1",
    )
    sdk.track("u-sdk-1", "Seminar Attended", {"seminar": "MA入門"})
    sdk.page("u-sdk-1", category="Docs", name="Pricing", properties={"path": "/pricing"})
    sdk.group("u-sdk-1", "acme-jp", {"name": "株式会社アクメ", "employees": 1200})
    sdk.flush()
    assert not errors, errors


@pytest.mark.parametrize("sdk_module", [segment, rudder], ids=["segment", "rudderstack"])
def test_python_sdk_calls_reach_the_profile(
    sdk_module: Any,
    server_url: str,
    runtime: Runtime,
    client: TestClient,
    workspace: Created,
    admin_headers: dict[str, str],
) -> None:
    errors: list[Exception] = []
    sdk = sdk_module.Client(
        write_key=workspace.write_key.key,
        host=server_url,
        sync_mode=True,
        gzip=True,
        max_retries=0,
        on_error=lambda error, _batch: errors.append(error),
    )
    _deliver(sdk, errors)
    assert process_all(runtime) == 4

    found = client.get("/api/v1/contacts?user_id=u-sdk-1", headers=admin_headers).json()["items"]
    assert len(found) == 1
    contact = found[0]
    assert contact["email"] == "hanako.sato@example.jp"
    assert contact["name"] == "佐藤 花子"
    assert contact["company"]["name"] == "株式会社アクメ"
    assert {"kind": "anonymous_id", "value": "anon-sdk-1"} in contact["identities"]
    timeline = client.get(f"/api/v1/contacts/{contact['id']}/timeline", headers=admin_headers)
    kinds = [(event["type"], event["name"]) for event in timeline.json()["items"]]
    assert sorted(kinds, key=str) == sorted(
        [
            ("identify", None),
            ("track", "Seminar Attended"),
            ("page", "Page Viewed"),
            ("group", None),
        ],
        key=str,
    )
