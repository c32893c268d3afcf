from __future__ import annotations

from fastapi.testclient import TestClient

from sodate.runtime import Runtime
from sodate.workspaces.schemas import Created
from tests.events.helpers import process_all, send


def test_page_then_identify_lands_on_one_profile(
    client: TestClient, runtime: Runtime, workspace: Created, admin_headers: dict[str, str]
) -> None:
    key = workspace.write_key.key
    send(client, key, "p", {"anonymousId": "anon-1", "properties": {"path": "/pricing"}})
    send(
        client,
        key,
        "identify",
        {
            "anonymousId": "anon-1",
            "userId": "u-1",
            "traits": {"email": "Taro@Example.jp", "lastName": "山田", "firstName": "太郎"},
        },
    )
    send(
        client, key, "batch", {"batch": [{"type": "track", "userId": "u-1", "event": "Signed Up"}]}
    )
    assert process_all(runtime) == 3
    page = client.get("/api/v1/contacts?anonymous_id=anon-1", headers=admin_headers).json()
    assert len(page["items"]) == 1, page
    contact = page["items"][0]
    assert contact["email"] == "taro@example.jp"
    assert contact["name"] == "山田 太郎"
    timeline = client.get(
        f"/api/v1/contacts/{contact['id']}/timeline", headers=admin_headers
    ).json()
    assert [e["type"] for e in timeline["items"]] == ["track", "identify", "page"]
