"""Latest times of filtered events: kept for the filters live segments count, exactly as the
stored events give them, and read by the real-time checks.

After every step the kept rows are compared with rows filled again from the events, and the
segments with a recomputation from scratch (`assert_exact`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from fastapi.testclient import TestClient

from sodate.conditions import filtered, state
from sodate.conditions.kept import tracked_filters as kept_filters_of
from sodate.conditions.models import EventFilter, EventFilterLatestTimes
from sodate.conditions.schemas import parse_condition
from sodate.conditions.sql import matching_contacts
from sodate.runtime import Runtime
from sodate.segments import realtime
from sodate.workspaces.schemas import Created
from tests.events.helpers import advance, only_contact, process_all, send
from tests.segments.test_segments import assert_exact, member_ids, put

PRODUCTS = [{"prop": "path", "op": "starts_with", "value": "/products"}]


def browsing(count: int, *, within: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "Page Viewed",
        "where": PRODUCTS,
        "count": {"op": "gte", "value": count},
    }
    if within:
        spec["within"] = within
    return {"event": spec}


def view(client: TestClient, workspace: Created, path: str, **who: str) -> None:
    send(client, workspace.write_key.key, "page", {**who, "properties": {"path": path}})


def kept(runtime: Runtime, workspace_id: str) -> dict[tuple[str, int], list[datetime]]:
    """The kept rows, by filter digest and contact, times newest first."""
    with runtime.db.read() as session:
        return _rows(session, workspace_id)


def refilled(runtime: Runtime, workspace_id: str) -> dict[tuple[str, int], list[datetime]]:
    """The rows the kept filters get when filled again from the stored events, as far back as
    they reach (in a transaction rolled back)."""
    with runtime.db.transaction() as session:
        filtered.rebuild_filtered_times(session, workspace_id, runtime.clock.now())
        rows = _rows(session, workspace_id)
        session.rollback()
    return rows


def _rows(session: Any, workspace_id: str) -> dict[tuple[str, int], list[datetime]]:
    times = EventFilterLatestTimes
    rows = session.execute(
        sa.select(
            EventFilter.digest,
            times.contact_id,
            times.latest_1,
            times.latest_2,
            times.latest_3,
            times.latest_4,
            times.latest_5,
        )
        .join(EventFilter, EventFilter.id == times.filter_id)
        .where(EventFilter.workspace_id == workspace_id)
    ).all()
    return {
        (digest, contact): [t for t in found if t is not None] for digest, contact, *found in rows
    }


def filters(runtime: Runtime, workspace_id: str) -> list[tuple[str, datetime | None]]:
    with runtime.db.read() as session:
        rows = session.execute(
            sa.select(EventFilter.name, EventFilter.since).where(
                EventFilter.workspace_id == workspace_id
            )
        ).all()
    return [(name, since) for name, since in rows]


def test_a_segment_counting_filtered_events_keeps_their_latest_times(
    client: TestClient, runtime: Runtime, workspace: Created, admin_headers: dict[str, str]
) -> None:
    workspace_id = workspace.workspace.id
    for path in ("/products/1", "/products/2", "/blog/1"):
        view(client, workspace, path, userId="u1")
    view(client, workspace, "/products/3", userId="u2")
    process_all(runtime)
    assert filters(runtime, workspace_id) == []
    sato = only_contact(client, admin_headers, user_id="u1")["id"]
    suzuki = only_contact(client, admin_headers, user_id="u2")["id"]

    # Saving the segment registers its filter and fills it from the stored events.
    put(client, admin_headers, "fans", {"name": "fans", "condition": browsing(2)})
    assert filters(runtime, workspace_id) == [("Page Viewed", None)]
    rows = kept(runtime, workspace_id)
    assert {contact: len(times) for (_digest, contact), times in rows.items()} == {
        sato: 2,
        suzuki: 1,
    }
    assert member_ids(client, admin_headers, "fans") == [sato]

    # New events: another match for Suzuki, views elsewhere and other names for both.
    view(client, workspace, "/PRODUCTS/4", userId="u2")  # filters compare folded text
    view(client, workspace, "/pricing", userId="u2")
    send(client, workspace.write_key.key, "track", {"userId": "u1", "event": "Page Viewed"})
    process_all(runtime)
    assert member_ids(client, admin_headers, "fans") == [sato, suzuki]
    assert kept(runtime, workspace_id) == refilled(runtime, workspace_id)
    assert_exact(runtime, workspace)

    # Many matches in one batch keep the five latest.
    for n in range(7):
        view(client, workspace, f"/products/{n}", userId="u1")
    process_all(runtime)
    after = kept(runtime, workspace_id)
    assert [len(times) for (_d, contact), times in after.items() if contact == sato] == [5]
    assert after == refilled(runtime, workspace_id)


def test_the_loader_reads_kept_times_and_counts_what_they_cannot_answer(
    client: TestClient, runtime: Runtime, workspace: Created, admin_headers: dict[str, str]
) -> None:
    """A count the rows answer is read from them; one they cannot (a wider window than they
    were filled for, more events than they keep) is counted on the events, with the same
    result."""
    workspace_id = workspace.workspace.id
    for path in ("/products/1", "/products/2", "/products/3"):
        view(client, workspace, path, userId="u1")
    process_all(runtime)
    sato = only_contact(client, admin_headers, user_id="u1")["id"]
    put(client, admin_headers, "fans", {"name": "fans", "condition": browsing(2, within="7d")})
    conditions = [
        parse_condition(browsing(3, within="7d")),
        parse_condition(browsing(3, within="30d")),
        parse_condition(browsing(6)),
    ]
    with runtime.db.transaction() as session:
        # The kept rows are made to lie: a count read from them shows it.
        session.execute(sa.update(EventFilterLatestTimes).values(latest_2=None, latest_3=None))
        loaded = state.load_states(
            session,
            workspace_id,
            [sato],
            conditions=conditions,
            now=runtime.clock.now(),
            zone=ZoneInfo("Asia/Tokyo"),
        )
        session.rollback()
    counts = {key.split("\x00")[1]: found[sato] for key, found in loaded.counted.items()}
    assert counts == {"7d": 1, "30d": 3, "": 3}


def test_a_merge_gives_the_survivor_the_merged_contact_s_times(
    client: TestClient, runtime: Runtime, workspace: Created, admin_headers: dict[str, str]
) -> None:
    workspace_id = workspace.workspace.id
    put(client, admin_headers, "fans", {"name": "fans", "condition": browsing(3)})
    view(client, workspace, "/products/1", userId="u1")
    view(client, workspace, "/products/2", anonymousId="a-1")
    view(client, workspace, "/products/3", anonymousId="a-1")
    process_all(runtime)
    sato = only_contact(client, admin_headers, user_id="u1")["id"]
    assert member_ids(client, admin_headers, "fans") == []

    # The visitor logs in: the anonymous contact merges into Sato, with its page views.
    send(client, workspace.write_key.key, "identify", {"userId": "u1", "anonymousId": "a-1"})
    process_all(runtime)
    assert member_ids(client, admin_headers, "fans") == [sato]
    rows = kept(runtime, workspace_id)
    assert [(contact, len(times)) for (_d, contact), times in rows.items()] == [(sato, 3)]
    assert rows == refilled(runtime, workspace_id)
    assert_exact(runtime, workspace)


def test_filters_follow_the_segments_that_count_them(
    client: TestClient, runtime: Runtime, workspace: Created, admin_headers: dict[str, str]
) -> None:
    """Registered from the widest window, filled again when a wider one comes, dropped with
    the last segment; filters that read the clock or counts past the times kept are not."""
    workspace_id = workspace.workspace.id
    view(client, workspace, "/products/1", userId="u1")
    process_all(runtime)
    advance(runtime, timedelta(days=10))
    view(client, workspace, "/products/2", userId="u1")
    process_all(runtime)
    sato = only_contact(client, admin_headers, user_id="u1")["id"]

    # The rows reach back to the midnight (UTC) a day or more before the window's start.
    week = (runtime.clock.now().astimezone(UTC) - timedelta(days=8)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    put(client, admin_headers, "week", {"name": "week", "condition": browsing(1, within="7d")})
    assert filters(runtime, workspace_id) == [("Page Viewed", week)]
    # A batch whose `now` was read a moment before the save asks for no wider window.
    with runtime.db.transaction() as session:
        realtime.sync_filters(session, workspace_id, runtime.clock.now() - timedelta(seconds=1))
    assert filters(runtime, workspace_id) == [("Page Viewed", week)]
    assert [len(times) for times in kept(runtime, workspace_id).values()] == [1]

    put(client, admin_headers, "ever", {"name": "ever", "condition": browsing(2)})
    assert filters(runtime, workspace_id) == [("Page Viewed", None)]
    assert [len(times) for times in kept(runtime, workspace_id).values()] == [2]
    assert member_ids(client, admin_headers, "ever") == [sato]

    recent = {"prop": "at", "op": "within_last", "value": "7d"}
    clock = {"event": {"name": "Page Viewed", "where": [recent]}}
    many, none = browsing(6), browsing(0)
    # The same filters in another order are the same filter.
    shuffled = {"event": {"name": "Page Viewed", "where": [*PRODUCTS, recent][::-1]}}
    both = {"event": {"name": "Page Viewed", "where": [*PRODUCTS, {"prop": "x", "op": "exists"}]}}
    for key, condition in (
        ("clock", clock),
        ("many", many),
        ("none", none),
        ("shuffled", shuffled),
    ):
        put(client, admin_headers, key, {"name": key, "condition": condition})
    assert filters(runtime, workspace_id) == [("Page Viewed", None)]

    # The same filters in another order are one filter.
    tagged = [*PRODUCTS, {"prop": "x", "op": "exists"}]
    both = {"event": {"name": "Page Viewed", "where": tagged}}
    reordered = {"event": {"name": "Page Viewed", "where": tagged[::-1]}}
    for key, condition in (("both", both), ("reordered", reordered)):
        put(client, admin_headers, key, {"name": key, "condition": condition})
    assert len(filters(runtime, workspace_id)) == 2

    for key in ("week", "ever", "both", "reordered"):
        assert client.delete(f"/api/v1/segments/{key}", headers=admin_headers).status_code == 204
    assert filters(runtime, workspace_id) == []
    assert kept(runtime, workspace_id) == {}
    assert_exact(runtime, workspace)


def test_the_set_based_evaluator_reads_kept_rows_where_they_answer(
    client: TestClient, runtime: Runtime, workspace: Created, admin_headers: dict[str, str]
) -> None:
    workspace_id = workspace.workspace.id
    view(client, workspace, "/products/old", userId="u1")
    view(client, workspace, "/products/old", userId="u2")
    process_all(runtime)
    advance(runtime, timedelta(days=10))
    for path in ("/products/1", "/products/2", "/blog/1"):
        view(client, workspace, path, userId="u1")
    view(client, workspace, "/blog/2", userId="u2")
    view(client, workspace, "/", userId="u3")
    process_all(runtime)
    sato = only_contact(client, admin_headers, user_id="u1")["id"]
    put(client, admin_headers, "fans", {"name": "fans", "condition": browsing(1)})

    def matching(document: dict[str, Any], *, lying: bool = False) -> list[set[int]]:
        condition = parse_condition(document)
        found = []
        with runtime.db.transaction() as session:
            if lying:
                session.execute(sa.update(EventFilterLatestTimes).values(latest_2=None))
            for kept_filters in (kept_filters_of(session, workspace_id), None):
                query = matching_contacts(
                    condition,
                    dialect=session.get_bind().dialect.name,
                    workspace_id=workspace_id,
                    now=runtime.clock.now(),
                    zone=ZoneInfo("Asia/Tokyo"),
                    kept=kept_filters,
                )
                found.append(set(session.execute(query).scalars()))
            session.rollback()
        return found

    for within in (None, "7d", "30d"):
        for op in ("gte", "gt", "eq", "lt", "lte", "ne"):
            for value in (0, 1, 2, 3, 5):
                spec = browsing(1, within=within)
                spec["event"]["count"] = {"op": op, "value": value}
                with_kept, counted = matching(spec)
                assert with_kept == counted, spec
                negated, counted = matching({"not": spec})
                assert negated == counted, spec
    # Rows made to lie show that they were read.
    assert matching(browsing(2), lying=True) == [set(), {sato}]


def test_late_events_and_events_after_now(
    client: TestClient, runtime: Runtime, workspace: Created, admin_headers: dict[str, str]
) -> None:
    """An event sent late, older than the rows reach, stays out of them, as a fill leaves it;
    one timestamped after now is kept, and a window's count of its contact is made on the
    events (the window's own events may lie beyond the times kept)."""
    workspace_id = workspace.workspace.id
    put(client, admin_headers, "week", {"name": "week", "condition": browsing(2, within="7d")})
    now = runtime.clock.now()
    for days in (-20, -3):
        at = (now + timedelta(days=days)).isoformat()
        view(client, workspace, "/products/1", userId="u1", timestamp=at)
    process_all(runtime)
    sato = only_contact(client, admin_headers, user_id="u1")["id"]
    rows = kept(runtime, workspace_id)
    assert [len(times) for times in rows.values()] == [1]
    assert rows == refilled(runtime, workspace_id)
    assert member_ids(client, admin_headers, "week") == []

    # Five views in the future (clock skew the correction let through), then one now.
    for minutes in range(1, 6):
        at = (now + timedelta(minutes=minutes)).isoformat()
        view(client, workspace, "/products/2", userId="u1", timestamp=at)
    process_all(runtime)
    view(client, workspace, "/products/3", userId="u1")
    process_all(runtime)
    assert member_ids(client, admin_headers, "week") == [sato]
    assert kept(runtime, workspace_id) == refilled(runtime, workspace_id)
    assert_exact(runtime, workspace)
