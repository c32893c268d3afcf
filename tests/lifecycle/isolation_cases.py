"""Workspace-isolation cases of the lifecycle routes (run by tests/test_isolation.py)."""

from __future__ import annotations

from typing import Any

from tests.isolation import Pair, case, not_found

RULES = {"rules": {"lead": {"attr": "email", "op": "exists"}}, "dormant": {"after_days": 30}}


def _a_lead(pair: Pair) -> int:
    """A's rules, which made A's one contact a lead; that contact's id."""
    body = {"email": "a@example.jp"}
    response = pair.client.post("/api/v1/contacts", json=body, headers=pair.a_key)
    assert response.status_code == 201, response.text
    response = pair.client.put("/api/v1/lifecycle", json=RULES, headers=pair.a_key)
    assert response.status_code == 200, response.text
    assert response.json()["moved"] == {"lead": 1}
    listed = pair.client.get("/api/v1/contacts", headers=pair.a_key).json()["items"]
    contact_id: int = listed[0]["id"]
    return contact_id


def _a_rules(pair: Pair) -> Any:
    return pair.client.get("/api/v1/lifecycle", headers=pair.a_key).json()


@case("GET", "/api/v1/lifecycle")
def _get_rules(pair: Pair) -> None:
    _a_lead(pair)
    assert pair.client.get("/api/v1/lifecycle", headers=pair.b_key).json()["rules"] == {}


@case("PUT", "/api/v1/lifecycle")
def _put_rules(pair: Pair) -> None:
    contact_id = _a_lead(pair)
    before = _a_rules(pair)
    body = {"rules": {"customer": {"attr": "email", "op": "exists"}}}
    response = pair.client.put("/api/v1/lifecycle", json=body, headers=pair.b_key)
    assert response.status_code == 200, response.text
    assert response.json()["moved"] == {}  # A's contact is not B's
    assert _a_rules(pair) == before
    stage = pair.client.get(f"/api/v1/contacts/{contact_id}/stage", headers=pair.a_key).json()
    assert stage["stage"] == "lead"


@case("GET", "/api/v1/lifecycle/stages")
def _stage_counts(pair: Pair) -> None:
    _a_lead(pair)
    counts = pair.client.get("/api/v1/lifecycle/stages", headers=pair.b_key).json()
    assert all(count["contacts"] == 0 for count in counts)


@case("GET", "/api/v1/lifecycle/changes")
def _changes(pair: Pair) -> None:
    _a_lead(pair)
    assert pair.client.get("/api/v1/lifecycle/changes", headers=pair.b_key).json()["items"] == []
    changes = pair.client.get("/api/v1/lifecycle/changes", headers=pair.a_key).json()["items"]
    assert len(changes) == 1


@case("GET", "/api/v1/contacts/{contact_id}/stage")
def _contact_stage(pair: Pair) -> None:
    contact_id = _a_lead(pair)
    not_found(pair.client.get(f"/api/v1/contacts/{contact_id}/stage", headers=pair.b_key))


@case("PUT", "/api/v1/contacts/{contact_id}/stage")
def _set_stage(pair: Pair) -> None:
    contact_id = _a_lead(pair)
    path = f"/api/v1/contacts/{contact_id}/stage"
    not_found(pair.client.put(path, json={"stage": "customer"}, headers=pair.b_key))
    assert pair.client.get(path, headers=pair.a_key).json()["stage"] == "lead"


@case("GET", "/api/v1/contacts/{contact_id}/stage/changes")
def _contact_changes(pair: Pair) -> None:
    contact_id = _a_lead(pair)
    path = f"/api/v1/contacts/{contact_id}/stage/changes"
    not_found(pair.client.get(path, headers=pair.b_key))
    assert len(pair.client.get(path, headers=pair.a_key).json()["items"]) == 1
