"""Workspace-isolation cases of the consent routes (run by tests/test_isolation.py)."""

from __future__ import annotations

from tests.isolation import Pair, case, not_found

GRANT = {"channel": "email", "granted": True, "text": "メールマガジンを受け取る"}


def _a_consenting(pair: Pair) -> int:
    """A's one contact, who gave consent to email; its id."""
    response = pair.client.post(
        "/api/v1/contacts", json={"email": "a@example.jp"}, headers=pair.a_key
    )
    assert response.status_code == 201, response.text
    contact_id: int = response.json()["contact"]["id"]
    response = pair.client.post(
        f"/api/v1/contacts/{contact_id}/consents", json=GRANT, headers=pair.a_key
    )
    assert response.status_code == 200, response.text
    return contact_id


@case("GET", "/api/v1/contacts/{contact_id}/consents")
def _consents(pair: Pair) -> None:
    contact_id = _a_consenting(pair)
    not_found(pair.client.get(f"/api/v1/contacts/{contact_id}/consents", headers=pair.b_key))


@case("POST", "/api/v1/contacts/{contact_id}/consents")
def _record(pair: Pair) -> None:
    contact_id = _a_consenting(pair)
    withdraw = {"channel": "email", "granted": False}
    not_found(
        pair.client.post(
            f"/api/v1/contacts/{contact_id}/consents", json=withdraw, headers=pair.b_key
        )
    )
    held = pair.client.get(f"/api/v1/contacts/{contact_id}/consents", headers=pair.a_key).json()
    assert [consent["granted"] for consent in held] == [True]


@case("GET", "/api/v1/contacts/{contact_id}/consents/records")
def _records(pair: Pair) -> None:
    contact_id = _a_consenting(pair)
    not_found(
        pair.client.get(f"/api/v1/contacts/{contact_id}/consents/records", headers=pair.b_key)
    )


@case("GET", "/api/v1/consents")
def _workspace_records(pair: Pair) -> None:
    _a_consenting(pair)
    assert pair.client.get("/api/v1/consents", headers=pair.a_key).json()["items"] != []
    assert pair.client.get("/api/v1/consents", headers=pair.b_key).json()["items"] == []
