"""Workspace-isolation cases of the handoff routes (run by tests/test_isolation.py)."""

from __future__ import annotations

from typing import Any

from sodate.handoff.jobs import handoff_opener
from sodate.worker_types import ServiceContext
from tests.isolation import Pair, case, not_found
from tests.workspaces.helpers import create_user

MODEL = {
    "fit": [{"when": {"attr": "plan", "op": "eq", "value": "pro"}, "points": 50}],
    "thresholds": {"mql": 40},
}
RULES = {"notify": {"email": False}, "sla_hours": 8}


def _a_handoff(pair: Pair) -> int:
    """A's handoff of its one contact, which a fit score made MQL; the handoff's id."""
    create_user(pair.client, pair.a_key, email="sales@example.jp", role="sales")
    steps: list[tuple[str, str, Any]] = [
        ("PUT", "/api/v1/handoff", RULES),
        ("POST", "/api/v1/contacts", {"email": "a@example.jp", "traits": {"plan": "pro"}}),
        ("PUT", "/api/v1/scoring-models/default", MODEL),
        ("PUT", "/api/v1/lifecycle", {"mql": {"model": "default"}}),
    ]
    for method, path, body in steps:
        response = pair.client.request(method, path, json=body, headers=pair.a_key)
        assert response.is_success, response.text
    context = ServiceContext(runtime=pair.runtime, worker_id="test", stop=None)  # type: ignore[arg-type]
    assert handoff_opener.run(context) == 1
    items = pair.client.get("/api/v1/handoffs", headers=pair.a_key).json()["items"]
    handoff_id: int = items[0]["id"]
    return handoff_id


def _a_handoff_state(pair: Pair, handoff_id: int) -> str:
    state: str = pair.get(f"/api/v1/handoffs/{handoff_id}", pair.a_key)["state"]
    return state


@case("GET", "/api/v1/handoff")
def _get_rules(pair: Pair) -> None:
    _a_handoff(pair)
    assert pair.get("/api/v1/handoff", pair.b_key)["updated_at"] is None


@case("PUT", "/api/v1/handoff")
def _put_rules(pair: Pair) -> None:
    _a_handoff(pair)
    before = pair.get("/api/v1/handoff", pair.a_key)
    # B cannot name A's users as owners: they are not B's.
    body = {"assign": [{"when": {"attr": "plan", "op": "exists"}, "owners": ["sales@example.jp"]}]}
    response = pair.client.put("/api/v1/handoff", json={**RULES, **body}, headers=pair.b_key)
    assert response.status_code == 422, response.text
    assert pair.get("/api/v1/handoff", pair.a_key) == before


@case("GET", "/api/v1/handoffs")
def _list_handoffs(pair: Pair) -> None:
    _a_handoff(pair)
    assert pair.get("/api/v1/handoffs", pair.b_key)["items"] == []


@case("GET", "/api/v1/handoffs/{handoff_id}")
def _get_handoff(pair: Pair) -> None:
    handoff_id = _a_handoff(pair)
    not_found(pair.client.get(f"/api/v1/handoffs/{handoff_id}", headers=pair.b_key))


@case("POST", "/api/v1/handoffs/{handoff_id}/accept")
def _accept(pair: Pair) -> None:
    handoff_id = _a_handoff(pair)
    not_found(pair.client.post(f"/api/v1/handoffs/{handoff_id}/accept", headers=pair.b_key))
    assert _a_handoff_state(pair, handoff_id) == "pending"


@case("POST", "/api/v1/handoffs/{handoff_id}/reject")
def _reject(pair: Pair) -> None:
    handoff_id = _a_handoff(pair)
    path = f"/api/v1/handoffs/{handoff_id}/reject"
    not_found(pair.client.post(path, json={"reason": "x"}, headers=pair.b_key))
    assert _a_handoff_state(pair, handoff_id) == "pending"


@case("GET", "/api/v1/reports/leads")
def _lead_kpis(pair: Pair) -> None:
    _a_handoff(pair)
    assert pair.get("/api/v1/reports/leads", pair.a_key)["handed_off"] == 1
    kpis = pair.get("/api/v1/reports/leads", pair.b_key)
    assert (kpis["mql"], kpis["handed_off"]) == (0, 0)
