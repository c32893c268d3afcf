"""The Segment-compatible tracking API: keys, bodies, validation, limits, de-duplication, time."""

from __future__ import annotations

import functools
import gzip
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from sodate.app import create_app
from sodate.conditions.terms import exact_number
from sodate.events import models as event_models
from sodate.events import routes
from sodate.events import service as event_log
from sodate.events.models import NO_MESSAGE_KEY, Event, message_key
from sodate.events.ratelimit import MessageRateLimiter
from sodate.runtime import Runtime
from sodate.settings import Settings
from sodate.workspaces.schemas import Created
from tests.conftest import make_settings, new_workspace
from tests.events.helpers import (
    basic,
    daily_counts,
    event_count,
    find_contacts,
    inbox_count,
    live_contact_count,
    only_contact,
    process_all,
    send,
    timeline,
)
from tests.workspaces.helpers import error_of

TRACK = {"userId": "u-1", "event": "Signed Up"}


@pytest.fixture
def write_key(workspace: Created) -> str:
    return workspace.write_key.key


def post(client: TestClient, path: str, body: Any, headers: dict[str, str] | None = None) -> Any:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(f"/v1/{path}", content=content, headers=headers or {})


def rejected_fields(response: Any) -> list[str]:
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["code"] == "invalid_input"
    return [detail["field"] for detail in error["details"]]


# --- write keys --------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["basic", "header", "body"])
def test_the_write_key_is_taken_from_basic_auth_a_header_or_the_body(
    client: TestClient, runtime: Runtime, write_key: str, where: str
) -> None:
    body: dict[str, Any] = dict(TRACK)
    headers: dict[str, str] = {}
    if where == "basic":
        headers = basic(write_key)
    elif where == "header":
        headers = {"X-Write-Key": write_key}
    else:
        body["writeKey"] = write_key
    response = post(client, "track", body, headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"success": True, "accepted": 1, "rejected": []}
    assert inbox_count(runtime) == 1


def test_the_write_key_in_a_batch_body_is_accepted(
    client: TestClient, runtime: Runtime, write_key: str
) -> None:
    body = {"writeKey": write_key, "batch": [{"type": "track", **TRACK}]}
    assert post(client, "batch", body).status_code == 200
    assert inbox_count(runtime) == 1


def test_a_missing_or_bad_write_key_is_401_and_nothing_is_stored(
    client: TestClient, runtime: Runtime
) -> None:
    for headers in (
        {},
        basic("wk_not-a-key"),
        {"X-Write-Key": "wk_not-a-key"},
        {"Authorization": "Basic !!!not base64"},
    ):
        response = post(client, "track", TRACK, headers)
        assert response.status_code == 401, (headers, response.text)
        assert error_of(response)["code"] == "unauthorized"
    assert post(client, "track", {**TRACK, "writeKey": "wk_not-a-key"}).status_code == 401
    assert inbox_count(runtime) == 0


def test_an_admin_key_is_not_a_write_key(
    client: TestClient, runtime: Runtime, workspace: Created
) -> None:
    admin = workspace.admin_key.key
    for headers in (basic(admin), {"X-Write-Key": admin}, {"Authorization": f"Bearer {admin}"}):
        assert post(client, "track", TRACK, headers).status_code == 401
    assert post(client, "track", {**TRACK, "writeKey": admin}).status_code == 401
    assert inbox_count(runtime) == 0


def test_a_revoked_write_key_is_401(
    client: TestClient,
    runtime: Runtime,
    workspace: Created,
    write_key: str,
    admin_headers: dict[str, str],
) -> None:
    send(client, write_key, "track", TRACK)
    revoked = client.delete(f"/api/v1/api-keys/{workspace.write_key.id}", headers=admin_headers)
    assert revoked.status_code == 200, revoked.text
    response = post(client, "track", {**TRACK, "event": "After"}, basic(write_key))
    assert response.status_code == 401
    assert inbox_count(runtime) == 1


# --- bodies ------------------------------------------------------------------------------------


