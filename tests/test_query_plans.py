"""SQLite's plans for the pipeline's lookups by many values: the values, never the workspace.

Without statistics SQLite prefers an index on `workspace_id =` to an `IN` list of four or
more values, and then reads every row of the workspace for a handful: once a batch, slower
as the workspace grows. This runs every live step (segments, scoring, lifecycle, commerce)
over known contacts, and merges, then the sweepers and the API's reads, and checks the plan of
each statement with an `IN` list.
"""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from sodate.handoff.jobs import handoff_opener
from sodate.lifecycle.jobs import lifecycle_sweeper
from sodate.runtime import Runtime
from sodate.scoring.jobs import score_sweeper
from sodate.segments.jobs import segment_sweeper
from sodate.worker_types import ServiceContext
from sodate.workspaces.schemas import Created
from tests.events.helpers import advance, process_all, send
from tests.plans import query_plans, statements_run

USERS = [f"u-{n}" for n in range(12)]
# A workspace's event names are few: reading them all is no walk.
WORKSPACE_ONLY = re.compile(
    r"SEARCH (?!event_names )\w+ USING (?:COVERING )?INDEX \w+ \(workspace_id=\?\)"
)


def _live(client: TestClient, headers: dict[str, str]) -> None:
    condition = {
        "all": [
            {"attr": "plan", "op": "eq", "value": "pro"},
            {"event": {"name": "Product Added", "within": "7d"}},
        ]
    }
    model = {
        "name": "fit and engagement",
        "fit": [{"when": {"attr": "plan", "op": "eq", "value": "pro"}, "points": 10}],
        "engagement": [{"event": "Product Added", "points": 5, "max_per_day": 10}],
        "thresholds": {"mql": 20},
    }
    rules = {
        "rules": {"lead": {"event": {"name": "Product Added"}}},
        "mql": {"model": "engaged", "threshold": "mql"},
        "dormant": {"after_days": 90},
    }
    browsed = {
        "event": {"name": "Page Viewed", "where": [{"prop": "path", "op": "eq", "value": "/p"}]}
    }
    mailable = {"consent": {"channel": "email"}}
    for path, body in (
        ("/api/v1/segments/pro-shoppers", {"name": "pro shoppers", "condition": condition}),
        ("/api/v1/segments/browsers", {"name": "browsers", "condition": browsed}),
        (
            "/api/v1/segments/mailable-pros",
            {"name": "mailable pros", "condition": {"all": [condition, mailable]}},
        ),
        ("/api/v1/scoring-models/engaged", model),
        ("/api/v1/lifecycle", rules),
    ):
        response = client.put(path, json=body, headers=headers)
        assert response.status_code in (200, 201), response.text


def _activity(client: TestClient, write_key: str, round_: int) -> None:
    for user in USERS:
        traits = {"email": f"{user}@x.jp", "plan": "pro", "round": round_}
        send(client, write_key, "identify", {"userId": user, "traits": traits})
        send(client, write_key, "group", {"userId": user, "groupId": "acme", "traits": {}})
        send(client, write_key, "page", {"userId": user, "properties": {"path": "/p"}})
        product = {"product_id": "sku-1", "price": 1200, "quantity": 1}
        send(
            client,
            write_key,
            "track",
            {"userId": user, "event": "Product Added", "properties": product},
        )
        order = {"order_id": f"o-{user}-{round_}", "total": 1200, "products": [product]}
        send(
            client,
            write_key,
            "track",
            {"userId": user, "event": "Order Completed", "properties": order},
        )
    send(client, write_key, "group", {"userId": "u-1", "groupId": "acme", "traits": {"n": round_}})


MANY = re.compile(r" IN \((?:\?, ){3,}")
# Sweeps read whole workspaces by design (a stage's contacts, say, with `stage IN (…)`); what
# must not walk one is a lookup of some rows by their ids.
MANY_IDS = re.compile(r"\b\w*id IN \((?:\?, ){3,}")


