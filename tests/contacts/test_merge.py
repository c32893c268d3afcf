"""Merging contacts through the API: what moves, what wins, what is recorded, where old ids lead."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sodate.runtime import Runtime
from sodate.workspaces.schemas import Created
from tests.events.helpers import (
    advance,
    daily_counts,
    identity_keys,
    live_contact_count,
    only_contact,
    process_all,
    send,
    timeline,
)
from tests.workspaces.helpers import error_of


def upsert(client: TestClient, headers: dict[str, str], body: dict[str, Any]) -> Any:
    response = client.post("/api/v1/contacts", json=body, headers=headers)
    assert response.status_code in (200, 201), response.text
    return response.json()["contact"]


def merge(
    client: TestClient, headers: dict[str, str], survivor: int, merged: int, **extra: Any
) -> Any:
    response = client.post(
        f"/api/v1/contacts/{survivor}/merge", json={"contact_id": merged, **extra}, headers=headers
    )
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def two_of_one_person(
    client: TestClient, runtime: Runtime, workspace: Created, admin_headers: dict[str, str]
) -> tuple[Any, Any]:
    """One person known twice: as a signed-up user, and as a business card from a fair."""
    key = workspace.write_key.key
    send(client, key, "identify", {"userId": "u-1", "anonymousId": "a-1"})
    send(client, key, "track", {"userId": "u-1", "event": "Viewed"})
    process_all(runtime)
    card = upsert(
        client,
        admin_headers,
        {"email": "taro@example.jp", "phone": "090-1234-5678", "traits": {"source": "展示会"}},
    )
    send(client, key, "track", {"anonymousId": "a-2", "event": "Viewed", "context": {}})
    send(
        client,
        key,
        "identify",
        {"anonymousId": "a-2", "traits": {"email": "taro@example.jp"}},
    )
    process_all(runtime)
    user = only_contact(client, admin_headers, user_id="u-1")
    card = only_contact(client, admin_headers, email="taro@example.jp")
    assert user["id"] != card["id"]
    return user, card


def test_a_merge_moves_identities_events_and_counts_to_the_survivor(
    client: TestClient,
    runtime: Runtime,
    workspace: Created,
    admin_headers: dict[str, str],
    two_of_one_person: tuple[Any, Any],
) -> None:
    user, card = two_of_one_person
    events = len(timeline(client, admin_headers, user["id"])) + len(
        timeline(client, admin_headers, card["id"])
    )
    advance(runtime, timedelta(hours=1))
    survivor = merge(client, admin_headers, user["id"], card["id"], reason="same person: 名刺")
    assert survivor["id"] == user["id"]
    assert identity_keys(survivor) == identity_keys(user) | identity_keys(card)
    assert survivor["email"] == "taro@example.jp"
    assert survivor["phone"] == "+819012345678"
    assert survivor["user_id"] == "u-1"
    assert survivor["traits"]["source"] == "展示会"
    assert set(survivor["sources"]) == {"tracking", "api"}
    assert live_contact_count(runtime) == 1
    assert len(timeline(client, admin_headers, user["id"])) == events
    assert daily_counts(runtime) == [(user["id"], "Viewed", "2026-04-01", 2)]
    # Every identifier of the merged contact now finds the survivor.
    for filters in (
        {"email": "taro@example.jp"},
        {"phone": "090-1234-5678"},
        {"anonymous_id": "a-2"},
        {"user_id": "u-1"},
    ):
        assert only_contact(client, admin_headers, **filters)["id"] == user["id"]
    # And so does new activity.
    send(client, workspace.write_key.key, "track", {"anonymousId": "a-2", "event": "Viewed"})
    process_all(runtime)
    assert live_contact_count(runtime) == 1
    assert daily_counts(runtime) == [(user["id"], "Viewed", "2026-04-01", 3)]


def test_the_merge_record_says_what_when_and_why(
    client: TestClient,
    runtime: Runtime,
    workspace: Created,
    admin_headers: dict[str, str],
    two_of_one_person: tuple[Any, Any],
) -> None:
    user, card = two_of_one_person
    assert client.get(f"/api/v1/contacts/{user['id']}/merges", headers=admin_headers).json() == []
    now = advance(runtime, timedelta(days=2))
    merge(client, admin_headers, user["id"], card["id"], reason="same person: 名刺")
    (record,) = client.get(f"/api/v1/contacts/{user['id']}/merges", headers=admin_headers).json()
    assert record["survivor_id"] == user["id"]
    assert record["merged_id"] == card["id"]
    assert record["reason"] == "same person: 名刺"
    assert datetime.fromisoformat(record["created_at"]) == now
    moved = {(i["kind"], i["value"]) for i in record["details"]["identities"]}
    assert moved == identity_keys(card)
    assert record["details"]["traits_taken"]["source"] == "展示会"
    # The merged contact's id shows the survivor's merges.
    by_old_id = client.get(f"/api/v1/contacts/{card['id']}/merges", headers=admin_headers)
    assert by_old_id.json() == [record]
    # A merge made by identity resolution is recorded with its reason too.
    send(client, workspace.write_key.key, "page", {"anonymousId": "a-9"})
    process_all(runtime)
    send(
        client,
        workspace.write_key.key,
        "identify",
        {"userId": "u-1", "anonymousId": "a-9"},
    )
    process_all(runtime)
    records = client.get(f"/api/v1/contacts/{user['id']}/merges", headers=admin_headers).json()
    assert [r["reason"] for r in records] == ["same person: 名刺", "shared anonymous_id"]


def test_the_old_id_answers_308_with_the_survivors_address(
    client: TestClient, admin_headers: dict[str, str], two_of_one_person: tuple[Any, Any]
) -> None:
    user, card = two_of_one_person
    merge(client, admin_headers, user["id"], card["id"])
    old = client.get(
        f"/api/v1/contacts/{card['id']}", headers=admin_headers, follow_redirects=False
    )
    assert old.status_code == 308
    assert old.headers["location"] == f"/api/v1/contacts/{user['id']}"
    followed = client.get(f"/api/v1/contacts/{card['id']}", headers=admin_headers)
    assert followed.status_code == 200
    assert followed.json()["id"] == user["id"]
    old_timeline = client.get(
        f"/api/v1/contacts/{card['id']}/timeline?limit=2",
        headers=admin_headers,
        follow_redirects=False,
    )
    assert old_timeline.status_code == 308
    assert old_timeline.headers["location"] == f"/api/v1/contacts/{user['id']}/timeline?limit=2"
    # Writes through the old id reach the survivor.
    patched = client.patch(
        f"/api/v1/contacts/{card['id']}", json={"traits": {"plan": "pro"}}, headers=admin_headers
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["id"] == user["id"]
    assert patched.json()["traits"]["plan"] == "pro"
    # The merged contact no longer lists.
    listed = client.get("/api/v1/contacts", headers=admin_headers).json()["items"]
    assert [c["id"] for c in listed] == [user["id"]]


def test_a_chain_of_merges_leads_straight_to_the_last_survivor(
    client: TestClient, runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    a, b, c = (upsert(client, admin_headers, {"user_id": name}) for name in ("a", "b", "c"))
    merge(client, admin_headers, b["id"], c["id"])
    merge(client, admin_headers, a["id"], b["id"])
    for old in (b, c):
        response = client.get(
            f"/api/v1/contacts/{old['id']}", headers=admin_headers, follow_redirects=False
        )
        assert response.status_code == 308
        assert response.headers["location"] == f"/api/v1/contacts/{a['id']}"
    # Merging into an old id merges into its survivor.
    d = upsert(client, admin_headers, {"user_id": "d"})
    assert merge(client, admin_headers, c["id"], d["id"])["id"] == a["id"]
    assert live_contact_count(runtime) == 1
    # An explicit merge is the user's decision: it may join different user ids.
    survivor = client.get(f"/api/v1/contacts/{a['id']}", headers=admin_headers).json()
    assert {value for kind, value in identity_keys(survivor) if kind == "user_id"} == {
        "a",
        "b",
        "c",
        "d",
    }


def test_a_merge_keeps_the_most_recent_non_empty_values(
    client: TestClient, runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    older = upsert(
        client,
        admin_headers,
        {
            "user_id": "u-1",
            "traits": {"plan": "free", "title": "課長", "city": "大阪", "tags": ["a"]},
        },
    )
    advance(runtime, timedelta(hours=1))
    newer = upsert(
        client,
        admin_headers,
        {"email": "taro@example.jp", "traits": {"plan": "pro", "company": "A社"}},
    )
    # An empty value does not make it newer, and never overrides.
    client.patch(
        f"/api/v1/contacts/{newer['id']}",
        json={"traits": {"city": None}},
        headers=admin_headers,
    )
    survivor = merge(client, admin_headers, older["id"], newer["id"])
    assert survivor["id"] == older["id"]
    assert survivor["traits"] == {
        "plan": "pro",  # the contact updated last wins
        "title": "課長",  # only the older one has it
        "city": "大阪",
        "tags": ["a"],
        "company": "A社",
        "email": "taro@example.jp",
    }
    assert survivor["email"] == "taro@example.jp"
    assert survivor["user_id"] == "u-1"


def test_a_merge_keeps_the_survivors_values_when_it_was_updated_last(
    client: TestClient, runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    merged = upsert(
        client,
        admin_headers,
        {"email": "old@example.jp", "traits": {"plan": "free", "title": "課長", "note": ""}},
    )
    advance(runtime, timedelta(hours=1))
    survivor = upsert(
        client, admin_headers, {"user_id": "u-1", "traits": {"plan": "pro", "note": "VIP"}}
    )
    result = merge(client, admin_headers, survivor["id"], merged["id"])
    assert result["traits"] == {
        "plan": "pro",
        "title": "課長",
        "note": "VIP",
        "email": "old@example.jp",
    }
    assert result["email"] == "old@example.jp"
    (record,) = client.get(
        f"/api/v1/contacts/{survivor['id']}/merges", headers=admin_headers
    ).json()
    assert record["details"]["traits_taken"] == {"title": "課長", "email": "old@example.jp"}


def test_impossible_merges_are_refused(
    client: TestClient, runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    a = upsert(client, admin_headers, {"user_id": "a"})
    b = upsert(client, admin_headers, {"user_id": "b"})
    response = client.post(
        f"/api/v1/contacts/{a['id']}/merge", json={"contact_id": a["id"]}, headers=admin_headers
    )
    assert response.status_code == 422
    assert error_of(response)["details"][0]["loc"] == ["contact_id"]
    assert error_of(response)["message"] == "a contact cannot be merged into itself"
    for survivor, merged in ((a["id"], 999_999), (999_999, a["id"])):
        response = client.post(
            f"/api/v1/contacts/{survivor}/merge", json={"contact_id": merged}, headers=admin_headers
        )
        assert response.status_code == 404, response.text
    merge(client, admin_headers, a["id"], b["id"])
    # b is a already: merging them again says so.
    response = client.post(
        f"/api/v1/contacts/{b['id']}/merge", json={"contact_id": a["id"]}, headers=admin_headers
    )
    assert response.status_code == 422
    assert error_of(response)["message"] == (
        f"contacts {b['id']} and {a['id']} are one already: both lead to contact {a['id']}"
    )
    for body in ({}, {"contact_id": 0}, {"contact_id": b["id"], "extra": 1}):
        response = client.post(
            f"/api/v1/contacts/{a['id']}/merge", json=body, headers=admin_headers
        )
        assert response.status_code == 422, body
    assert live_contact_count(runtime) == 1