def test_a_text_plain_body_is_read_as_json(
    client: TestClient, runtime: Runtime, write_key: str, admin_headers: dict[str, str]
) -> None:
    # Browsers send text/plain to avoid a CORS preflight; analytics.js puts the key in the body.
    response = client.post(
        "/v1/t",
        content=json.dumps({**TRACK, "writeKey": write_key}),
        headers={"Content-Type": "text/plain;charset=UTF-8"},
    )
    assert response.status_code == 200, response.text
    process_all(runtime)
    contact = only_contact(client, admin_headers, user_id="u-1")
    assert [e["name"] for e in timeline(client, admin_headers, contact["id"])] == ["Signed Up"]


def test_integers_beyond_signed_64_bits_become_floating_point_numbers(
    client: TestClient, runtime: Runtime, write_key: str, admin_headers: dict[str, str]
) -> None:
    """As JavaScript reads them, and as SQLite's JSON functions do, so that conditions compare
    the same numbers whichever evaluator reads them."""
    numbers = {
        "largest": 2**63 - 1,
        "over": 2**63,
        "unsigned": 2**64 - 1,
        "nested": [{"under": -(2**63) - 1}],
        "digits": "12345678901234567890",
    }
    send(client, write_key, "track", {**TRACK, "properties": numbers})
    process_all(runtime)
    contact = only_contact(client, admin_headers, user_id="u-1")
    [event] = timeline(client, admin_headers, contact["id"])
    stored = event["properties"]
    # Compared as the decimals their JSON text spells, as conditions compare numbers
    # (PostgreSQL's jsonb keeps a float's digits as an integral numeric).
    found = [stored["largest"], stored["over"], stored["unsigned"], stored["nested"][0]["under"]]
    expected = [2**63 - 1, float(2**63), float(2**64 - 1), float(-(2**63) - 1)]
    assert list(map(exact_number, found)) == list(map(exact_number, expected))
    assert stored["digits"] == "12345678901234567890"


