"""Workspace-isolation cases of the contacts routes (run by tests/test_isolation.py)."""

from __future__ import annotations

from typing import Any

from tests.isolation import Pair, case, not_found


def _upsert(pair: Pair, headers: dict[str, str], body: dict[str, Any]) -> Any:
    response = pair.client.post("/api/v1/contacts", json=body, headers=headers)
    assert response.status_code in (200, 201), response.text
    return response.json()["contact"]


def _a_contact(pair: Pair) -> Any:
    """A contact of A with identities, traits, a company, and an event on its timeline."""
    return _upsert(
        pair,
        pair.a_key,
        {
            "email": "taro@example.jp",
            "phone": "090-1234-5678",
            "user_id": "u-1",
            "external_ids": {"line": "U-taro"},
            "traits": {"lastName": "山田", "plan": "pro"},
            "company_key": "acme",
        },
    )


def _a_state(pair: Pair, contact_id: int) -> tuple[Any, ...]:
    """Everything A can see of its contact: compared before and after B's attempts."""
    return (
        pair.get(f"/api/v1/contacts/{contact_id}", pair.a_key),
        pair.get(f"/api/v1/contacts/{contact_id}/timeline", pair.a_key),
        pair.get(f"/api/v1/contacts/{contact_id}/merges", pair.a_key),
        pair.get("/api/v1/contacts", pair.a_key),
        pair.get("/api/v1/companies", pair.a_key),
    )


@case("GET", "/api/v1/contacts")
def _list_contacts(pair: Pair) -> None:
    a_contact = _a_contact(pair)
    b_contact = _upsert(pair, pair.b_key, {"email": "b@example.jp"})
    assert [c["id"] for c in pair.get("/api/v1/contacts", pair.b_key)["items"]] == [b_contact["id"]]
    for query in (
        "email=taro@example.jp",
        "user_id=u-1",
        "phone=090-1234-5678",
        "external_id=line:U-taro",
        "q=山田",
        f"company_id={a_contact['company']['id']}",
        "trait.plan=pro",
    ):
        assert pair.get(f"/api/v1/contacts?{query}", pair.b_key)["items"] == [], query
    page = pair.get(f"/api/v1/contacts?cursor={a_contact['id'] - 1}&limit=500", pair.b_key)
    assert [c["id"] for c in page["items"]] == [b_contact["id"]]
    assert [c["id"] for c in pair.get("/api/v1/contacts", pair.a_key)["items"]] == [a_contact["id"]]


@case("POST", "/api/v1/contacts")
def _upsert_contact(pair: Pair) -> None:
    a_contact = _a_contact(pair)
    before = _a_state(pair, a_contact["id"])
    # The same identifiers in B are another person of another workspace.
    response = pair.client.post(
        "/api/v1/contacts",
        json={
            "email": "taro@example.jp",
            "user_id": "u-1",
            "external_ids": {"line": "U-taro"},
            "traits": {"plan": "taken over"},
            "company_key": "acme",
        },
        headers=pair.b_key,
    )
    assert response.status_code == 201, response.text
    b_contact = response.json()["contact"]
    assert b_contact["id"] != a_contact["id"]
    assert b_contact["company"]["id"] != a_contact["company"]["id"]
    assert b_contact["traits"] == {"plan": "taken over", "email": "taro@example.jp"}
    assert _a_state(pair, a_contact["id"]) == before


@case("GET", "/api/v1/contacts/{contact_id}")
def _get_contact(pair: Pair) -> None:
    a_contact = _a_contact(pair)
    not_found(pair.client.get(f"/api/v1/contacts/{a_contact['id']}", headers=pair.b_key))
    assert pair.get(f"/api/v1/contacts/{a_contact['id']}", pair.a_key) == a_contact


@case("PATCH", "/api/v1/contacts/{contact_id}")
def _patch_contact(pair: Pair) -> None:
    a_contact = _a_contact(pair)
    before = _a_state(pair, a_contact["id"])
    for patch in (
        {"traits": {"plan": "taken over"}},
        {"traits": {"plan": None, "lastName": None}},
        {"company_key": "b-company"},
        {},
    ):
        not_found(
            pair.client.patch(f"/api/v1/contacts/{a_contact['id']}", json=patch, headers=pair.b_key)
        )
    assert _a_state(pair, a_contact["id"]) == before
    assert pair.get("/api/v1/companies", pair.b_key)["items"] == []


