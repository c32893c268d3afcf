"""Identity resolution end to end: tracking calls and API writes land on one profile per person."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sodate.runtime import Runtime
from sodate.workspaces.schemas import Created
from tests.conftest import bearer, new_workspace
from tests.events.helpers import (
    daily_counts,
    event_count,
    find_contacts,
    identity_keys,
    live_contact_count,
    only_contact,
    process_all,
    send,
    timeline,
)
from tests.imports.helpers import import_file


@pytest.fixture
def write_key(workspace: Created) -> str:
    return workspace.write_key.key


def test_anonymous_activity_joins_the_person_on_identify(
    client: TestClient, runtime: Runtime, write_key: str, admin_headers: dict[str, str]
) -> None:
    send(client, write_key, "page", {"anonymousId": "anon-1", "properties": {"path": "/"}})
    send(client, write_key, "page", {"anonymousId": "anon-1", "properties": {"path": "/pricing"}})
    process_all(runtime)
    anonymous = only_contact(client, admin_headers, anonymous_id="anon-1")
    assert anonymous["user_id"] is None
    send(
        client,
        write_key,
        "identify",
        {
            "anonymousId": "anon-1",
            "userId": "u-1",
            "traits": {"email": "Taro@Example.jp", "lastName": "山田", "firstName": "太郎"},
        },
    )
    send(client, write_key, "track", {"userId": "u-1", "event": "Signed Up"})
    process_all(runtime)
    assert live_contact_count(runtime) == 1
    contact = only_contact(client, admin_headers, user_id="u-1")
    assert contact["id"] == anonymous["id"]
    assert identity_keys(contact) == {
        ("anonymous_id", "anon-1"),
        ("user_id", "u-1"),
        ("email", "taro@example.jp"),
    }
    assert contact["email"] == "taro@example.jp"
    assert contact["name"] == "山田 太郎"
    events = timeline(client, admin_headers, contact["id"])
    assert [e["type"] for e in events] == ["track", "identify", "page", "page"]


def test_a_new_device_of_a_known_person_is_merged_into_them(
    client: TestClient, runtime: Runtime, write_key: str, admin_headers: dict[str, str]
) -> None:
    send(client, write_key, "identify", {"userId": "u-1", "anonymousId": "laptop"})
    send(client, write_key, "track", {"userId": "u-1", "event": "Viewed"})
    process_all(runtime)
    send(client, write_key, "track", {"anonymousId": "phone", "event": "Viewed"})
    process_all(runtime)
    assert live_contact_count(runtime) == 2
    phone = only_contact(client, admin_headers, anonymous_id="phone")
    # Signing in on the phone.
    send(client, write_key, "identify", {"userId": "u-1", "anonymousId": "phone"})
    process_all(runtime)
    assert live_contact_count(runtime) == 1
    person = only_contact(client, admin_headers, anonymous_id="phone")
    assert person["user_id"] == "u-1"
    assert person["id"] != phone["id"]
    assert {("anonymous_id", "laptop"), ("anonymous_id", "phone")} <= identity_keys(person)
    assert len(timeline(client, admin_headers, person["id"])) == 4
    # The daily counts moved with the events.
    assert daily_counts(runtime) == [(person["id"], "Viewed", "2026-04-01", 2)]
    # The anonymous contact's old id leads to the person.
    old = client.get(
        f"/api/v1/contacts/{phone['id']}", headers=admin_headers, follow_redirects=False
    )
    assert old.status_code == 308
    assert old.headers["location"].endswith(f"/api/v1/contacts/{person['id']}")


def test_two_people_sharing_a_browser_are_never_merged(
    client: TestClient, runtime: Runtime, write_key: str, admin_headers: dict[str, str]
) -> None:
    browser = "shared-browser"
    send(client, write_key, "page", {"anonymousId": browser})
    send(
        client,
        write_key,
        "identify",
        {"anonymousId": browser, "userId": "alice", "traits": {"email": "alice@example.jp"}},
    )
    send(client, write_key, "track", {"anonymousId": browser, "userId": "alice", "event": "A"})
    send(
        client,
        write_key,
        "identify",
        {"anonymousId": browser, "userId": "bob", "traits": {"email": "bob@example.jp"}},
    )
    send(client, write_key, "track", {"anonymousId": browser, "userId": "bob", "event": "B"})
    # Both in one batch as well, and then again after processing.
    process_all(runtime)
    send(client, write_key, "identify", {"anonymousId": browser, "userId": "alice"})
    send(client, write_key, "track", {"anonymousId": browser, "userId": "bob", "event": "B"})
    process_all(runtime)
    alice = only_contact(client, admin_headers, user_id="alice")
    bob = only_contact(client, admin_headers, user_id="bob")
    assert alice["id"] != bob["id"]
    assert alice["email"] == "alice@example.jp"
    assert bob["email"] == "bob@example.jp"
    assert ("user_id", "bob") not in identity_keys(alice)
    assert ("user_id", "alice") not in identity_keys(bob)
    bob_events = {e["name"] for e in timeline(client, admin_headers, bob["id"])}
    alice_events = {e["name"] for e in timeline(client, admin_headers, alice["id"])}
    assert "B" in bob_events
    assert "B" not in alice_events
    assert "A" in alice_events
    assert "A" not in bob_events


def test_an_email_in_identify_traits_joins_a_contact_created_by_email(
    client: TestClient, runtime: Runtime, write_key: str, admin_headers: dict[str, str]
) -> None:
    created = client.post(
        "/api/v1/contacts",
        json={"email": "hanako@example.jp", "traits": {"lastName": "佐藤", "source": "展示会"}},
        headers=admin_headers,
    )
    assert created.status_code == 201, created.text
    contact_id = created.json()["contact"]["id"]
    send(client, write_key, "page", {"anonymousId": "anon-9"})
    send(
        client,
        write_key,
        "identify",
        {"userId": "u-9", "anonymousId": "anon-9", "traits": {"email": " Hanako@EXAMPLE.jp "}},
    )
    process_all(runtime)
    assert live_contact_count(runtime) == 1
    contact = only_contact(client, admin_headers, email="HANAKO@example.jp")
    assert contact["id"] == contact_id
    assert contact["user_id"] == "u-9"
    assert contact["traits"]["source"] == "展示会"
    assert {("user_id", "u-9"), ("anonymous_id", "anon-9")} <= identity_keys(contact)
    assert len(timeline(client, admin_headers, contact_id)) == 3  # upsert, page, identify
    # And the other way round: a later upsert by email updates the person, 200 not 201.
    again = client.post(
        "/api/v1/contacts",
        json={"email": "hanako@example.jp", "traits": {"title": "課長"}},
        headers=admin_headers,
    )
    assert again.status_code == 200, again.text
    assert again.json()["contact"]["id"] == contact_id
    assert again.json()["contact"]["traits"]["title"] == "課長"


def test_full_width_addresses_and_numbers_are_one_person_whichever_way_they_come(
    client: TestClient,
    runtime: Runtime,
    write_key: str,
    admin_headers: dict[str, str],
    workspace: Created,
    tmp_path: Path,
) -> None:
    traits = {"email": "ＹＡＭＡＤＡ@example.jp", "phone": "090ｰ5555ｰ6666"}  # half-width ｰ
    send(client, write_key, "identify", {"userId": "fw-user", "traits": traits})
    process_all(runtime)
    contact = only_contact(client, admin_headers, user_id="fw-user")
    assert (contact["email"], contact["phone"]) == ("yamada@example.jp", "+819055556666")
    assert {("email", "yamada@example.jp"), ("phone", "+819055556666")} <= identity_keys(contact)
    # The API's upsert and a CSV import of the same values reach the same contact.
    response = client.post(
        "/api/v1/contacts",
        json={"email": "ＹＡＭＡＤＡ＠example.jp", "traits": {"plan": "pro"}},
        headers=admin_headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["contact"]["id"] == contact["id"]
    path = tmp_path / "名刺.csv"
    path.write_text(
        "メールアドレス,電話番号,氏名\nｙａｍａｄａ＠ｅｘａｍｐｌｅ．ｊｐ,090ｰ5555ｰ6666,山田\n"
    )
    result = import_file(runtime, workspace.workspace.id, path, source="展示会")
    assert (result.created, result.updated) == (0, 1)
    assert live_contact_count(runtime) == 1


def test_placeholders_never_link_anyone(
    client: TestClient, runtime: Runtime, write_key: str, admin_headers: dict[str, str]
) -> None:
    placeholders: list[Any] = [None, "undefined", "0", "-1", "anonymous", "guest", "", "null", 0]
    for number, placeholder in enumerate(placeholders):
        send(
            client,
            write_key,
            "identify",
            {
                "userId": f"u-{number}",
                "anonymousId": placeholder,
                "traits": {"email": placeholder, "phone": placeholder},
                "context": {"externalIds": [{"id": str(placeholder or "null"), "type": "line"}]},
            },
        )
        send(
            client,
            write_key,
            "track",
            {"anonymousId": f"a-{number}", "userId": placeholder, "event": "X"},
        )
    process_all(runtime)
    assert live_contact_count(runtime) == 2 * len(placeholders)
    values = {
        value
        for contact in find_contacts(client, admin_headers, limit="500")
        for _kind, value in identity_keys(contact)
    }
    assert values == {f"u-{n}" for n in range(len(placeholders))} | {
        f"a-{n}" for n in range(len(placeholders))
    }


def test_phone_numbers_are_stored_in_e164_with_japan_as_the_default_region(
    client: TestClient, runtime: Runtime, write_key: str, admin_headers: dict[str, str]
) -> None:
    send(client, write_key, "identify", {"userId": "u-1", "traits": {"phone": "090-1234-5678"}})
    process_all(runtime)
    contact = only_contact(client, admin_headers, user_id="u-1")
    assert contact["phone"] == "+819012345678"
    assert ("phone", "+819012345678") in identity_keys(contact)
    assert contact["traits"]["phone"] == "090-1234-5678"  # the trait is kept as given
    # The same number written otherwise is the same person.
    response = client.post(
        "/api/v1/contacts",
        json={"phone": "+81 90-1234-5678", "traits": {"plan": "pro"}},
        headers=admin_headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["contact"]["id"] == contact["id"]
    assert only_contact(client, admin_headers, phone="09012345678")["id"] == contact["id"]
    assert only_contact(client, admin_headers, phone="+819012345678")["id"] == contact["id"]
    # A number that is not valid is kept as a trait and identifies nobody.
    send(client, write_key, "identify", {"userId": "u-2", "traits": {"phone": "12345"}})
    process_all(runtime)
    other = only_contact(client, admin_headers, user_id="u-2")
    assert other["phone"] is None
    assert identity_keys(other) == {("user_id", "u-2")}


def test_external_ids_identify_a_contact(
    client: TestClient, runtime: Runtime, write_key: str, admin_headers: dict[str, str]
) -> None:
    line = {"externalIds": [{"id": "U4af4980629", "type": "LINE", "collection": "users"}]}
    send(client, write_key, "identify", {"anonymousId": "a-1", "context": line})
    send(client, write_key, "track", {"anonymousId": "a-2", "event": "Followed", "context": line})
    process_all(runtime)
    assert live_contact_count(runtime) == 1
    contact = only_contact(client, admin_headers, external_id="line:U4af4980629")
    assert ("external:line", "U4af4980629") in identity_keys(contact)
    assert {("anonymous_id", "a-1"), ("anonymous_id", "a-2")} <= identity_keys(contact)
    # A different LINE id on the same device is another person.
    other = {"externalIds": [{"id": "Uffff", "type": "line"}]}
    send(client, write_key, "identify", {"anonymousId": "a-1", "context": other})
    process_all(runtime)
    assert live_contact_count(runtime) == 2
    # Upserting by the external id finds the same contact.
    response = client.post(
        "/api/v1/contacts",
        json={"external_ids": {"line": "U4af4980629"}, "traits": {"plan": "pro"}},
        headers=admin_headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["contact"]["id"] == contact["id"]


def test_alias_merges_the_previous_id_into_the_user(
    client: TestClient, runtime: Runtime, write_key: str, admin_headers: dict[str, str]
) -> None:
    send(client, write_key, "page", {"anonymousId": "anon-1"})
    send(client, write_key, "identify", {"userId": "u-1", "traits": {"plan": "pro"}})
    process_all(runtime)
    assert live_contact_count(runtime) == 2
    send(client, write_key, "alias", {"userId": "u-1", "previousId": "anon-1"})
    process_all(runtime)
    assert live_contact_count(runtime) == 1
    person = only_contact(client, admin_headers, user_id="u-1")
    assert ("anonymous_id", "anon-1") in identity_keys(person)
    assert [e["type"] for e in timeline(client, admin_headers, person["id"])] == [
        "alias",
        "identify",
        "page",
    ]
    (merge,) = client.get(f"/api/v1/contacts/{person['id']}/merges", headers=admin_headers).json()
    assert merge["reason"] == "alias"


def test_alias_renames_a_user_id(
    client: TestClient, runtime: Runtime, write_key: str, admin_headers: dict[str, str]
) -> None:
    send(client, write_key, "track", {"userId": "old-id", "event": "Before"})
    process_all(runtime)
    send(client, write_key, "alias", {"userId": "new-id", "previousId": "old-id"})
    send(client, write_key, "track", {"userId": "new-id", "event": "After"})
    process_all(runtime)
    person = only_contact(client, admin_headers, user_id="new-id")
    assert only_contact(client, admin_headers, user_id="old-id")["id"] == person["id"]
    assert {e["name"] for e in timeline(client, admin_headers, person["id"])} >= {
        "Before",
        "After",
    }


def test_alias_refuses_to_merge_two_different_people(
    client: TestClient, runtime: Runtime, write_key: str, admin_headers: dict[str, str]
) -> None:
    send(client, write_key, "identify", {"userId": "alice", "anonymousId": "alice-browser"})
    send(client, write_key, "identify", {"userId": "bob"})
    process_all(runtime)
    # The previous id is Alice's browser, but Alice is not Bob.
    send(client, write_key, "alias", {"userId": "bob", "previousId": "alice-browser"})
    process_all(runtime)
    assert live_contact_count(runtime) == 2
    alice = only_contact(client, admin_headers, user_id="alice")
    bob = only_contact(client, admin_headers, user_id="bob")
    assert ("anonymous_id", "alice-browser") in identity_keys(alice)
    assert identity_keys(bob) == {("user_id", "bob")}
    assert client.get(f"/api/v1/contacts/{bob['id']}/merges", headers=admin_headers).json() == []


def test_a_write_key_of_another_workspace_never_touches_this_ones_contacts(
    client: TestClient,
    runtime: Runtime,
    workspace: Created,
    write_key: str,
    admin_headers: dict[str, str],
) -> None:
    send(
        client,
        write_key,
        "identify",
        {"userId": "u-1", "anonymousId": "a-1", "traits": {"email": "taro@example.jp"}},
    )
    send(client, write_key, "group", {"userId": "u-1", "groupId": "acme", "traits": {"n": 1}})
    process_all(runtime)
    a_before = only_contact(client, admin_headers, user_id="u-1")
    a_companies = client.get("/api/v1/companies", headers=admin_headers).json()

    other = new_workspace(runtime, "B株式会社")
    b_key, b_headers = other.write_key.key, bearer(other.admin_key.key)
    same_ids = {"userId": "u-1", "anonymousId": "a-1", "messageId": "m-b"}
    send(client, b_key, "identify", {**same_ids, "traits": {"email": "taro@example.jp", "x": 1}})
    send(client, b_key, "alias", {"userId": "u-1", "previousId": "a-1"})
    send(client, b_key, "group", {"userId": "u-1", "groupId": "acme", "traits": {"n": 2}})
    send(client, b_key, "track", {"userId": "u-1", "event": "In B"})
    process_all(runtime)

    assert only_contact(client, admin_headers, user_id="u-1") == a_before
    assert client.get("/api/v1/companies", headers=admin_headers).json() == a_companies
    assert len(timeline(client, admin_headers, a_before["id"])) == 2
    b_contact = only_contact(client, b_headers, user_id="u-1")
    assert b_contact["id"] != a_before["id"]
    assert b_contact["traits"] == {"email": "taro@example.jp", "x": 1}
    assert live_contact_count(runtime, workspace.workspace.id) == 1
    assert event_count(runtime, workspace.workspace.id) == 2
    assert event_count(runtime, other.workspace.id) == 4