def test_a_gzip_body_is_inflated(
    client: TestClient, runtime: Runtime, write_key: str, admin_headers: dict[str, str]
) -> None:
    body = {"batch": [{"type": "track", **TRACK}, {"type": "page", "userId": "u-1"}]}
    response = client.post(
        "/v1/batch",
        content=gzip.compress(json.dumps(body).encode()),
        headers={**basic(write_key), "Content-Encoding": "gzip"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 2
    process_all(runtime)
    contact = only_contact(client, admin_headers, user_id="u-1")
    assert len(timeline(client, admin_headers, contact["id"])) == 2


def test_a_body_that_is_not_gzip_json_or_an_object_is_400(
    client: TestClient, runtime: Runtime, write_key: str
) -> None:
    gzip_header = {**basic(write_key), "Content-Encoding": "gzip"}
    assert post(client, "track", b"not gzip at all", gzip_header).status_code == 400
    assert post(client, "track", b"{not json", basic(write_key)).status_code == 400
    assert post(client, "track", b"[1, 2]", basic(write_key)).status_code == 400
    assert (
        post(client, "track", TRACK, {**basic(write_key), "Content-Encoding": "br"}).status_code
        == 400
    )
    assert inbox_count(runtime) == 0


def test_every_short_form_is_its_long_form(
    client: TestClient, runtime: Runtime, write_key: str, admin_headers: dict[str, str]
) -> None:
    messages: list[tuple[str, dict[str, Any]]] = [
        ("i", {"userId": "u-1", "traits": {"plan": "free"}}),
        ("t", {"userId": "u-1", "event": "Clicked"}),
        ("p", {"userId": "u-1", "name": "Pricing"}),
        ("s", {"userId": "u-1", "name": "Home"}),
        ("g", {"userId": "u-1", "groupId": "acme"}),
        ("a", {"userId": "u-1", "previousId": "anon-1"}),
        ("b", {"batch": [{"type": "track", "userId": "u-1", "event": "In Batch"}]}),
    ]
    for path, body in messages:
        assert send(client, write_key, path, body)["accepted"] == 1, path
    assert process_all(runtime) == 7
    contact = only_contact(client, admin_headers, user_id="u-1")
    events = timeline(client, admin_headers, contact["id"])
    assert sorted(e["type"] for e in events) == sorted(
        ["identify", "track", "page", "screen", "group", "alias", "track"]
    )
    names = {e["name"] for e in events}
    assert {"Clicked", "In Batch", "Page Viewed", "Screen Viewed"} <= names
    assert contact["traits"] == {"plan": "free"}
    assert contact["company"]["group_key"] == "acme"


# --- validation --------------------------------------------------------------------------------


INVALID_MESSAGES: list[tuple[str, dict[str, Any], list[str]]] = [
    ("track", {"event": "X"}, ["userId"]),
    ("track", {"userId": "u-1"}, ["event"]),
    ("track", {"userId": "u-1", "event": "  "}, ["event"]),
    ("group", {"userId": "u-1"}, ["groupId"]),
    ("alias", {"userId": "u-1"}, ["previousId"]),
    ("track", {"userId": "u-1", "event": "X", "timestamp": "yesterday"}, ["timestamp"]),
    ("page", {"anonymousId": "a-1", "sentAt": "2026-13-45T00:00:00Z"}, ["sentAt"]),
    ("track", {"anonymousId": "a-1", "event": "X", "properties": [1]}, ["properties"]),
    ("identify", {"userId": ["u-1"]}, ["userId"]),
    ("track", {}, ["event", "userId"]),
]


def test_an_invalid_message_is_400_naming_each_bad_field(
    client: TestClient, runtime: Runtime, write_key: str
) -> None:
    for path, body, fields in INVALID_MESSAGES:
        response = post(client, path, body, basic(write_key))
        assert sorted(rejected_fields(response)) == sorted(fields), (path, body, response.text)
    empty_id = {"userId": "u-1", "context": {"externalIds": [{"id": "", "type": "crm"}]}}
    response = post(client, "identify", empty_id, basic(write_key))
    [error] = error_of(response)["details"]
    assert error["field"] == "context.externalIds[0].id"
    assert error["message"] == "String should have at least 1 character"
    assert inbox_count(runtime) == 0


def test_placeholder_ids_do_not_count_as_ids(
    client: TestClient, runtime: Runtime, write_key: str
) -> None:
    for placeholder in ("undefined", "null", "0", "-1", "anonymous", "guest", "", " ", 0, None):
        body = {"userId": placeholder, "anonymousId": placeholder, "event": "X"}
        response = post(client, "track", body, basic(write_key))
        assert rejected_fields(response) == ["userId"], placeholder
    assert inbox_count(runtime) == 0


def test_a_message_with_a_placeholder_user_id_and_a_real_anonymous_id_is_anonymous(
    client: TestClient, runtime: Runtime, write_key: str, admin_headers: dict[str, str]
) -> None:
    send(client, write_key, "page", {"userId": "undefined", "anonymousId": "a-1"})
    send(client, write_key, "page", {"userId": "undefined", "anonymousId": "a-2"})
    process_all(runtime)
    assert live_contact_count(runtime) == 2
    assert [c["user_id"] for c in find_contacts(client, admin_headers)] == [None, None]


def test_a_message_over_32_kb_is_rejected(
    client: TestClient, runtime: Runtime, write_key: str
) -> None:
    big = {**TRACK, "properties": {"text": "あ" * 11_000}}  # 33 KB of UTF-8
    response = post(client, "track", big, basic(write_key))
    assert response.status_code == 413, response.text
    assert error_of(response)["code"] == "payload_too_large"
    # In a batch, the big message alone is rejected, by index.
    batch = {"batch": [{"type": "track", **TRACK}, {"type": "track", **big}]}
    response = post(client, "batch", batch, basic(write_key))
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 1
    assert [r["index"] for r in response.json()["rejected"]] == [1]
    assert inbox_count(runtime) == 1


def test_the_32_kb_limit_is_of_the_message_as_json(
    client: TestClient, runtime: Runtime, write_key: str
) -> None:
    """Its properties and context are kept as JSON texts inside the stored message, where every
    quote is escaped again: the limit does not count those escapes."""
    quotes = {**TRACK, "properties": {"text": '"' * 12_000}}  # 24 KB as JSON, 48 KB escaped
    response = post(client, "track", quotes, basic(write_key))
    assert response.status_code == 200, response.text
    more = {**TRACK, "properties": {"text": '"' * 16_500}}  # 33 KB as JSON
    response = post(client, "track", more, basic(write_key))
    assert response.status_code == 413, response.text
    # A view's name and category go into its properties as well, and count once.
    named = {"type": "page", "userId": "u-1", "name": "n" * 200, "category": "c" * 200}
    views = [{**named, "properties": {"text": "x" * size}} for size in (31_900, 32_300)]
    response = post(client, "batch", {"batch": views}, basic(write_key))
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 1
    assert [r["index"] for r in response.json()["rejected"]] == [1]
    assert inbox_count(runtime) == 2


def test_a_batch_over_500_kb_is_413_and_nothing_is_stored(
    client: TestClient, runtime: Runtime, write_key: str
) -> None:
    message = {"type": "track", **TRACK, "properties": {"text": "x" * 20_000}}
    body = json.dumps({"batch": [message] * 26}).encode()
    assert 500 * 1024 < len(body) < 1024 * 1024
    response = post(client, "batch", body, basic(write_key))
    assert response.status_code == 413, response.text
    # The limit is on the JSON, not on what travels: a small gzip body is inflated and measured.
    response = client.post(
        "/v1/batch",
        content=gzip.compress(body),
        headers={**basic(write_key), "Content-Encoding": "gzip"},
    )
    assert response.status_code == 413, response.text
    assert inbox_count(runtime) == 0


def test_a_batch_of_more_than_2500_messages_is_400(
    client: TestClient, runtime: Runtime, write_key: str
) -> None:
    message = {"type": "page", "anonymousId": "a"}
    response = post(client, "batch", {"batch": [message] * 2501}, basic(write_key))
    assert rejected_fields(response) == ["batch"]
    assert inbox_count(runtime) == 0
    response = post(client, "batch", {"batch": [message] * 2500}, basic(write_key))
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 2500


def test_a_batch_keeps_its_valid_messages_and_lists_the_rejected_by_index(
    client: TestClient, runtime: Runtime, write_key: str, admin_headers: dict[str, str]
) -> None:
    batch = [
        {"type": "track", "userId": "u-1", "event": "Kept"},
        {"type": "track", "userId": "u-1"},
        {"type": "identify", "userId": "u-1", "traits": {"plan": "pro"}},
        {"type": "unknown", "userId": "u-1"},
        {"userId": "u-1", "event": "No Type"},
        "not an object",
        {"type": "page", "anonymousId": "undefined"},
        {"type": "page", "userId": "u-1", "timestamp": "not a time"},
    ]
    response = post(client, "batch", {"batch": batch}, basic(write_key))
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["accepted"] == 2
    rejected = {r["index"]: [e["field"] for e in r["errors"]] for r in result["rejected"]}
    assert rejected == {
        1: ["event"],
        3: ["type"],
        4: ["type"],
        5: [""],
        6: ["userId"],
        7: ["timestamp"],
    }
    process_all(runtime)
    contact = only_contact(client, admin_headers, user_id="u-1")
    assert contact["traits"] == {"plan": "pro"}
    assert [e["name"] for e in timeline(client, admin_headers, contact["id"])] == [None, "Kept"]


def test_a_batch_with_no_valid_message_is_400_and_nothing_is_stored(
    client: TestClient, runtime: Runtime, write_key: str
) -> None:
    batch = [{"type": "track", "userId": "u-1"}, {"type": "page", "anonymousId": "null"}]
    response = post(client, "batch", {"batch": batch}, basic(write_key))
    details = error_of(response)["details"]
    assert response.status_code == 400
    assert [(d["index"], d["field"]) for d in details] == [(0, "event"), (1, "userId")]
    assert inbox_count(runtime) == 0
    process_all(runtime)
    assert live_contact_count(runtime) == 0


# --- de-duplication ----------------------------------------------------------------------------


def test_a_message_id_sent_again_is_counted_once(
    client: TestClient, runtime: Runtime, write_key: str, admin_headers: dict[str, str]
) -> None:
    message = {**TRACK, "messageId": "m-1"}
    send(client, write_key, "track", message)
    send(client, write_key, "track", message)  # still waiting in the inbox
    send(client, write_key, "batch", {"batch": [{"type": "track", **message}] * 2})
    assert inbox_count(runtime) == 4  # accepted: repeats are dropped when processed
    assert process_all(runtime, batch_size=1) == 4  # in three batches, the repeats in two
    assert event_count(runtime) == 1
    send(client, write_key, "track", message)  # after processing
    send(client, write_key, "t", {**message, "event": "Retried Differently"})
    process_all(runtime)
    assert event_count(runtime) == 1
    contact = only_contact(client, admin_headers, user_id="u-1")
    assert [e["message_id"] for e in timeline(client, admin_headers, contact["id"])] == ["m-1"]
    assert daily_counts(runtime) == [(contact["id"], "Signed Up", "2026-04-01", 1)]


def test_message_ids_are_per_workspace(
    client: TestClient, runtime: Runtime, write_key: str
) -> None:
    other = new_workspace(runtime, "Other")
    send(client, write_key, "track", {**TRACK, "messageId": "m-1"})
    send(client, other.write_key.key, "track", {**TRACK, "messageId": "m-1"})
    process_all(runtime)
    assert event_count(runtime) == 2


def test_message_ids_whose_keys_collide_are_told_apart(
    client: TestClient, runtime: Runtime, write_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stored ids are looked up by an 8-byte hash; two ids that share one are both kept."""
    monkeypatch.setattr(event_log, "message_key", lambda message_id: 7)
    send(client, write_key, "track", {**TRACK, "messageId": "m-1"})
    process_all(runtime)
    send(client, write_key, "track", {**TRACK, "messageId": "m-2"})
    send(client, write_key, "track", {**TRACK, "messageId": "m-1"})
    process_all(runtime)
    assert event_count(runtime) == 2


def test_profile_edits_stay_out_of_the_index_of_message_keys(
    client: TestClient, runtime: Runtime, write_key: str, admin_headers: dict[str, str]
) -> None:
    """An upsert's identify event has an id Sodate made up, which nobody sends again: it is
    stored without a key (0). A tracked message has one, and is dropped when sent again."""
    upserted = client.post("/api/v1/contacts", json={"user_id": "u-1"}, headers=admin_headers)
    assert upserted.status_code == 201, upserted.text
    for _ in range(2):
        send(client, write_key, "identify", {"userId": "u-1", "messageId": "m-1"})
        process_all(runtime)
    with runtime.db.read() as session:
        rows = session.execute(sa.select(Event.message_id, Event.message_key)).all()
        keys: dict[str, int] = {message_id: key for message_id, key in rows}
    assert len(keys) == 2
    made_up = next(message_id for message_id in keys if message_id != "m-1")
    assert made_up.startswith("api-")
    assert keys == {"m-1": message_key("m-1"), made_up: NO_MESSAGE_KEY}


def test_a_message_id_whose_hash_is_zero_still_has_a_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Key 0 means "never looked up": a real id's hash of 0 must not be taken for it."""
    zero = SimpleNamespace(digest=lambda: bytes(32))
    monkeypatch.setattr(event_models, "sha256", lambda _data: zero)
    monkeypatch.setattr(event_models, "_KEYS", {})  # hashed now, not remembered
    assert message_key("m-1") == 1 != NO_MESSAGE_KEY


def test_messages_without_a_message_id_get_one_each(
    client: TestClient, runtime: Runtime, write_key: str
) -> None:
    send(client, write_key, "track", TRACK)
    send(client, write_key, "track", TRACK)
    process_all(runtime)
    assert event_count(runtime) == 2


# --- time --------------------------------------------------------------------------------------

# The manual clock of the tests reads 2026-04-01T00:00:00Z: that is every message's receivedAt.


def event_time(client: TestClient, headers: dict[str, str], user_id: str) -> datetime:
    contact = only_contact(client, headers, user_id=user_id)
    (event,) = timeline(client, headers, contact["id"])
    assert event["received_at"].startswith("2026-04-01T00:00:00")
    return datetime.fromisoformat(event["timestamp"])


def test_a_skewed_device_clock_is_corrected(
    client: TestClient, runtime: Runtime, write_key: str, admin_headers: dict[str, str]
) -> None:
    # The device clock is 2 h fast: it made the event 30 s before it sent it, by its own clock.
    send(
        client,
        write_key,
        "track",
        {
            **TRACK,
            "originalTimestamp": "2026-04-01T11:59:30+09:00",
            "sentAt": "2026-04-01T03:00:00Z",
        },
    )
    process_all(runtime)
    # timestamp = receivedAt − (sentAt − originalTimestamp) = 00:00:00 − 30 s
    assert event_time(client, admin_headers, "u-1") == datetime.fromisoformat(
        "2026-03-31T23:59:30+00:00"
    )


def test_the_batch_sent_at_applies_to_its_messages(
    client: TestClient, runtime: Runtime, write_key: str, admin_headers: dict[str, str]
) -> None:
    batch = {
        "sentAt": "2026-04-01T05:00:00Z",
        "batch": [
            {"type": "track", "userId": "u-1", "event": "A", "timestamp": "2026-04-01T04:58:00Z"},
            {
                "type": "track",
                "userId": "u-2",
                "event": "B",
                "timestamp": "2026-04-01T04:59:00Z",
                "sentAt": "2026-04-01T04:59:10Z",  # its own sentAt wins
            },
        ],
    }
    send(client, write_key, "batch", batch)
    process_all(runtime)
    assert event_time(client, admin_headers, "u-1") == datetime.fromisoformat(
        "2026-03-31T23:58:00+00:00"
    )
    assert event_time(client, admin_headers, "u-2") == datetime.fromisoformat(
        "2026-03-31T23:59:50+00:00"
    )


def test_without_sent_at_the_time_is_the_senders_or_the_arrival(
    client: TestClient, runtime: Runtime, write_key: str, admin_headers: dict[str, str]
) -> None:
    send(client, write_key, "track", {**TRACK, "timestamp": "2026-03-30T12:00:00+09:00"})
    send(client, write_key, "track", {"userId": "u-2", "event": "Now"})
    send(
        client,
        write_key,
        "track",
        {"userId": "u-3", "event": "X", "timestamp": "2026-03-30T03:00:00"},
    )
    process_all(runtime)
    assert event_time(client, admin_headers, "u-1") == datetime.fromisoformat(
        "2026-03-30T03:00:00+00:00"
    )
    assert event_time(client, admin_headers, "u-2") == datetime.fromisoformat(
        "2026-04-01T00:00:00+00:00"
    )
    # A time without a zone is taken as UTC.
    assert event_time(client, admin_headers, "u-3") == datetime.fromisoformat(
        "2026-03-30T03:00:00+00:00"
    )


def test_times_a_clock_far_off_would_give_are_refused_unless_sent_at_corrects_them(
    client: TestClient, runtime: Runtime, write_key: str, admin_headers: dict[str, str]
) -> None:
    batch = {
        "batch": [
            {"type": "track", "userId": "u-1", "event": "A", "timestamp": "2099-01-01T00:00:00Z"},
            {"type": "track", "userId": "u-2", "event": "B", "timestamp": "0001-01-01T00:00:00Z"},
            {"type": "track", "userId": "u-3", "event": "C", "originalTimestamp": "1970-01-01"},
            # Up to a day ahead is taken as it is (a clock a little fast, zones confused).
            {"type": "track", "userId": "u-4", "event": "D", "timestamp": "2026-04-01T23:00Z"},
            # A plausible time, made implausible by a sentAt years behind: sentAt is at fault.
            {
                "type": "track",
                "userId": "u-6",
                "event": "F",
                "timestamp": "2026-03-31T00:00:00Z",
                "sentAt": "2020-01-01T00:00:00Z",
            },
            # A device a year fast that says so in sentAt is corrected, not refused.
            {
                "type": "track",
                "userId": "u-5",
                "event": "E",
                "timestamp": "2027-04-01T00:00:00Z",
                "sentAt": "2027-04-01T00:00:10Z",
            },
        ]
    }
    response = post(client, "batch", batch, basic(write_key))
    assert response.status_code == 200, response.text
    rejected = {r["index"]: r["errors"] for r in response.json()["rejected"]}
    assert {i: [e["field"] for e in errors] for i, errors in rejected.items()} == {
        0: ["timestamp"],
        1: ["timestamp"],
        2: ["originalTimestamp"],
        4: ["sentAt"],
    }
    assert rejected[0][0]["message"].startswith("in the future (2099-01-01T00:00:00")
    assert rejected[1][0]["message"].startswith("before 1970-01-02")
    process_all(runtime)
    assert event_time(client, admin_headers, "u-4") == datetime.fromisoformat(
        "2026-04-01T23:00:00+00:00"
    )
    assert event_time(client, admin_headers, "u-5") == datetime.fromisoformat(
        "2026-03-31T23:59:50+00:00"
    )


# --- rate limit --------------------------------------------------------------------------------


class FrozenTime:
    """A monotonic clock for the rate limiter that only moves when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def limited(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[TestClient, Runtime, str, FrozenTime]]:
    """An app allowing 5 messages a second, with bursts of 1 s; its limiter's time is frozen."""
    frozen = FrozenTime()
    monkeypatch.setattr(
        routes, "MessageRateLimiter", functools.partial(MessageRateLimiter, monotonic=frozen)
    )
    limited_settings = make_settings(
        settings.database_url, tmp_path, tracking_rate_limit=5, tracking_burst_seconds=1
    )
    runtime = Runtime.create(limited_settings)
    key = new_workspace(runtime).write_key.key
    try:
        with TestClient(create_app(runtime)) as client:
            yield client, runtime, key, frozen
    finally:
        runtime.close()


def page_batch(count: int, start: int = 0) -> dict[str, Any]:
    return {
        "batch": [
            {"type": "page", "anonymousId": "a-1", "messageId": f"m-{start + i}"}
            for i in range(count)
        ]
    }


def test_over_the_rate_limit_is_429_with_retry_after_and_nothing_is_stored(
    limited: tuple[TestClient, Runtime, str, FrozenTime],
) -> None:
    client, runtime, key, frozen = limited
    assert send(client, key, "batch", page_batch(3))["accepted"] == 3
    response = post(client, "batch", page_batch(3, start=3), basic(key))
    assert response.status_code == 429, response.text
    assert error_of(response)["code"] == "rate_limited"
    assert response.headers["Retry-After"] == "1"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert inbox_count(runtime) == 3  # the refused batch left nothing behind
    # The 2 messages left in the bucket can still be spent, then it is empty.
    assert send(client, key, "batch", page_batch(2, start=10))["accepted"] == 2
    assert post(client, "p", {"anonymousId": "a-1"}, basic(key)).status_code == 429
    assert inbox_count(runtime) == 5
    frozen.now += 1  # after Retry-After, 5 more may come
    assert send(client, key, "batch", page_batch(5, start=20))["accepted"] == 5
    assert inbox_count(runtime) == 10


def test_the_rate_limit_is_per_workspace(
    limited: tuple[TestClient, Runtime, str, FrozenTime],
) -> None:
    client, runtime, key, _frozen = limited
    other = new_workspace(runtime, "Other").write_key.key
    send(client, key, "batch", page_batch(5))
    assert post(client, "p", {"anonymousId": "a-1"}, basic(key)).status_code == 429
    assert send(client, other, "batch", page_batch(5))["accepted"] == 5


def test_a_batch_larger_than_the_burst_is_accepted_from_a_full_bucket(
    limited: tuple[TestClient, Runtime, str, FrozenTime],
) -> None:
    client, runtime, key, frozen = limited
    # Else a client whose batches are bigger than the burst would be refused for ever.
    assert send(client, key, "batch", page_batch(8))["accepted"] == 8
    response = post(client, "p", {"anonymousId": "a-1"}, basic(key))
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1"  # 3 owed + 1 wanted, at 5 a second
    frozen.now += 1
    assert send(client, key, "p", {"anonymousId": "a-1"})["accepted"] == 1
    assert inbox_count(runtime) == 9


# --- CORS --------------------------------------------------------------------------------------


def test_a_cors_preflight_is_answered(client: TestClient) -> None:
    for path in ("batch", "b", "track", "t", "page", "p", "identify"):
        response = client.options(
            f"/v1/{path}",
            headers={
                "Origin": "https://shop.example.jp",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        assert response.status_code in (200, 204), (path, response.text)
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert "POST" in response.headers["Access-Control-Allow-Methods"]
        allowed = response.headers["Access-Control-Allow-Headers"].lower()
        # analytics-next adds X-Retry-Count when it resends an event.
        for header in ("content-type", "authorization", "x-retry-count"):
            assert header in allowed, (path, header)


def test_an_accepted_message_answers_with_cors_headers(client: TestClient, write_key: str) -> None:
    response = client.post(
        "/v1/t", json=TRACK, headers={**basic(write_key), "Origin": "https://shop.example.jp"}
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_a_refused_request_answers_with_cors_headers_so_the_browser_can_read_why(
    client: TestClient, write_key: str
) -> None:
    origin = {"Origin": "https://shop.example.jp"}
    refused = [
        client.post("/v1/t", json=TRACK, headers={**basic("wk_unknown"), **origin}),
        client.post("/v1/t", json={"event": "No Id"}, headers={**basic(write_key), **origin}),
    ]
    assert [response.status_code for response in refused] == [401, 400]
    for response in refused:
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert response.json()["error"]["message"]
