"""The event processor: one transaction per batch, arrival order, counts, seen times, companies."""

from __future__ import annotations

import gc
import json
import re
import threading
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from sodate import pipeline
from sodate.contacts.models import ContactMerge
from sodate.events import service as event_log
from sodate.events.ingest import TrackingRequest, ingest
from sodate.events.pipeline import EventBatch
from sodate.events.ratelimit import MessageRateLimiter
from sodate.events.schemas import MessageType
from sodate.runtime import Runtime
from sodate.workspaces.schemas import Created
from tests.events.helpers import (
    basic,
    count_rows,
    daily_counts,
    event_count,
    inbox_count,
    live_contact_count,
    only_contact,
    process_all,
    send,
    timeline,
)
from tests.plans import query_plans, statements_run


@pytest.fixture
def write_key(workspace: Created) -> str:
    return workspace.write_key.key


class Crash(RuntimeError):
    pass


def crash(_session: Session, batch: EventBatch) -> None:
    raise Crash(f"the processor died after the other steps of {len(batch.events)} events")


def test_the_collector_waits_while_a_batch_is_processed(
    client: TestClient, runtime: Runtime, write_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    collecting: list[bool] = []

    def watch(_session: Session, _batch: EventBatch) -> None:
        collecting.append(gc.isenabled())

    monkeypatch.setattr(pipeline, "STEPS", (*pipeline.STEPS, watch))
    send(client, write_key, "track", {"userId": "u-1", "event": "Signed Up"})
    assert process_all(runtime) == 1
    assert collecting == [False]
    assert gc.isenabled()


def test_a_crash_rolls_the_batch_back_and_it_is_then_processed_exactly_once(
    client: TestClient,
    runtime: Runtime,
    write_key: str,
    admin_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Before: a known user, and an anonymous browser that is about to turn out to be them.
    send(client, write_key, "identify", {"userId": "u-1", "traits": {"plan": "free"}})
    send(client, write_key, "page", {"anonymousId": "a-2"})
    process_all(runtime)
    before = client.get("/api/v1/contacts", headers=admin_headers).json()
    assert len(before["items"]) == 2
    # The batch: a merge, trait changes, a company, events with daily counts.
    send(
        client,
        write_key,
        "batch",
        {
            "batch": [
                {"type": "identify", "userId": "u-1", "anonymousId": "a-2"},
                {"type": "identify", "userId": "u-1", "traits": {"plan": "pro"}},
                {"type": "group", "userId": "u-1", "groupId": "acme", "traits": {"name": "Acme"}},
                {"type": "track", "userId": "u-1", "event": "Upgraded"},
                {"type": "track", "userId": "u-3", "event": "Signed Up"},
            ]
        },
    )
    monkeypatch.setattr(pipeline, "STEPS", (*pipeline.STEPS, crash))
    with pytest.raises(Crash):
        process_all(runtime)
    # Nothing of the batch happened, and it is all still waiting.
    assert inbox_count(runtime) == 5
    assert event_count(runtime) == 2
    assert count_rows(runtime, ContactMerge) == 0
    assert client.get("/api/v1/contacts", headers=admin_headers).json() == before
    assert client.get("/api/v1/companies", headers=admin_headers).json()["items"] == []
    counts_before = daily_counts(runtime)

    monkeypatch.setattr(pipeline, "STEPS", tuple(s for s in pipeline.STEPS if s is not crash))
    assert process_all(runtime) == 5
    assert process_all(runtime) == 0
    assert inbox_count(runtime) == 0
    assert event_count(runtime) == 7
    assert count_rows(runtime, ContactMerge) == 1
    assert live_contact_count(runtime) == 2
    user = only_contact(client, admin_headers, user_id="u-1")
    assert user["traits"] == {"plan": "pro"}
    assert user["company"]["group_key"] == "acme"
    assert len(timeline(client, admin_headers, user["id"])) == 6
    counts = {(name, count) for _c, name, _d, count in daily_counts(runtime)}
    assert counts == {("Page Viewed", 1), ("Upgraded", 1), ("Signed Up", 1)}
    assert len(daily_counts(runtime)) == len(counts_before) + 2


def test_a_crash_before_the_inbox_forgets_a_batch_applies_nothing_twice(
    client: TestClient,
    runtime: Runtime,
    write_key: str,
    admin_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On SQLite the inbox, a file of its own, forgets a batch's requests after the batch
    commits; a crash in between must not apply their messages twice. On PostgreSQL the batch's
    transaction deletes them, and the crash rolls it all back."""
    send(client, write_key, "identify", {"userId": "u-1", "traits": {"plan": "free"}})
    send(
        client,
        write_key,
        "batch",
        {
            "batch": [
                {"type": "track", "userId": "u-1", "event": "Upgraded", "messageId": "m-1"},
                {"type": "page", "userId": "u-1", "messageId": "m-2"},
                {"type": "group", "userId": "u-1", "groupId": "acme"},
            ]
        },
    )

    def lost(_session: Session, _ids: Any) -> None:
        raise Crash("the processor died before the inbox forgot the batch")

    monkeypatch.setattr(event_log, "delete_inbox", lost)
    with pytest.raises(Crash):
        process_all(runtime)
    assert event_count(runtime) == (4 if runtime.inbox is not runtime.db else 0)
    assert inbox_count(runtime) == 4

    monkeypatch.undo()
    assert process_all(runtime) == 4
    assert inbox_count(runtime) == 0
    assert event_count(runtime) == 4
    assert sorted((name, count) for _c, name, _d, count in daily_counts(runtime)) == [
        ("Page Viewed", 1),
        ("Upgraded", 1),
    ]
    user = only_contact(client, admin_headers, user_id="u-1")
    assert len(timeline(client, admin_headers, user["id"])) == 4


def test_accepting_does_not_wait_for_a_batch_being_processed(
    runtime: Runtime, write_key: str
) -> None:
    """On SQLite the inbox has a writer of its own: requests are accepted while the event
    processor's transaction holds the database's."""
    request = TrackingRequest(
        body=b'{"userId": "u-1", "event": "Signed Up"}',
        content_encoding=None,
        authorization=basic(write_key)["Authorization"],
        write_key_header=None,
        message_type=MessageType.TRACK,
    )
    accepted: list[int] = []
    thread = threading.Thread(
        target=lambda: accepted.append(ingest(runtime, MessageRateLimiter(0, 1), request).accepted)
    )
    with runtime.db.transaction() as session:
        session.execute(sa.text("DELETE FROM event_daily_counts"))  # holds the writer
        thread.start()
        thread.join(timeout=10)
        assert accepted == [1]
    assert inbox_count(runtime) == 1


@pytest.mark.parametrize("batch_size", [1, 1000])
def test_traits_are_applied_in_arrival_order_and_empty_values_never_erase(
    client: TestClient,
    runtime: Runtime,
    write_key: str,
    admin_headers: dict[str, str],
    batch_size: int,
) -> None:
    messages: list[dict[str, Any]] = [
        {"traits": {"plan": "free", "lastName": "山田", "firstName": "太郎", "company": "A社"}},
        {"traits": {"plan": "pro", "company": "", "title": None}},
        {"traits": {"plan": None, "title": "部長", "tags": []}},
        # Sent later, made earlier: arrival order decides, not the device's timestamp.
        {"traits": {"plan": "enterprise"}, "timestamp": "2026-01-01T00:00:00Z"},
        {"traits": {"firstName": "   "}},
    ]
    for message in messages:
        send(client, write_key, "identify", {"userId": "u-1", **message})
    assert process_all(runtime, batch_size=batch_size) == len(messages)
    contact = only_contact(client, admin_headers, user_id="u-1")
    assert contact["traits"] == {
        "plan": "enterprise",
        "lastName": "山田",
        "firstName": "太郎",
        "company": "A社",
        "title": "部長",
    }
    assert contact["name"] == "山田 太郎"


def test_each_contact_keeps_its_own_order_within_a_batch(
    client: TestClient, runtime: Runtime, write_key: str, admin_headers: dict[str, str]
) -> None:
    batch = []
    for step in range(5):
        for user in ("u-1", "u-2"):
            batch.append({"type": "identify", "userId": user, "traits": {"step": step}})
    send(client, write_key, "batch", {"batch": batch})
    process_all(runtime)
    for user in ("u-1", "u-2"):
        assert only_contact(client, admin_headers, user_id=user)["traits"] == {"step": 4}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_daily_counts_and_first_and_last_seen(
    client: TestClient, runtime: Runtime, write_key: str, admin_headers: dict[str, str]
) -> None:
    def track(event: str, timestamp: str) -> dict[str, Any]:
        return {"type": "track", "userId": "u-1", "event": event, "timestamp": timestamp}

    batch = [
        track("Viewed", "2026-03-30T10:00:00Z"),
        track("Viewed", "2026-03-30T23:59:59Z"),
        track("Viewed", "2026-03-31T00:00:00Z"),
        {"type": "page", "userId": "u-1", "timestamp": "2026-03-31T02:00:00Z"},
        {"type": "identify", "userId": "u-1", "timestamp": "2026-03-30T12:00:00Z"},
    ]
    send(client, write_key, "batch", {"batch": batch})
    process_all(runtime)
    contact = only_contact(client, admin_headers, user_id="u-1")
    cid = contact["id"]
    assert daily_counts(runtime) == [
        (cid, "Page Viewed", "2026-03-31", 1),
        (cid, "Viewed", "2026-03-30", 2),
        (cid, "Viewed", "2026-03-31", 1),
    ]
    assert at(contact["first_seen_at"]) == at("2026-03-30T10:00:00Z")
    assert at(contact["last_seen_at"]) == at("2026-03-31T02:00:00Z")

    # Later batches add to the counts; a late event moves first seen back, never last seen.
    send(client, write_key, "batch", {"batch": [track("Viewed", "2026-03-30T08:00:00+09:00")]})
    send(client, write_key, "batch", {"batch": [track("Viewed", "2026-03-30T00:30:00Z")]})
    process_all(runtime)
    contact = only_contact(client, admin_headers, user_id="u-1")
    # Days are UTC days: 08:00 in Tokyo on the 30th is the 29th.
    assert daily_counts(runtime) == [
        (cid, "Page Viewed", "2026-03-31", 1),
        (cid, "Viewed", "2026-03-29", 1),
        (cid, "Viewed", "2026-03-30", 3),
        (cid, "Viewed", "2026-03-31", 1),
    ]
    assert at(contact["first_seen_at"]) == at("2026-03-29T23:00:00Z")
    assert at(contact["last_seen_at"]) == at("2026-03-31T02:00:00Z")


def test_profile_edits_through_the_api_do_not_make_a_contact_seen(
    client: TestClient, runtime: Runtime, write_key: str, admin_headers: dict[str, str]
) -> None:
    created = client.post(
        "/api/v1/contacts",
        json={"user_id": "u-1", "traits": {"plan": "free"}},
        headers=admin_headers,
    ).json()["contact"]
    assert created["first_seen_at"] is None
    send(client, write_key, "track", {"userId": "u-1", "event": "Visited"})
    process_all(runtime)
    seen = only_contact(client, admin_headers, user_id="u-1")
    assert at(seen["first_seen_at"]) == at("2026-04-01T00:00:00Z")
    assert seen["sources"] == ["api", "tracking"]
    # API writes have no event name: nothing is counted for them.
    assert [name for _c, name, _d, _n in daily_counts(runtime)] == ["Visited"]


def test_group_creates_and_updates_a_company_and_links_the_contact(
    client: TestClient, runtime: Runtime, write_key: str, admin_headers: dict[str, str]
) -> None:
    traits = {"name": "株式会社アクメ", "employees": 50, "industry": "SaaS"}
    send(client, write_key, "group", {"userId": "u-1", "groupId": "acme", "traits": traits})
    process_all(runtime)
    contact = only_contact(client, admin_headers, user_id="u-1")
    company = contact["company"]
    assert company["group_key"] == "acme"
    assert company["name"] == "株式会社アクメ"
    assert company["traits"] == traits
    assert contact["traits"] == {}  # group traits belong to the company

    # Another member; empty values leave the company's traits alone.
    send(
        client,
        write_key,
        "g",
        {"userId": "u-2", "groupId": "acme", "traits": {"employees": 80, "industry": ""}},
    )
    process_all(runtime)
    listed = client.get("/api/v1/companies", headers=admin_headers).json()["items"]
    assert len(listed) == 1
    assert listed[0]["traits"] == {**traits, "employees": 80}
    assert listed[0]["contact_count"] == 2
    assert only_contact(client, admin_headers, user_id="u-2")["company"]["id"] == company["id"]

    # A member moving to another company.
    send(client, write_key, "group", {"userId": "u-1", "groupId": "beta"})
    process_all(runtime)
    moved = only_contact(client, admin_headers, user_id="u-1")
    assert moved["company"]["group_key"] == "beta"
    assert moved["company"]["name"] is None
    members = client.get(
        "/api/v1/contacts", params={"company_id": company["id"]}, headers=admin_headers
    ).json()["items"]
    assert [m["user_id"] for m in members] == ["u-2"]
    acme = client.get(f"/api/v1/companies/{company['id']}", headers=admin_headers).json()
    assert acme["contact_count"] == 1


def _send_pages(client: TestClient, write_key: str, senders: int) -> None:
    """50 page views in requests of 10, from `senders` anonymous people in turn."""
    for start in range(0, 50, 10):
        pages = [
            {"type": "page", "anonymousId": f"a-{i % senders}"} for i in range(start, start + 10)
        ]
        send(client, write_key, "batch", {"batch": pages})


def _batch_sizes(runtime: Runtime, batch_size: int) -> list[int]:
    sizes = []
    while done := pipeline.process_pending(runtime, batch_size=batch_size):
        sizes.append(done)
    return sizes


def test_messages_each_from_another_person_are_processed_in_batches_of_the_given_size(
    client: TestClient, runtime: Runtime, write_key: str
) -> None:
    _send_pages(client, write_key, senders=50)
    assert _batch_sizes(runtime, batch_size=20) == [20, 20, 10]
    assert event_count(runtime) == 50
    assert live_contact_count(runtime) == 50


@pytest.mark.parametrize(
    ("senders", "sizes"),
    [
        # 30 messages and twice their 15 senders make three times the batch size.
        (15, [30, 20]),
        # Never more than twice the batch size, however few send them.
        (7, [40, 10]),
    ],
)
def test_a_batch_holds_more_messages_when_people_send_several(
    client: TestClient, runtime: Runtime, write_key: str, senders: int, sizes: list[int]
) -> None:
    _send_pages(client, write_key, senders=senders)
    assert _batch_sizes(runtime, batch_size=20) == sizes
    assert event_count(runtime) == 50
    assert live_contact_count(runtime) == senders


FROM_EVENTS = re.compile(r"\bFROM events\b")


def test_a_batch_reads_its_own_events_not_the_workspaces_history(
    client: TestClient, runtime: Runtime, write_key: str
) -> None:
    """On SQLite, the daily counts and the message id lookup must not walk the workspace's
    range of the name index: that reads every event the workspace ever had, once a batch. The
    lookup goes through the index of message keys, which holds only some events."""
    if runtime.db.dialect != "sqlite":
        pytest.skip("SQLite's query plans")
    send(client, write_key, "track", {"userId": "u-1", "event": "Signed Up", "messageId": "m-1"})
    with statements_run(runtime, lambda statement: bool(FROM_EVENTS.search(statement))) as run:
        process_all(runtime)
    assert any("message_key" in statement for statement in run)
    assert any("event_daily_counts" in statement for statement in run)
    for statement, plan in query_plans(runtime, run):
        assert "ix_events_workspace_id_name_timestamp" not in plan, (statement, plan)
        if "message_key" in statement:  # the index holds keys of messages sent, not 0s
            assert "INDEX ix_events_message_key (message_key=?)" in plan, (statement, plan)


def test_requests_accepted_before_parts_were_kept_as_text_are_processed_as_before(
    client: TestClient,
    runtime: Runtime,
    workspace: Created,
    write_key: str,
    admin_headers: dict[str, str],
) -> None:
    """A Sodate upgraded with requests waiting: their messages carry properties and context as
    objects, and a view's name beside its properties."""
    line = {"externalIds": [{"id": "U4af4980629", "type": "line"}]}
    earlier = {
        "type": "page",
        "messageId": "m-earlier",
        "anonymousId": "a-1",
        "name": "料金",
        "category": "docs",
        "properties": {"path": "/pricing"},
        "traits": {},
        "context": {**line, "locale": "ja-JP"},
        "timestamp": "2026-03-30T10:00:00+00:00",
        "receivedAt": "2026-03-30T10:00:01+00:00",
    }
    with runtime.inbox.transaction() as session:
        event_log.add_to_inbox(
            session,
            workspace.workspace.id,
            [json.dumps(earlier, ensure_ascii=False)],
            received_at=datetime(2026, 3, 30, 10, 0, 1, tzinfo=UTC),
        )
    # The same page view accepted now, from a device that the LINE id ties to the same person.
    now = {**earlier, "messageId": "m-now", "anonymousId": "a-2", "context": line}
    send(client, write_key, "page", {k: v for k, v in now.items() if k != "receivedAt"})
    process_all(runtime)

    contact = only_contact(client, admin_headers, external_id="line:U4af4980629")
    views = {item["message_id"]: item for item in timeline(client, admin_headers, contact["id"])}
    assert sorted(views) == ["m-earlier", "m-now"]
    for view in views.values():
        assert view["name"] == "Page Viewed"
        assert view["properties"] == {"path": "/pricing", "name": "料金", "category": "docs"}
    assert views["m-earlier"]["context"] == {**line, "locale": "ja-JP"}
    assert views["m-now"]["context"]["externalIds"] == line["externalIds"]