@case("GET", "/api/v1/contacts/{contact_id}/timeline")
def _contact_timeline(pair: Pair) -> None:
    a_contact = _a_contact(pair)
    a_events = pair.get(f"/api/v1/contacts/{a_contact['id']}/timeline", pair.a_key)["items"]
    assert a_events
    not_found(pair.client.get(f"/api/v1/contacts/{a_contact['id']}/timeline", headers=pair.b_key))
    # A's event id as a cursor shows B nothing of A's.
    b_contact = _upsert(pair, pair.b_key, {"email": "b@example.jp"})
    b_page = pair.get(
        f"/api/v1/contacts/{b_contact['id']}/timeline?cursor={a_events[0]['id']}", pair.b_key
    )
    assert {e["id"] for e in b_page["items"]}.isdisjoint(e["id"] for e in a_events)


@case("POST", "/api/v1/contacts/{contact_id}/merge")
def _merge_contacts(pair: Pair) -> None:
    a_contact = _a_contact(pair)
    b_contact = _upsert(pair, pair.b_key, {"email": "b@example.jp"})
    before = _a_state(pair, a_contact["id"])
    b_before = pair.get(f"/api/v1/contacts/{b_contact['id']}", pair.b_key)
    # Neither pulling A's contact into B's, nor pushing B's into A's.
    for survivor, merged in (
        (b_contact["id"], a_contact["id"]),
        (a_contact["id"], b_contact["id"]),
    ):
        not_found(
            pair.client.post(
                f"/api/v1/contacts/{survivor}/merge",
                json={"contact_id": merged},
                headers=pair.b_key,
            )
        )
    assert _a_state(pair, a_contact["id"]) == before
    assert pair.get(f"/api/v1/contacts/{b_contact['id']}", pair.b_key) == b_before
    assert pair.get(f"/api/v1/contacts/{b_contact['id']}/merges", pair.b_key) == []


@case("GET", "/api/v1/contacts/{contact_id}/merges")
def _contact_merges(pair: Pair) -> None:
    a_contact = _a_contact(pair)
    other = _upsert(pair, pair.a_key, {"email": "card@example.jp"})
    response = pair.client.post(
        f"/api/v1/contacts/{a_contact['id']}/merge",
        json={"contact_id": other["id"], "reason": "A's secret reason"},
        headers=pair.a_key,
    )
    assert response.status_code == 200, response.text
    for contact_id in (a_contact["id"], other["id"]):
        not_found(pair.client.get(f"/api/v1/contacts/{contact_id}/merges", headers=pair.b_key))
    b_contact = _upsert(pair, pair.b_key, {"email": "b@example.jp"})
    assert pair.get(f"/api/v1/contacts/{b_contact['id']}/merges", pair.b_key) == []
    (record,) = pair.get(f"/api/v1/contacts/{a_contact['id']}/merges", pair.a_key)
    assert record["reason"] == "A's secret reason"


@case("GET", "/api/v1/companies")
def _list_companies(pair: Pair) -> None:
    _a_contact(pair)
    a_companies = pair.get("/api/v1/companies", pair.a_key)["items"]
    assert [c["group_key"] for c in a_companies] == ["acme"]
    assert pair.get("/api/v1/companies", pair.b_key)["items"] == []
    assert pair.get("/api/v1/companies?q=acme", pair.b_key)["items"] == []
    cursor = a_companies[0]["id"] - 1
    assert pair.get(f"/api/v1/companies?cursor={cursor}", pair.b_key)["items"] == []
    assert pair.get("/api/v1/companies", pair.a_key)["items"] == a_companies


@case("GET", "/api/v1/companies/{company_id}")
def _get_company(pair: Pair) -> None:
    company = _a_contact(pair)["company"]
    not_found(pair.client.get(f"/api/v1/companies/{company['id']}", headers=pair.b_key))
    assert pair.get(f"/api/v1/companies/{company['id']}", pair.a_key)["contact_count"] == 1


@case("PUT", "/api/v1/companies/{group_key}")
def _put_company(pair: Pair) -> None:
    a_contact = _a_contact(pair)
    before = _a_state(pair, a_contact["id"])
    response = pair.client.put(
        "/api/v1/companies/acme",
        json={"traits": {"name": "B's Acme", "plan": "taken over"}},
        headers=pair.b_key,
    )
    assert response.status_code == 200, response.text
    b_company = response.json()
    assert b_company["id"] != a_contact["company"]["id"]
    assert b_company["contact_count"] == 0
    assert b_company["traits"] == {"name": "B's Acme", "plan": "taken over"}
    assert _a_state(pair, a_contact["id"]) == before
