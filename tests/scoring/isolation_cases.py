"""Workspace-isolation cases of the scoring routes (run by tests/test_isolation.py)."""

from __future__ import annotations

from typing import Any

from tests.isolation import Pair, case, not_found

MODEL = {
    "fit": [{"when": {"attr": "plan", "op": "eq", "value": "pro"}, "points": 50}],
    "engagement": [{"event": "Demo Requested", "points": 10}],
    "thresholds": {"mql": 40},
}


def _a_model(pair: Pair) -> int:
    """A's model `default`, which has scored A's one contact; that contact's id."""
    body = {"email": "a@example.jp", "traits": {"plan": "pro"}}
    response = pair.client.post("/api/v1/contacts", json=body, headers=pair.a_key)
    assert response.status_code == 201, response.text
    response = pair.client.put("/api/v1/scoring-models/default", json=MODEL, headers=pair.a_key)
    assert response.status_code == 201, response.text
    assert response.json()["reached"] == 1
    listed = pair.client.get("/api/v1/contacts", headers=pair.a_key).json()["items"]
    contact_id: int = listed[0]["id"]
    return contact_id


def _a_state(pair: Pair) -> Any:
    return pair.client.get("/api/v1/scoring-models/default", headers=pair.a_key).json()


@case("GET", "/api/v1/scoring-models")
def _list_models(pair: Pair) -> None:
    _a_model(pair)
    assert pair.client.get("/api/v1/scoring-models", headers=pair.b_key).json() == []


@case("PUT", "/api/v1/scoring-models/{key}")
def _put_model(pair: Pair) -> None:
    _a_model(pair)
    before = _a_state(pair)
    response = pair.client.put("/api/v1/scoring-models/default", json=MODEL, headers=pair.b_key)
    assert response.status_code == 201, response.text  # B's own model of the same key
    assert response.json()["model"]["scored_contacts"] == 0  # A's contact is not B's
    assert _a_state(pair) == before


@case("GET", "/api/v1/scoring-models/{key}")
def _get_model(pair: Pair) -> None:
    _a_model(pair)
    not_found(pair.client.get("/api/v1/scoring-models/default", headers=pair.b_key))


@case("DELETE", "/api/v1/scoring-models/{key}")
def _delete_model(pair: Pair) -> None:
    _a_model(pair)
    not_found(pair.client.delete("/api/v1/scoring-models/default", headers=pair.b_key))
    assert _a_state(pair)["scored_contacts"] == 1


@case("GET", "/api/v1/scoring-models/{key}/crossings")
def _crossings(pair: Pair) -> None:
    _a_model(pair)
    not_found(pair.client.get("/api/v1/scoring-models/default/crossings", headers=pair.b_key))
    response = pair.client.get("/api/v1/scoring-models/default/crossings", headers=pair.a_key)
    assert len(response.json()["items"]) == 1


@case("GET", "/api/v1/contacts/{contact_id}/scores")
def _contact_scores(pair: Pair) -> None:
    contact_id = _a_model(pair)
    not_found(pair.client.get(f"/api/v1/contacts/{contact_id}/scores", headers=pair.b_key))
    response = pair.client.get(f"/api/v1/contacts/{contact_id}/scores", headers=pair.a_key)
    assert response.json()["default"]["total"] == 50


@case("GET", "/api/v1/contacts/{contact_id}/scores/{key}/history")
def _score_history(pair: Pair) -> None:
    contact_id = _a_model(pair)
    path = f"/api/v1/contacts/{contact_id}/scores/default/history"
    not_found(pair.client.get(path, headers=pair.b_key))
    assert len(pair.client.get(path, headers=pair.a_key).json()["items"]) == 1
