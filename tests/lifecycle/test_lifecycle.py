"""Lifecycle stages: rules move contacts forward, a threshold makes them MQL once per cycle,
inactivity retires them and activity brings them back; every move is recorded."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from sodate.lifecycle.jobs import lifecycle_sweeper
from sodate.runtime import Runtime
from sodate.worker_types import ServiceContext
from sodate.workspaces.schemas import Created
from tests.events.helpers import advance, only_contact, process_all, send
from tests.workspaces.helpers import error_of

RULES: dict[str, Any] = {
    "rules": {
        "subscriber": {"attr": "email", "op": "exists"},
        "lead": {"event": {"name": "Form Submitted"}},
        "customer": {"event": {"name": "Order Completed"}},
    }
}
MODEL: dict[str, Any] = {
    "engagement": [
        {"event": "Inquiry Submitted", "points": 10},
        {"event": "Unsubscribed", "points": -20},
    ],
    "thresholds": {"mql": 20},
}


def put_rules(client: TestClient, headers: dict[str, str], body: dict[str, Any]) -> Any:
    response = client.put("/api/v1/lifecycle", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def identify(client: TestClient, workspace: Created, user_id: str, **traits: Any) -> None:
    send(client, workspace.write_key.key, "identify", {"userId": user_id, "traits": traits})


def track(client: TestClient, workspace: Created, user_id: str, event: str) -> None:
    send(client, workspace.write_key.key, "track", {"userId": user_id, "event": event})


def stage(client: TestClient, headers: dict[str, str], contact_id: int) -> str | None:
    response = client.get(f"/api/v1/contacts/{contact_id}", headers=headers)
    assert response.status_code == 200, response.text
    value: str | None = response.json()["stage"]
    return value


def moves(client: TestClient, headers: dict[str, str], contact_id: int) -> list[tuple[Any, ...]]:
    response = client.get(f"/api/v1/contacts/{contact_id}/stage/changes", headers=headers)
    assert response.status_code == 200, response.text
    return [
        (change["from"], change["to"], change["source"], change["rule"])
        for change in response.json()["items"]
    ]


def sweep(runtime: Runtime) -> int:
    context = ServiceContext(runtime=runtime, worker_id="test", stop=None)  # type: ignore[arg-type]
    return lifecycle_sweeper.run(context)


def test_rules_move_contacts_forward_and_every_move_is_recorded(
    client: TestClient, runtime: Runtime, workspace: Created, admin_headers: dict[str, str]
) -> None:
    identify(client, workspace, "u1", email="sato@example.jp", name="佐藤")
    track(client, workspace, "u1", "Form Submitted")
    identify(client, workspace, "u2", email="suzuki@example.jp")
    send(client, workspace.write_key.key, "page", {"anonymousId": "anon-1", "name": "Top"})
    process_all(runtime)
    sato = only_contact(client, admin_headers, user_id="u1")["id"]
    suzuki = only_contact(client, admin_headers, user_id="u2")["id"]

    saved = put_rules(client, admin_headers, RULES)
    # Sato meets `subscriber` and `lead`: he goes straight to the further one.
    assert saved["moved"] == {"lead": 1, "subscriber": 1}
    assert stage(client, admin_headers, sato) == "lead"
    assert stage(client, admin_headers, suzuki) == "subscriber"
    assert moves(client, admin_headers, sato) == [(None, "lead", "rule", "lead")]
    assert client.get("/api/v1/lifecycle", headers=admin_headers).json()["rules"] == RULES["rules"]

    # In real time: a purchase makes Suzuki a customer, skipping the stages between.
    track(client, workspace, "u2", "Order Completed")
    process_all(runtime)
    assert stage(client, admin_headers, suzuki) == "customer"
    assert moves(client, admin_headers, suzuki)[1:] == [
        ("subscriber", "customer", "rule", "customer")
    ]

    # By hand, with a reason; rules never move anyone back.
    response = client.put(
        f"/api/v1/contacts/{sato}/stage",
        json={"stage": "opportunity", "reason": "商談化"},
        headers=admin_headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["stage"] == "opportunity"
    track(client, workspace, "u1", "Form Submitted")
    process_all(runtime)
    assert stage(client, admin_headers, sato) == "opportunity"
    change = client.get(f"/api/v1/contacts/{sato}/stage/changes", headers=admin_headers).json()
    last = change["items"][-1]
    assert (last["from"], last["to"], last["source"], last["reason"]) == (
        "lead",
        "opportunity",
        "api",
        "商談化",
    )
    assert last["api_key_id"] is not None

    counts = client.get("/api/v1/lifecycle/stages", headers=admin_headers).json()
    assert {c["stage"]: c["contacts"] for c in counts if c["contacts"]} == {
        "opportunity": 1,
        "customer": 1,
    }
    everything = client.get("/api/v1/lifecycle/changes", headers=admin_headers).json()["items"]
    assert [(c["contact_id"], c["to"]) for c in everything] == [
        (sato, "lead"),
        (suzuki, "subscriber"),
        (suzuki, "customer"),
        (sato, "opportunity"),
    ]


def test_a_threshold_makes_a_lead_mql_once_per_cycle(
    client: TestClient, runtime: Runtime, workspace: Created, admin_headers: dict[str, str]
) -> None:
    identify(client, workspace, "u1", email="sato@example.jp")
    identify(client, workspace, "u2", email="tanaka@example.jp")
    track(client, workspace, "u2", "Inquiry Submitted")
    track(client, workspace, "u2", "Inquiry Submitted")
    process_all(runtime)
    sato = only_contact(client, admin_headers, user_id="u1")["id"]
    tanaka = only_contact(client, admin_headers, user_id="u2")["id"]
    response = client.put("/api/v1/scoring-models/default", json=MODEL, headers=admin_headers)
    assert response.status_code == 201, response.text

    rules = {
        "rules": {"lead": {"attr": "email", "op": "exists"}},
        "mql": {"model": "default", "threshold": "mql"},
    }
    # Tanaka reached the threshold before the rules existed: he is MQL as they are saved.
    assert put_rules(client, admin_headers, rules)["moved"] == {"lead": 2, "mql": 1}
    assert moves(client, admin_headers, tanaka) == [
        (None, "lead", "rule", "lead"),
        ("lead", "mql", "rule", "mql"),
    ]

    track(client, workspace, "u1", "Inquiry Submitted")
    process_all(runtime)
    assert stage(client, admin_headers, sato) == "lead"
    track(client, workspace, "u1", "Inquiry Submitted")
    process_all(runtime)
    assert stage(client, admin_headers, sato) == "mql"

    # Sales sends him back to nurturing: a new cycle. Still above the threshold, he stays a
    # lead until he crosses it again.
    recycled = client.put(
        f"/api/v1/contacts/{sato}/stage", json={"stage": "lead"}, headers=admin_headers
    ).json()
    assert recycled["cycle_started_at"] is not None
    advance(runtime, timedelta(hours=1))
    track(client, workspace, "u1", "Inquiry Submitted")
    process_all(runtime)
    assert stage(client, admin_headers, sato) == "lead"
    track(client, workspace, "u1", "Unsubscribed")  # 30 - 20: below
    process_all(runtime)
    track(client, workspace, "u1", "Inquiry Submitted")  # 20 again: reached in this cycle
    process_all(runtime)
    assert stage(client, admin_headers, sato) == "mql"

    # The rules use the model's threshold: it cannot go, nor the model.
    without = {**MODEL, "thresholds": {"hot": 50}}
    response = client.put("/api/v1/scoring-models/default", json=without, headers=admin_headers)
    assert response.status_code == 422, response.text
    assert error_of(response)["details"][0]["loc"] == ["thresholds"]
    response = client.delete("/api/v1/scoring-models/default", headers=admin_headers)
    assert response.status_code == 409, response.text
    assert error_of(response)["details"] == [{"kind": "lifecycle", "key": "mql"}]


def test_a_model_save_makes_mql_those_it_lifts(
    client: TestClient, runtime: Runtime, workspace: Created, admin_headers: dict[str, str]
) -> None:
    identify(client, workspace, "u1", email="sato@example.jp")
    track(client, workspace, "u1", "Inquiry Submitted")
    process_all(runtime)
    sato = only_contact(client, admin_headers, user_id="u1")["id"]
    client.put("/api/v1/scoring-models/default", json=MODEL, headers=admin_headers)
    put_rules(client, admin_headers, {"mql": {"model": "default"}})
    assert stage(client, admin_headers, sato) is None

    lower = {**MODEL, "engagement": [{"event": "Inquiry Submitted", "points": 25}]}
    response = client.put("/api/v1/scoring-models/default", json=lower, headers=admin_headers)
    assert response.status_code == 200, response.text
    assert stage(client, admin_headers, sato) == "mql"


def test_inactivity_retires_contacts_and_activity_brings_them_back(
    client: TestClient, runtime: Runtime, workspace: Created, admin_headers: dict[str, str]
) -> None:
    identify(client, workspace, "u1", email="sato@example.jp")
    identify(client, workspace, "u2", email="suzuki@example.jp")
    process_all(runtime)
    sato = only_contact(client, admin_headers, user_id="u1")["id"]
    suzuki = only_contact(client, admin_headers, user_id="u2")["id"]
    rules = {
        "rules": {"lead": {"attr": "email", "op": "exists"}},
        "dormant": {"after_days": 30},
        "churned": {"after_days": 90, "from": ["customer"]},
    }
    put_rules(client, admin_headers, rules)
    client.put(
        f"/api/v1/contacts/{suzuki}/stage", json={"stage": "customer"}, headers=admin_headers
    )

    advance(runtime, timedelta(days=29))
    assert sweep(runtime) == 0
    advance(runtime, timedelta(days=2))
    assert sweep(runtime) == 2
    assert stage(client, admin_headers, sato) == "dormant"
    held = client.get(f"/api/v1/contacts/{suzuki}/stage", headers=admin_headers).json()
    assert (held["stage"], held["resume_stage"]) == ("dormant", "customer")

    advance(runtime, timedelta(days=60))
    assert sweep(runtime) == 1  # only customers churn
    assert stage(client, admin_headers, suzuki) == "churned"
    assert stage(client, admin_headers, sato) == "dormant"

    track(client, workspace, "u2", "Logged In")
    process_all(runtime)
    assert stage(client, admin_headers, suzuki) == "customer"
    assert moves(client, admin_headers, suzuki)[2:] == [
        ("customer", "dormant", "rule", "dormant"),
        ("dormant", "churned", "rule", "churned"),
        ("churned", "customer", "rule", "reactivated"),
    ]
    assert sweep(runtime) == 0


def test_a_merge_keeps_the_further_stage(
    client: TestClient, runtime: Runtime, workspace: Created, admin_headers: dict[str, str]
) -> None:
    identify(client, workspace, "u1", email="sato@example.jp")
    identify(client, workspace, "u2", email="sato.private@example.jp")
    process_all(runtime)
    first = only_contact(client, admin_headers, user_id="u1")["id"]
    second = only_contact(client, admin_headers, user_id="u2")["id"]
    put_rules(client, admin_headers, {"rules": {"lead": {"attr": "email", "op": "exists"}}})
    client.put(
        f"/api/v1/contacts/{second}/stage", json={"stage": "customer"}, headers=admin_headers
    )

    response = client.post(
        f"/api/v1/contacts/{first}/merge", json={"contact_id": second}, headers=admin_headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["stage"] == "customer"
    assert moves(client, admin_headers, first)[-1] == ("lead", "customer", "rule", "merge")
    counts = client.get("/api/v1/lifecycle/stages", headers=admin_headers).json()
    assert {c["stage"]: c["contacts"] for c in counts if c["contacts"]} == {"customer": 1}


def test_a_merge_checks_the_survivor_against_the_rules_and_the_threshold(
    client: TestClient, runtime: Runtime, workspace: Created, admin_headers: dict[str, str]
) -> None:
    # Neither contact qualifies alone; the two histories together do, as they would had the
    # events been resolved to one contact from the start.
    response = client.put("/api/v1/scoring-models/default", json=MODEL, headers=admin_headers)
    assert response.status_code in (200, 201), response.text
    twice = {"event": {"name": "Form Submitted", "count": {"op": "gte", "value": 2}}}
    put_rules(
        client,
        admin_headers,
        {"rules": {"lead": twice}, "mql": {"model": "default", "threshold": "mql"}},
    )
    segment = {"name": "MQL", "condition": {"lifecycle": {"in": ["mql"]}}}
    response = client.put("/api/v1/segments/mqls", json=segment, headers=admin_headers)
    assert response.status_code == 201, response.text
    for user_id in ("u1", "u2"):
        track(client, workspace, user_id, "Form Submitted")
        track(client, workspace, user_id, "Inquiry Submitted")
    process_all(runtime)
    first = only_contact(client, admin_headers, user_id="u1")["id"]
    second = only_contact(client, admin_headers, user_id="u2")["id"]
    assert stage(client, admin_headers, first) is None

    response = client.post(
        f"/api/v1/contacts/{first}/merge", json={"contact_id": second}, headers=admin_headers
    )
    assert response.status_code == 200, response.text
    assert moves(client, admin_headers, first) == [
        (None, "lead", "rule", "lead"),
        ("lead", "mql", "rule", "mql"),
    ]
    contact = client.get(f"/api/v1/contacts/{first}", headers=admin_headers).json()
    assert (contact["stage"], contact["segments"]) == ("mql", ["mqls"])
    changes = client.get("/api/v1/segments/mqls/changes", headers=admin_headers).json()
    assert [(c["contact_id"], c["entered"], c["cause"]) for c in changes["items"]] == [
        (first, True, "merge")
    ]


def test_segments_follow_stages(
    client: TestClient, runtime: Runtime, workspace: Created, admin_headers: dict[str, str]
) -> None:
    identify(client, workspace, "u1", email="sato@example.jp")
    process_all(runtime)
    sato = only_contact(client, admin_headers, user_id="u1")["id"]
    segment = {"name": "顧客", "condition": {"lifecycle": {"in": ["customer"]}}}
    response = client.put("/api/v1/segments/customers", json=segment, headers=admin_headers)
    assert response.status_code == 201, response.text
    put_rules(client, admin_headers, RULES)

    track(client, workspace, "u1", "Order Completed")
    process_all(runtime)
    contact = client.get(f"/api/v1/contacts/{sato}", headers=admin_headers).json()
    assert contact["segments"] == ["customers"]

    client.put(f"/api/v1/contacts/{sato}/stage", json={"stage": "churned"}, headers=admin_headers)
    changes = client.get("/api/v1/segments/customers/changes", headers=admin_headers).json()
    assert [(c["entered"], c["cause"]) for c in changes["items"]] == [
        (True, "event"),
        (False, "stage"),
    ]

    # A segment the rules read cannot be deleted.
    put_rules(client, admin_headers, {"rules": {"customer": {"segment": "customers"}}})
    response = client.delete("/api/v1/segments/customers", headers=admin_headers)
    assert response.status_code == 409, response.text
    assert error_of(response)["details"] == [{"kind": "lifecycle", "key": "customer"}]


def test_invalid_rules_are_refused_with_every_error(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    body = {
        "rules": {
            "mql": {"attr": "email", "op": "exists"},
            "lead": {"lifecycle": {"in": ["subscriber"]}},
            "vip": {"attr": "email", "op": "exists"},
        },
        "dormant": {"after_days": 90},
        "churned": {"after_days": 30, "from": ["dormant"]},
    }
    response = client.put("/api/v1/lifecycle", json=body, headers=admin_headers)
    assert response.status_code == 422, response.text
    details = {tuple(d["loc"]): d["msg"] for d in error_of(response)["details"]}
    # Each error named by its path, every one of them.
    assert "set `mql`" in details[("body", "rules", "mql", "[key]")]
    assert "cannot read the lifecycle stage" in details[("body", "rules", "lead")]
    assert ("body", "rules", "vip", "[key]") in details
    assert "ordered stages only" in details[("body", "churned")]
    body["churned"] = {"after_days": 30}
    response = client.put("/api/v1/lifecycle", json=body, headers=admin_headers)
    details = {tuple(d["loc"]): d["msg"] for d in error_of(response)["details"]}
    assert "more than dormant's (90)" in details[("body", "churned")]

    unknown = {
        "rules": {
            "lead": {"segment": "nope"},
            "sql": {"score": {"model": "x", "op": "gt", "value": 1}},
        },
        "mql": {"model": "missing"},
    }
    response = client.put("/api/v1/lifecycle", json=unknown, headers=admin_headers)
    assert response.status_code == 422, response.text
    assert sorted(detail["loc"] for detail in error_of(response)["details"]) == [
        ["mql", "model"],
        ["rules", "lead", "segment"],
        ["rules", "sql", "score", "model"],
    ]
    assert client.get("/api/v1/lifecycle", headers=admin_headers).json()["updated_at"] is None
