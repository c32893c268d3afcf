"""A company's traits changed by a `group` call or the companies API move every contact of the
company: the segments and fit rules that read `company.*` re-check them all, not only the
caller."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from sodate.runtime import Runtime
from sodate.workspaces.schemas import Created
from tests.events.helpers import only_contact, process_all, send


def group(client: TestClient, workspace: Created, user_id: str, **traits: Any) -> None:
    body = {"userId": user_id, "groupId": "acme", "traits": {"name": "アクメ", **traits}}
    send(client, workspace.write_key.key, "group", body)


def test_a_company_change_reaches_all_its_contacts(
    client: TestClient, runtime: Runtime, workspace: Created, admin_headers: dict[str, str]
) -> None:
    group(client, workspace, "u1", employees=50)
    group(client, workspace, "u2")
    process_all(runtime)
    segment = {
        "name": "大企業",
        "condition": {"attr": "company.employees", "op": "gte", "value": 1000},
    }
    assert client.put("/api/v1/segments/large", json=segment, headers=admin_headers).is_success
    model = {
        "fit": [{"when": {"attr": "company.employees", "op": "gte", "value": 1000}, "points": 10}]
    }
    assert client.put("/api/v1/scoring-models/fit", json=model, headers=admin_headers).is_success

    group(client, workspace, "u1", employees=5000)  # only u1 is in this batch
    process_all(runtime)
    for user_id in ("u1", "u2"):
        contact = only_contact(client, admin_headers, user_id=user_id)
        assert contact["segments"] == ["large"], user_id
        assert contact["scores"]["fit"]["total"] == 10, user_id


def test_a_company_changed_through_the_api_reaches_its_contacts(
    client: TestClient, runtime: Runtime, workspace: Created, admin_headers: dict[str, str]
) -> None:
    group(client, workspace, "u1", industry="小売")
    process_all(runtime)
    segment = {
        "name": "製造業",
        "condition": {"attr": "company.industry", "op": "eq", "value": "製造業"},
    }
    assert client.put("/api/v1/segments/makers", json=segment, headers=admin_headers).is_success
    assert only_contact(client, admin_headers, user_id="u1")["segments"] == []

    traits = {"name": "アクメ", "industry": "製造業"}
    response = client.put("/api/v1/companies/acme", json={"traits": traits}, headers=admin_headers)
    assert response.status_code == 200, response.text
    assert only_contact(client, admin_headers, user_id="u1")["segments"] == ["makers"]
