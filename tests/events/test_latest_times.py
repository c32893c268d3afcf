"""Each contact's latest times per event name: kept batch by batch as the events' own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sodate.events.latest import EVENTS, LATEST, LATEST_COLUMNS, NAMES, latest_times_of
from sodate.runtime import Runtime
from sodate.workspaces.schemas import Created
from tests.events.helpers import process_all, send

START = datetime(2026, 3, 1, tzinfo=UTC)  # before the clock: times ahead are refused
EVENT_NAMES = ("Page Viewed", "Order Completed")
USERS = ("u-1", "u-2", "u-3")


def latest_rows(runtime: Runtime, workspace_id: str) -> dict[tuple[str, int], tuple[Any, ...]]:
    with runtime.db.read() as session:
        rows = session.execute(
            sa.select(NAMES.c.name, LATEST.c.contact_id, *(LATEST.c[c] for c in LATEST_COLUMNS))
            .join(NAMES, NAMES.c.id == LATEST.c.name_id)
            .where(NAMES.c.workspace_id == workspace_id)
        ).all()
    return {(name, contact): tuple(times) for name, contact, *times in rows}


def rebuilt(runtime: Runtime, workspace_id: str) -> dict[tuple[str, int], tuple[Any, ...]]:
    """The rows as the stored events give them (what a rebuild would write)."""
    with runtime.db.read() as session:
        rows = session.execute(latest_times_of([EVENTS.c.workspace_id == workspace_id])).all()
        names = dict(session.execute(sa.select(NAMES.c.id, NAMES.c.name)).all())
    return {(names[name_id], contact): tuple(times) for name_id, contact, *times in rows}


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    events=st.lists(
        st.tuples(
            st.sampled_from(USERS), st.sampled_from(EVENT_NAMES), st.integers(0, 20 * 24 * 60)
        ),
        max_size=40,
    ),
    batch_size=st.integers(1, 12),
)
def test_batches_in_any_order_keep_what_the_events_give(
    client: TestClient,
    runtime: Runtime,
    workspace: Created,
    events: list[tuple[str, str, int]],
    batch_size: int,
) -> None:
    """Events arrive out of time order and in batches of any size, with duplicate times and
    more events than the times kept; the rows always equal a rebuild from the stored events."""
    # The workspace lives through every example: each adds to what earlier ones stored.
    workspace_id = workspace.workspace.id
    messages = [
        {
            "type": "track",
            "userId": user,
            "event": name,
            "timestamp": (START + timedelta(minutes=minutes)).isoformat(),
        }
        for user, name, minutes in events
    ]
    # A name kept before the test's events arrive: the batches merge with stored rows.
    messages.insert(0, {"type": "track", "userId": USERS[0], "event": EVENT_NAMES[0]})
    for start in range(0, len(messages), batch_size):
        send(
            client,
            workspace.write_key.key,
            "batch",
            {"batch": messages[start : start + batch_size]},
        )
        process_all(runtime, batch_size=batch_size)
    kept = latest_rows(runtime, workspace_id)
    assert kept == rebuilt(runtime, workspace_id)
    assert all(times[0] is not None for times in kept.values())


def test_a_merge_gives_the_survivor_the_latest_of_both(
    client: TestClient, runtime: Runtime, workspace: Created, admin_headers: dict[str, str]
) -> None:
    key = workspace.write_key.key
    moments = [START + timedelta(hours=hour) for hour in range(8)]
    batch = [
        {"type": "track", "userId": "a", "event": "Page Viewed", "timestamp": m.isoformat()}
        for m in moments[::2]
    ] + [
        {"type": "track", "userId": "b", "event": "Page Viewed", "timestamp": m.isoformat()}
        for m in moments[1::2]
    ]
    batch.append({"type": "track", "userId": "b", "event": "Order Completed"})
    send(client, key, "batch", {"batch": batch})
    process_all(runtime)
    ids = {
        user: client.get(f"/api/v1/contacts?user_id={user}", headers=admin_headers).json()["items"][
            0
        ]["id"]
        for user in ("a", "b")
    }
    response = client.post(
        f"/api/v1/contacts/{ids['a']}/merge", json={"contact_id": ids["b"]}, headers=admin_headers
    )
    assert response.status_code == 200, response.text

    kept = latest_rows(runtime, workspace.workspace.id)
    assert {contact for _name, contact in kept} == {ids["a"]}
    page_views = kept[("Page Viewed", ids["a"])]
    assert [moment.isoformat() for moment in page_views] == [
        moment.isoformat() for moment in sorted(moments, reverse=True)[:5]
    ]
    assert ("Order Completed", ids["a"]) in kept
