"""Workspace-isolation cases of the segments routes (run by tests/test_isolation.py)."""

from __future__ import annotations

from typing import Any

from tests.isolation import Pair, case, not_found


def _preview(pair: Pair, headers: dict[str, str], condition: dict[str, Any]) -> Any:
    response = pair.client.post(
        "/api/v1/segments/preview", json={"condition": condition}, headers=headers
    )
    assert response.status_code == 200, response.text
    return response.json()


@case("POST", "/api/v1/segments/preview")
def _preview_segment(pair: Pair) -> None:
    for headers, email in ((pair.a_key, "a@example.jp"), (pair.b_key, "b@example.jp")):
        response = pair.client.post(
            "/api/v1/contacts", json={"email": email, "traits": {"plan": "pro"}}, headers=headers
        )
        assert response.status_code == 201, response.text
    pro = {"attr": "plan", "op": "eq", "value": "pro"}
    seen_by_b = _preview(pair, pair.b_key, pro)
    assert seen_by_b["count"] == 1
    assert [contact["email"] for contact in seen_by_b["sample"]] == ["b@example.jp"]
    a_email = {"attr": "email", "op": "eq", "value": "a@example.jp"}
    assert _preview(pair, pair.b_key, a_email) == {"count": 0, "sample": []}
    assert _preview(pair, pair.a_key, a_email)["count"] == 1


def _contact(pair: Pair, headers: dict[str, str], email: str) -> int:
    body = {"email": email, "traits": {"plan": "pro"}}
    response = pair.client.post("/api/v1/contacts", json=body, headers=headers)
    assert response.status_code in (200, 201), response.text
    contact_id: int = response.json()["contact"]["id"]
    return contact_id


def _a_segments(pair: Pair) -> int:
    """A's dynamic segment `pro` (with one member) and static list `booth`; A's contact id."""
    a_contact = _contact(pair, pair.a_key, "a@example.jp")
    condition = {"attr": "plan", "op": "eq", "value": "pro"}
    for key, body in (
        ("pro", {"name": "A pro", "condition": condition}),
        ("booth", {"name": "A booth", "kind": "static"}),
    ):
        response = pair.client.put(f"/api/v1/segments/{key}", json=body, headers=pair.a_key)
        assert response.status_code == 201, response.text
    response = pair.client.post(
        "/api/v1/segments/booth/members", json={"contact_ids": [a_contact]}, headers=pair.a_key
    )
    assert response.json() == {"changed": 1}
    return a_contact


def _a_state(pair: Pair) -> tuple[Any, ...]:
    return (
        pair.get("/api/v1/segments", pair.a_key),
        pair.get("/api/v1/segments/pro/members", pair.a_key),
        pair.get("/api/v1/segments/booth/members", pair.a_key),
        pair.get("/api/v1/segments/pro/changes", pair.a_key),
        pair.get("/api/v1/segments/booth/changes", pair.a_key),
    )


@case("GET", "/api/v1/segments")
def _list_segments(pair: Pair) -> None:
    _a_segments(pair)
    assert pair.get("/api/v1/segments", pair.b_key) == []
    assert [s["key"] for s in pair.get("/api/v1/segments", pair.a_key)] == ["booth", "pro"]


@case("GET", "/api/v1/segments/{key}")
def _get_segment(pair: Pair) -> None:
    _a_segments(pair)
    not_found(pair.client.get("/api/v1/segments/pro", headers=pair.b_key))
    assert pair.get("/api/v1/segments/pro", pair.a_key)["member_count"] == 1


@case("PUT", "/api/v1/segments/{key}")
def _put_segment(pair: Pair) -> None:
    _a_segments(pair)
    before = _a_state(pair)
    _contact(pair, pair.b_key, "b@example.jp")
    condition = {"attr": "plan", "op": "exists"}
    response = pair.client.put(
        "/api/v1/segments/pro", json={"name": "B pro", "condition": condition}, headers=pair.b_key
    )
    assert response.status_code == 201  # B's own segment of the same key
    assert response.json()["segment"]["member_count"] == 1
    # B cannot read A's segments through its own.
    response = pair.client.put(
        "/api/v1/segments/x",
        json={"name": "x", "condition": {"segment": "booth"}},
        headers=pair.b_key,
    )
    assert response.status_code == 422
    assert _a_state(pair) == before


