"""Previewing an unsaved condition through the API: count and sample, from tracked events."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from sodate.runtime import Runtime
from sodate.workspaces.schemas import Created
from tests.conftest import bearer, new_workspace
from tests.events.helpers import advance, process_all, send
from tests.workspaces.helpers import create_key, error_of


def _track_people(client: TestClient, runtime: Runtime, write_key: str) -> None:
    people = [
        ("u1", {"email": "sato@example.jp", "job_title": "営業部長", "plan": "Pro"}, 4),
        ("u2", {"email": "suzuki@example.jp", "job_title": "Engineer", "plan": "free"}, 1),
        ("u3", {"email": "tanaka@example.jp", "job_title": "部長", "plan": "pro"}, 0),
    ]
    batch: list[dict[str, Any]] = []
    for user_id, traits, pricing_views in people:
        batch.append({"type": "identify", "userId": user_id, "traits": traits})
        batch += [
            {
                "type": "page",
                "userId": user_id,
                "name": "Pricing",
                "properties": {"path": "/pricing"},
            }
            for _ in range(pricing_views)
        ]
    batch.append({"type": "track", "userId": "u1", "event": "Order Completed"})
    send(client, write_key, "batch", {"batch": batch})
    process_all(runtime)


def _preview(client: TestClient, headers: dict[str, str], body: dict[str, Any]) -> Any:
    response = client.post("/api/v1/segments/preview", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_preview_counts_and_samples_the_matching_contacts(
    client: TestClient, runtime: Runtime, workspace: Created, admin_headers: dict[str, str]
) -> None:
    _track_people(client, runtime, workspace.write_key.key)
    hot = {
        "all": [
            {"attr": "job_title", "op": "contains", "value": "部長"},
            {"attr": "plan", "op": "eq", "value": "pro"},
            {
                "event": {
                    "name": "Page Viewed",
                    "where": [{"prop": "path", "op": "starts_with", "value": "/pricing"}],
                    "count": {"op": "gte", "value": 3},
                    "within": "30d",
                }
            },
        ]
    }
    found = _preview(client, admin_headers, {"condition": hot})
    assert found["count"] == 1
    assert [contact["email"] for contact in found["sample"]] == ["sato@example.jp"]

    never_bought = {"not": {"event": {"name": "Order Completed"}}}
    found = _preview(client, admin_headers, {"condition": never_bought, "sample": 1})
    assert found["count"] == 2
    assert [contact["email"] for contact in found["sample"]] == ["suzuki@example.jp"]

    # The window moves with the clock: 31 days on, nobody viewed pricing within 30 days.
    advance(runtime, timedelta(days=31))
    assert _preview(client, admin_headers, {"condition": hot})["count"] == 0


def test_preview_sees_only_its_own_workspace(
    client: TestClient, runtime: Runtime, workspace: Created, admin_headers: dict[str, str]
) -> None:
    other = new_workspace(runtime, "別の会社")
    _track_people(client, runtime, other.write_key.key)
    everyone = {"attr": "email", "op": "exists"}
    assert _preview(client, admin_headers, {"condition": everyone}) == {"count": 0, "sample": []}
    assert _preview(client, bearer(other.admin_key.key), {"condition": everyone})["count"] == 3


def test_a_viewer_may_preview(client: TestClient, admin_headers: dict[str, str]) -> None:
    viewer = bearer(create_key(client, admin_headers, role="viewer")["key"])
    body = {"condition": {"attr": "plan", "op": "exists"}, "sample": 0}
    assert _preview(client, viewer, body) == {"count": 0, "sample": []}


def test_an_invalid_condition_is_refused_with_every_error_named(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    body = {
        "condition": {
            "all": [
                {"attr": "email", "op": "gt", "value": 3},
                {"event": {"name": "Signed Up", "within": "soon"}},
                {"nothing": True},
            ]
        }
    }
    response = client.post("/api/v1/segments/preview", json=body, headers=admin_headers)
    assert response.status_code == 422
    details = error_of(response)["details"]
    assert [detail["loc"] for detail in details] == [
        ["body", "condition", "all", 0, "op"],
        ["body", "condition", "all", 1, "event", "within"],
        ["body", "condition", "all", 2],
    ]


def test_a_condition_nested_too_deeply_is_refused(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    condition: dict[str, Any] = {"attr": "plan", "op": "exists"}
    for _ in range(200):
        condition = {"not": condition}
    response = client.post(
        "/api/v1/segments/preview", json={"condition": condition}, headers=admin_headers
    )
    assert response.status_code == 422
    assert "nests" in error_of(response)["message"]
    assert error_of(response)["details"] == [
        {
            "loc": ["condition", *["not"] * 12],
            "msg": "too deeply nested: at most 12 levels",
            "type": "depth",
        }
    ]

    # The error names the path to the first value too deep, not the top of the condition.
    deep: dict[str, Any] = {"attr": "x", "op": "exists"}
    for _ in range(12):
        deep = {"all": [deep]}
    condition = {"any": [{"attr": "y", "op": "exists"}, deep]}
    path = ["condition", "any", 1, *["all", 0] * 10, "all"]
    response = client.post(
        "/api/v1/segments/preview", json={"condition": condition}, headers=admin_headers
    )
    assert response.status_code == 422
    assert [detail["loc"] for detail in error_of(response)["details"]] == [path]
    saved = client.put(
        "/api/v1/segments/deep",
        json={"name": "deep", "condition": condition},
        headers=admin_headers,
    )
    assert saved.status_code == 422
    assert [detail["loc"] for detail in error_of(saved)["details"]] == [path]
    assert client.get("/api/v1/segments/deep", headers=admin_headers).status_code == 404


def test_the_readme_preview_example_runs(
    client: TestClient, runtime: Runtime, workspace: Created, admin_headers: dict[str, str]
) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    example = readme.split("/api/v1/segments/preview -d '", 1)[1].split("'", 1)[0]
    _track_people(client, runtime, workspace.write_key.key)
    view = {"type": "page", "userId": "u3", "properties": {"path": "/pricing/enterprise"}}
    send(client, workspace.write_key.key, "batch", {"batch": [view] * 3})
    process_all(runtime)
    found = _preview(client, admin_headers, json.loads(example))
    assert [contact["email"] for contact in found["sample"]] == ["tanaka@example.jp"]
