"""The contacts and companies admin API: upsert, get, list with filters and paging, patch,
timelines, companies."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sodate.runtime import Runtime
from sodate.workspaces.schemas import Created
from tests.events.helpers import (
    advance,
    find_contacts,
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
    assert response.json()["created"] is (response.status_code == 201)
    return response.json()["contact"]


def ids(contacts: list[Any]) -> list[int]:
    return [contact["id"] for contact in contacts]


# --- upsert ------------------------------------------------------------------------------------


def test_upsert_creates_a_contact_then_updates_it(
    client: TestClient, runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    body = {
        "email": "Taro.Yamada@Example.JP",
        "phone": "03-1234-5678",
        "user_id": "crm-1",
        "external_ids": {"line": "U0001"},
        "traits": {"lastName": "山田", "firstName": "太郎", "plan": "free"},
        "company_key": "acme",
    }
    response = client.post("/api/v1/contacts", json=body, headers=admin_headers)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["created"] is True
    contact = created["contact"]
    assert contact["email"] == "taro.yamada@example.jp"
    assert contact["phone"] == "+81312345678"
    assert contact["user_id"] == "crm-1"
    assert contact["name"] == "山田 太郎"
    assert contact["traits"]["plan"] == "free"
    assert contact["company"]["group_key"] == "acme"
    assert contact["sources"] == ["api"]
    assert identity_keys(contact) == {
        ("email", "taro.yamada@example.jp"),
        ("phone", "+81312345678"),
        ("user_id", "crm-1"),
        ("external:line", "U0001"),
    }
    for key in ("stage", "scores", "segments", "consents", "created_at", "updated_at"):
        assert key in contact

    # Any one of its identifiers finds it again.
    for again in (
        {"email": "taro.yamada@example.jp", "traits": {"plan": "pro"}},
        {"user_id": "crm-1", "traits": {"title": "部長"}},
        {"external_ids": {"line": "U0001"}, "traits": {"plan": None}},
        {"phone": "+81 3 1234 5678"},
    ):
        response = client.post("/api/v1/contacts", json=again, headers=admin_headers)
        assert response.status_code == 200, response.text
        assert response.json()["created"] is False
        assert response.json()["contact"]["id"] == contact["id"]
    final = client.get(f"/api/v1/contacts/{contact['id']}", headers=admin_headers).json()
    assert final["traits"]["plan"] == "pro"  # a null in an upsert never erases
    assert final["traits"]["title"] == "部長"
    assert live_contact_count(runtime) == 1


def test_upsert_refuses_unusable_identifiers_naming_the_field(
    client: TestClient, runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    for body, loc, msg in (
        ({"email": "not-an-email"}, ["email"], "not an email address: 'not-an-email'"),
        ({"email": "taro@"}, ["email"], "not an email address: 'taro@'"),
        ({"phone": "12"}, ["phone"], "not a valid phone number: '12'"),
        ({"user_id": "undefined"}, ["user_id"], "a placeholder, not an id: 'undefined'"),
        ({"user_id": "0", "email": "ok@example.jp"}, ["user_id"], "a placeholder, not an id: '0'"),
        (
            {"external_ids": {"line": "null"}},
            ["external_ids", "line"],
            "a placeholder, not an id: 'null'",
        ),
    ):
        response = client.post("/api/v1/contacts", json=body, headers=admin_headers)
        assert response.status_code == 422, (body, response.text)
        error = error_of(response)
        assert error["message"] == "the contact's identifiers are not valid", body
        assert error["details"] == [{"loc": loc, "msg": msg, "type": "value"}], body
    # Every unusable identifier is named, each in the same shape as request validation's.
    response = client.post(
        "/api/v1/contacts",
        json={"user_id": "null", "external_ids": {"line": "0"}, "email": "x", "phone": "1"},
        headers=admin_headers,
    )
    assert response.status_code == 422, response.text
    details = error_of(response)["details"]
    assert [d["loc"] for d in details] == [
        ["user_id"],
        ["external_ids", "line"],
        ["email"],
        ["phone"],
    ]
    assert all(set(d) == {"loc", "msg", "type"} for d in details), details
    assert live_contact_count(runtime) == 0


def test_upsert_needs_an_identifier_and_known_fields(
    client: TestClient, runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    for body in (
        {},
        {"traits": {"name": "名無し"}},
        {"email": "a@example.jp", "unknown": 1},
        {"email": "a@example.jp", "traits": {"a.b": 1}},
        {"email": "a@example.jp", "traits": {"$set": 1}},
        {"user_id": "   "},
    ):
        response = client.post("/api/v1/contacts", json=body, headers=admin_headers)
        assert response.status_code == 422, (body, response.text)
        assert error_of(response)["code"] == "invalid_input"
    assert live_contact_count(runtime) == 0


# --- get and list ------------------------------------------------------------------------------


def test_get_a_contact_by_id(client: TestClient, admin_headers: dict[str, str]) -> None:
    contact = upsert(client, admin_headers, {"email": "a@example.jp"})
    assert client.get(f"/api/v1/contacts/{contact['id']}", headers=admin_headers).json() == contact
    response = client.get(f"/api/v1/contacts/{contact['id'] + 100}", headers=admin_headers)
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"
    assert client.get("/api/v1/contacts/0", headers=admin_headers).status_code == 422
    assert client.get("/api/v1/contacts/abc", headers=admin_headers).status_code == 422


@pytest.fixture
def people(
    client: TestClient, runtime: Runtime, workspace: Created, admin_headers: dict[str, str]
) -> dict[str, Any]:
    """A few contacts, made through the API and the tracking API."""
    made = {
        "taro": upsert(
            client,
            admin_headers,
            {
                "email": "taro@example.jp",
                "phone": "090-1111-2222",
                "traits": {
                    "lastName": "山田",
                    "firstName": "太郎",
                    "lastNameKana": "ヤマダ",
                    "plan": "pro",
                    "age": 30,
                    "newsletter": True,
                },
                "company_key": "acme",
            },
        ),
        "hanako": upsert(
            client,
            admin_headers,
            {
                "email": "hanako@example.com",
                "user_id": "u-2",
                "traits": {"name": "佐藤 花子", "plan": "free", "age": 41, "newsletter": False},
                "company_key": "acme",
            },
        ),
        "john": upsert(
            client,
            admin_headers,
            {
                "external_ids": {"line": "U-john"},
                "traits": {"name": "John O'Hara_100%", "plan": "pro", "title": "CTO"},
            },
        ),
    }
    send(
        client,
        workspace.write_key.key,
        "identify",
        {"anonymousId": "anon-1", "traits": {"plan": "trial", "title": "営業部長"}},
    )
    process_all(runtime)
    made["visitor"] = only_contact(client, admin_headers, anonymous_id="anon-1")
    return made


def test_contacts_are_filtered_by_identifier(
    client: TestClient, admin_headers: dict[str, str], people: dict[str, Any]
) -> None:
    def found(**filters: str) -> list[int]:
        return ids(find_contacts(client, admin_headers, **filters))

    assert found(email="taro@example.jp") == [people["taro"]["id"]]
    assert found(email="TARO@Example.jp") == [people["taro"]["id"]]
    assert found(user_id="u-2") == [people["hanako"]["id"]]
    assert found(anonymous_id="anon-1") == [people["visitor"]["id"]]
    assert found(phone="09011112222") == [people["taro"]["id"]]
    assert found(phone="+81 90 1111 2222") == [people["taro"]["id"]]
    assert found(external_id="line:U-john") == [people["john"]["id"]]
    assert found(external_id="LINE:U-john") == [people["john"]["id"]]
    for no_one in (
        {"email": "nobody@example.jp"},
        {"user_id": "u-9"},
        {"external_id": "line:U-taro"},
        {"phone": "090-0000-0000"},
    ):
        assert found(**no_one) == [], no_one
    # Several filters must all hold.
    assert found(email="taro@example.jp", user_id="u-2") == []
    response = client.get("/api/v1/contacts?external_id=line", headers=admin_headers)
    assert response.status_code == 422
    assert error_of(response)["details"] == [
        {
            "loc": ["query", "external_id"],
            "msg": "must be `type:value`, not 'line'",
            "type": "value",
        }
    ]


def test_contacts_are_searched_by_name_email_and_phone(
    client: TestClient, admin_headers: dict[str, str], people: dict[str, Any]
) -> None:
    def found(q: str) -> set[int]:
        return set(ids(find_contacts(client, admin_headers, q=q)))

    assert found("山田") == {people["taro"]["id"]}
    assert found("山田 太郎") == {people["taro"]["id"]}
    assert found("ヤマダ") == {people["taro"]["id"]}
    assert found("花子") == {people["hanako"]["id"]}
    assert found("部長") == {people["visitor"]["id"]}
    assert found("john") == {people["john"]["id"]}
    assert found("JOHN") == {people["john"]["id"]}
    assert found("example.jp") == {people["taro"]["id"]}
    assert found("@example") == {people["taro"]["id"], people["hanako"]["id"]}
    assert found("+8190111") == {people["taro"]["id"]}
    # Width and spaces aside, and a phone number as people write it.
    assert found("山田太郎") == {people["taro"]["id"]}
    assert found("山田　太郎") == {people["taro"]["id"]}
    assert found("ＪＯＨＮ") == {people["john"]["id"]}
    assert found("090-1111-2222") == {people["taro"]["id"]}
    assert found("０９０１１１１２２２２") == {people["taro"]["id"]}
    # LIKE wildcards are plain characters.
    assert found("_100%") == {people["john"]["id"]}
    assert found("%") == {people["john"]["id"]}
    assert found("鈴木") == set()


def test_contacts_are_filtered_by_company_and_traits(
    client: TestClient, admin_headers: dict[str, str], people: dict[str, Any]
) -> None:
    def found(**filters: str) -> set[int]:
        return set(ids(find_contacts(client, admin_headers, **filters)))

    company_id = people["taro"]["company"]["id"]
    assert found(company_id=str(company_id)) == {people["taro"]["id"], people["hanako"]["id"]}
    assert found(**{"trait.plan": "pro"}) == {people["taro"]["id"], people["john"]["id"]}
    assert found(**{"trait.plan": "pro", "company_id": str(company_id)}) == {people["taro"]["id"]}
    assert found(**{"trait.plan": "pro", "trait.title": "CTO"}) == {people["john"]["id"]}
    assert found(**{"trait.age": "41"}) == {people["hanako"]["id"]}
    assert found(**{"trait.newsletter": "true"}) == {people["taro"]["id"]}
    assert found(**{"trait.newsletter": "false"}) == {people["hanako"]["id"]}
    assert found(**{"trait.lastName": "山田"}) == {people["taro"]["id"]}
    assert found(**{"trait.plan": "enterprise"}) == set()
    assert found(**{"trait.missing": "x"}) == set()
    response = client.get("/api/v1/contacts", params={'trait.a"b': "1"}, headers=admin_headers)
    assert response.status_code == 422, response.text
    assert error_of(response)["details"] == [
        {
            "loc": ["query", 'trait.a"b'],
            "msg": "contains a double quote",
            "type": "unsupported_name",
        }
    ]


def test_nul_characters_in_the_path_or_the_query_are_refused_naming_where(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    response = client.get(
        "/api/v1/contacts",
        params={"email": "a\x00", "q": "ok", "trait.plan": "\x00"},
        headers=admin_headers,
    )
    assert response.status_code == 422, response.text
    error = error_of(response)
    assert error["message"] == "NUL characters are not allowed"
    assert error["details"] == [
        {"loc": ["query", "email"], "msg": "contains a NUL character", "type": "value"},
        {"loc": ["query", "trait.plan"], "msg": "contains a NUL character", "type": "value"},
    ]
    response = client.put("/api/v1/companies/ac%00me", json={"traits": {}}, headers=admin_headers)
    assert response.status_code == 422, response.text
    assert error_of(response)["details"] == [
        {"loc": ["path", "group_key"], "msg": "contains a NUL character", "type": "value"}
    ]


def test_contacts_are_listed_page_by_page(
    client: TestClient, runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    made = [
        upsert(client, admin_headers, {"user_id": f"u-{n}", "traits": {"plan": "pro"}})["id"]
        for n in range(7)
    ]
    seen: list[int] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3, "trait.plan": "pro"}
        if cursor is not None:
            params["cursor"] = cursor
        page = client.get("/api/v1/contacts", params=params, headers=admin_headers).json()
        seen.extend(ids(page["items"]))
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == sorted(made)
    exact = client.get("/api/v1/contacts?limit=7", headers=admin_headers).json()
    assert len(exact["items"]) == 7
    assert exact["next_cursor"] is None
    for bad in ("limit=0", "limit=501", "cursor=-1", "cursor=x"):
        assert client.get(f"/api/v1/contacts?{bad}", headers=admin_headers).status_code == 422


# --- patch -------------------------------------------------------------------------------------


def test_patch_sets_and_clears_traits(
    client: TestClient, runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    contact = upsert(
        client,
        admin_headers,
        {"email": "a@example.jp", "traits": {"plan": "free", "title": "課長", "name": "A"}},
    )
    url = f"/api/v1/contacts/{contact['id']}"
    advance(runtime, timedelta(minutes=5))
    response = client.patch(
        url,
        json={"traits": {"plan": "pro", "title": None, "seats": 5}, "company_key": "beta"},
        headers=admin_headers,
    )
    assert response.status_code == 200, response.text
    patched = response.json()
    assert patched["traits"] == {"plan": "pro", "seats": 5, "name": "A", "email": "a@example.jp"}
    assert patched["company"]["group_key"] == "beta"
    assert patched["updated_at"] > contact["updated_at"]
    assert client.get(url, headers=admin_headers).json() == patched
    # Nothing to change changes nothing.
    assert client.patch(url, json={}, headers=admin_headers).json()["traits"] == patched["traits"]
    # A patch is on the timeline, and does not make the contact "seen".
    assert [e["type"] for e in timeline(client, admin_headers, contact["id"])] == [
        "identify",
        "identify",
        "identify",
    ]
    assert patched["last_seen_at"] is None
    bad_patches: list[dict[str, Any]] = [
        {"traits": {"a.b": 1}},
        {"email": "x@example.jp"},
        {"traits": []},
    ]
    for bad in bad_patches:
        assert client.patch(url, json=bad, headers=admin_headers).status_code == 422, bad
    missing = client.patch("/api/v1/contacts/999999", json={}, headers=admin_headers)
    assert missing.status_code == 404


# --- timeline ----------------------------------------------------------------------------------


def test_the_timeline_is_newest_first_page_by_page(
    client: TestClient, runtime: Runtime, workspace: Created, admin_headers: dict[str, str]
) -> None:
    key = workspace.write_key.key
    batch = [
        {"type": "track", "userId": "u-1", "event": f"E{n}", "timestamp": f"2026-03-0{n}T00:00:00Z"}
        for n in (3, 1, 5, 2, 4)
    ]
    # Two events at the same instant: the later one is shown first.
    batch += [
        {"type": "track", "userId": "u-1", "event": "Same A", "timestamp": "2026-03-06T00:00:00Z"},
        {"type": "track", "userId": "u-1", "event": "Same B", "timestamp": "2026-03-06T00:00:00Z"},
    ]
    send(client, key, "batch", {"batch": batch})
    process_all(runtime)
    contact = only_contact(client, admin_headers, user_id="u-1")
    url = f"/api/v1/contacts/{contact['id']}/timeline"
    names: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor is not None:
            params["cursor"] = cursor
        page = client.get(url, params=params, headers=admin_headers).json()
        assert len(page["items"]) <= 2
        names.extend(event["name"] for event in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert names == ["Same B", "Same A", "E5", "E4", "E3", "E2", "E1"]
    event = timeline(client, admin_headers, contact["id"])[0]
    assert set(event) >= {"id", "message_id", "type", "name", "properties", "context"}
    assert client.get("/api/v1/contacts/999999/timeline", headers=admin_headers).status_code == 404


# --- companies ---------------------------------------------------------------------------------


def test_companies_are_created_updated_listed_and_shown(
    client: TestClient, runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    response = client.put(
        "/api/v1/companies/acme",
        json={"traits": {"name": "株式会社アクメ", "industry": "製造", "employees": 120}},
        headers=admin_headers,
    )
    assert response.status_code == 200, response.text
    acme = response.json()
    assert acme["group_key"] == "acme"
    assert acme["name"] == "株式会社アクメ"
    assert acme["contact_count"] == 0
    advance(runtime, timedelta(hours=1))
    updated = client.put(
        "/api/v1/companies/acme",
        json={"traits": {"employees": 150, "industry": None, "plan": ""}},
        headers=admin_headers,
    ).json()
    assert updated["id"] == acme["id"]
    assert updated["traits"] == {"name": "株式会社アクメ", "industry": "製造", "employees": 150}
    assert updated["updated_at"] > acme["updated_at"]
    beta = client.put(
        "/api/v1/companies/beta-key", json={"traits": {"name": "Beta Inc."}}, headers=admin_headers
    ).json()
    client.put("/api/v1/companies/gamma", json={}, headers=admin_headers)
    upsert(client, admin_headers, {"email": "a@example.jp", "company_key": "acme"})
    upsert(client, admin_headers, {"email": "b@example.jp", "company_key": "acme"})

    shown = client.get(f"/api/v1/companies/{acme['id']}", headers=admin_headers).json()
    assert shown["contact_count"] == 2
    assert shown["traits"] == updated["traits"]

    def listed(**params: Any) -> list[str]:
        page = client.get("/api/v1/companies", params=params, headers=admin_headers).json()
        return [company["group_key"] for company in page["items"]]

    assert listed() == ["acme", "beta-key", "gamma"]
    assert listed(q="アクメ") == ["acme"]
    assert listed(q="beta") == ["beta-key"]
    assert listed(q="beta-key") == ["beta-key"]
    assert listed(q="nothing") == []
    first = client.get("/api/v1/companies?limit=2", headers=admin_headers).json()
    assert [c["group_key"] for c in first["items"]] == ["acme", "beta-key"]
    rest = client.get(
        "/api/v1/companies",
        params={"limit": 2, "cursor": first["next_cursor"]},
        headers=admin_headers,
    ).json()
    assert [c["group_key"] for c in rest["items"]] == ["gamma"]
    assert rest["next_cursor"] is None
    # Searched as every text comparison is, on both databases: A–Z folded, nothing else.
    assert listed(q="BETA INC") == ["beta-key"]
    client.put(
        "/api/v1/companies/zeta", json={"traits": {"name": "ＡＢＣ École"}}, headers=admin_headers
    )
    assert listed(q="ＡＢＣ ÉCOLE") == ["zeta"]
    assert listed(q="école") == []
    assert listed(q="ａｂｃ") == []
    assert beta["contact_count"] == 0
    missing = client.get(f"/api/v1/companies/{beta['id'] + 100}", headers=admin_headers)
    assert missing.status_code == 404
    bad = client.put("/api/v1/companies/x", json={"traits": {"a.b": 1}}, headers=admin_headers)
    assert bad.status_code == 422