def _walks(runtime: Runtime, statements: dict[str, object]) -> list[str]:
    return [
        f"{plan}\n    {statement}"
        for statement, plan in query_plans(runtime, statements)
        if WORKSPACE_ONLY.search(plan)
    ]


def _known_contacts(client: TestClient, runtime: Runtime, write_key: str) -> None:
    _activity(client, write_key, 1)
    process_all(runtime)
    for user in USERS:  # anonymous visitors, each of whom will turn out to be a known user
        send(client, write_key, "page", {"anonymousId": f"a-{user}", "properties": {"path": "/"}})
    process_all(runtime)


def test_lookups_by_many_values_use_the_values_not_the_workspace(
    client: TestClient, runtime: Runtime, workspace: Created, admin_headers: dict[str, str]
) -> None:
    if runtime.db.dialect != "sqlite":
        pytest.skip("SQLite's query plans")
    write_key = workspace.write_key.key
    _live(client, admin_headers)
    _known_contacts(client, runtime, write_key)
    with statements_run(runtime, lambda statement: bool(MANY.search(statement))) as statements:
        for user in USERS:  # merges: each visitor's contact into the user's
            send(client, write_key, "identify", {"userId": user, "anonymousId": f"a-{user}"})
        process_all(runtime)
        _activity(client, write_key, 2)  # known contacts, stored state: every load runs
        process_all(runtime)
        listed = client.get("/api/v1/contacts", headers=admin_headers)
        assert listed.status_code == 200, listed.text
    assert len(statements) > 10
    walks = _walks(runtime, statements)
    assert not walks, "\n".join(walks)


def test_sweeps_and_reads_use_the_values_not_the_workspace(
    client: TestClient, runtime: Runtime, workspace: Created, admin_headers: dict[str, str]
) -> None:
    """The same for what runs beside the pipeline: the sweepers as time passes, and the
    API's reads of contacts, their timelines, scores, orders, carts, segments and stages."""
    if runtime.db.dialect != "sqlite":
        pytest.skip("SQLite's query plans")
    _live(client, admin_headers)
    _known_contacts(client, runtime, workspace.write_key.key)
    contact = client.get("/api/v1/contacts", params={"user_id": "u-1"}, headers=admin_headers)
    contact_id = contact.json()["items"][0]["id"]
    context = ServiceContext(runtime=runtime, worker_id="test", stop=threading.Event())
    reads = [
        "/api/v1/contacts",
        "/api/v1/contacts?q=u-1",
        f"/api/v1/contacts/{contact_id}",
        f"/api/v1/contacts/{contact_id}/timeline",
        f"/api/v1/contacts/{contact_id}/scores",
        f"/api/v1/contacts/{contact_id}/scores/engaged/history",
        "/api/v1/companies",
        "/api/v1/orders",
        "/api/v1/carts",
        "/api/v1/segments/pro-shoppers/members",
        "/api/v1/segments/pro-shoppers/changes",
        "/api/v1/scoring-models/engaged/crossings",
        "/api/v1/lifecycle/stages",
        "/api/v1/lifecycle/changes",
        "/api/v1/handoffs",
        "/api/v1/reports/leads",
        "/api/v1/exports/contacts?format=csv",
        "/api/v1/exports/contacts?format=jsonl",
    ]
    with statements_run(runtime, lambda statement: bool(MANY_IDS.search(statement))) as statements:
        for days in (1, 8, 100):  # windows close, scores decay, contacts go dormant
            advance(runtime, timedelta(days=days))
            for service in (segment_sweeper, score_sweeper, lifecycle_sweeper, handoff_opener):
                service.run(context)
        for path in reads:
            response = client.get(path, headers=admin_headers)
            assert response.status_code == 200, f"{path}: {response.text}"
    assert len(statements) >= 4
    walks = _walks(runtime, statements)
    assert not walks, "\n".join(walks)