@case("DELETE", "/api/v1/segments/{key}")
def _delete_segment(pair: Pair) -> None:
    _a_segments(pair)
    before = _a_state(pair)
    not_found(pair.client.delete("/api/v1/segments/pro", headers=pair.b_key))
    assert _a_state(pair) == before


@case("GET", "/api/v1/segments/{key}/members")
def _list_members(pair: Pair) -> None:
    _a_segments(pair)
    not_found(pair.client.get("/api/v1/segments/pro/members", headers=pair.b_key))
    assert len(pair.get("/api/v1/segments/pro/members", pair.a_key)["items"]) == 1


@case("GET", "/api/v1/segments/{key}/changes")
def _list_changes(pair: Pair) -> None:
    _a_segments(pair)
    not_found(pair.client.get("/api/v1/segments/pro/changes", headers=pair.b_key))
    assert len(pair.get("/api/v1/segments/pro/changes", pair.a_key)["items"]) == 1


@case("POST", "/api/v1/segments/{key}/members")
def _add_members(pair: Pair) -> None:
    a_contact = _a_segments(pair)
    before = _a_state(pair)
    body = {"contact_ids": [a_contact]}
    not_found(pair.client.post("/api/v1/segments/booth/members", json=body, headers=pair.b_key))
    response = pair.client.put(
        "/api/v1/segments/booth", json={"name": "B booth", "kind": "static"}, headers=pair.b_key
    )
    assert response.status_code == 201
    # A's contact is no contact of B's: refused, nothing added.
    response = pair.client.post("/api/v1/segments/booth/members", json=body, headers=pair.b_key)
    assert response.status_code == 422
    assert pair.get("/api/v1/segments/booth/members", pair.b_key)["items"] == []
    assert _a_state(pair) == before


@case("POST", "/api/v1/segments/{key}/members/remove")
def _remove_members(pair: Pair) -> None:
    a_contact = _a_segments(pair)
    before = _a_state(pair)
    body = {"contact_ids": [a_contact]}
    not_found(
        pair.client.post("/api/v1/segments/booth/members/remove", json=body, headers=pair.b_key)
    )
    assert _a_state(pair) == before


def _post_csv(pair: Pair, headers: dict[str, str], data: str, *, remove: bool = False) -> Any:
    return pair.client.post(
        "/api/v1/segments/booth/members/csv",
        content=data.encode(),
        params={"remove": str(remove).lower()},
        headers={**headers, "Content-Type": "text/csv"},
    )


@case("POST", "/api/v1/segments/{key}/members/csv")
def _members_from_csv(pair: Pair) -> None:
    a_contact = _a_segments(pair)
    before = _a_state(pair)
    by_email, by_id = "email\na@example.jp\n", f"id\n{a_contact}\n"
    for data in (by_email, by_id):
        for remove in (False, True):
            not_found(_post_csv(pair, pair.b_key, data, remove=remove))
    response = pair.client.put(
        "/api/v1/segments/booth", json={"name": "B booth", "kind": "static"}, headers=pair.b_key
    )
    assert response.status_code == 201
    # B's own list of the same key: A's email and A's contact id name nobody in B.
    for data, column in ((by_email, "email"), (by_id, "id")):
        for remove in (False, True):
            response = _post_csv(pair, pair.b_key, data, remove=remove)
            assert response.status_code == 200, response.text
            result = response.json()
            assert (result["matched"], result["changed"], result["error_count"]) == (0, 0, 1)
            assert result["errors"][0]["loc"] == ["line", 2, column]
    assert pair.get("/api/v1/segments/booth/members", pair.b_key)["items"] == []
    assert _a_state(pair) == before
