"""Scoring: models saved and applied to everyone, points in real time, caps, decay, thresholds.

After every step the tests score every contact again from scratch and expect the same scores:
the real-time path and the set-based recomputation must agree.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from sodate.runtime import Runtime
from sodate.scoring import live, recompute, service, tables
from sodate.scoring.jobs import score_sweeper
from sodate.scoring.models import ScoreCause
from sodate.worker_types import ServiceContext
from sodate.workspaces import service as workspaces
from sodate.workspaces.schemas import Created
from tests.events.helpers import advance, only_contact, process_all, send
from tests.workspaces.helpers import error_of

MODEL: dict[str, Any] = {
    "name": "既定",
    "fit": [
        {"when": {"attr": "job_title", "op": "contains", "value": "部長"}, "points": 10},
        {"when": {"attr": "company.employees", "op": "gte", "value": 1000}, "points": 10},
        {"when": {"attr": "email", "op": "ends_with", "value": "@gmail.com"}, "points": -5},
    ],
    "engagement": [
        {"event": "Inquiry Submitted", "points": 10},
        {"event": "Seminar Attended", "points": 8},
        {"event": "Email Opened", "points": 1, "max_per_day": 1},
        {
            "event": "Page Viewed",
            "where": [{"prop": "path", "op": "starts_with", "value": "/pricing"}],
            "points": 2,
            "max_total": 5,
        },
        {"event": "Unsubscribed", "points": -20},
    ],
    "decay": {"half_life_days": 30},
    "thresholds": {"mql": 60, "warm": 20},
}


def put_model(client: TestClient, headers: dict[str, str], key: str, body: dict[str, Any]) -> Any:
    response = client.put(f"/api/v1/scoring-models/{key}", json=body, headers=headers)
    assert response.status_code in (200, 201), response.text
    return response.json()


def scores(client: TestClient, headers: dict[str, str], contact_id: int) -> Any:
    response = client.get(f"/api/v1/contacts/{contact_id}/scores", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def crossings(client: TestClient, headers: dict[str, str], key: str) -> list[tuple[Any, ...]]:
    response = client.get(f"/api/v1/scoring-models/{key}/crossings", headers=headers)
    assert response.status_code == 200, response.text
    return [
        (c["contact_id"], c["threshold"], c["reached"], c["cause"])
        for c in response.json()["items"]
    ]


def track(client: TestClient, workspace: Created, user_id: str, event: str, **props: Any) -> None:
    body = {"userId": user_id, "event": event, "properties": props}
    send(client, workspace.write_key.key, "track", body)


def identify(client: TestClient, workspace: Created, user_id: str, **traits: Any) -> None:
    send(client, workspace.write_key.key, "identify", {"userId": user_id, "traits": traits})


def stored_scores(runtime: Runtime) -> dict[tuple[int, int], tuple[float, float]]:
    with runtime.db.read() as session:
        rows = session.execute(
            sa.select(
                tables.SCORES.c.model_id,
                tables.SCORES.c.contact_id,
                tables.SCORES.c.fit,
                tables.SCORES.c.engagement_base,
            )
        ).all()
    return {(model, contact): (fit, base) for model, contact, fit, base in rows}


def assert_exact(runtime: Runtime, workspace: Created) -> None:
    """Scoring everyone again from their history gives the scores real time kept, and no
    threshold is crossed by it."""
    before = stored_scores(runtime)
    workspace_id = workspace.workspace.id
    with runtime.db.transaction() as session:
        zone = workspaces.workspace_zone(session, workspace_id)
        for model in live.live_models(session, workspace_id):
            moved = recompute.recompute_model(
                session,
                workspace_id,
                model,
                now=runtime.clock.now(),
                zone=zone,
                cause=ScoreCause.MODEL,
            )
            assert moved == (0, 0), model.key
    after = stored_scores(runtime)
    assert after.keys() == before.keys()
    for key, (fit, base) in after.items():
        assert fit == before[key][0], key
        assert math.isclose(base, before[key][1], rel_tol=1e-9, abs_tol=1e-9), key


def test_a_model_scores_everyone_then_follows_events(
    client: TestClient, runtime: Runtime, workspace: Created, admin_headers: dict[str, str]
) -> None:
    identify(client, workspace, "u1", job_title="営業部長", email="sato@example.co.jp")
    identify(client, workspace, "u2", job_title="担当", email="suzuki@gmail.com")
    send(
        client,
        workspace.write_key.key,
        "group",
        {"userId": "u1", "groupId": "acme", "traits": {"name": "アクメ", "employees": 5000}},
    )
    track(client, workspace, "u1", "Inquiry Submitted")
    process_all(runtime)
    sato = only_contact(client, admin_headers, user_id="u1")["id"]
    suzuki = only_contact(client, admin_headers, user_id="u2")["id"]

    saved = client.put("/api/v1/scoring-models/default", json=MODEL, headers=admin_headers)
    assert saved.status_code == 201, saved.text
    assert saved.json()["model"]["scored_contacts"] == 2
    assert saved.json()["reached"] == 1  # Sato: 10 + 10 + 10 = 30 reaches `warm`
    sato_scores = scores(client, admin_headers, sato)["default"]
    assert (sato_scores["fit"], sato_scores["engagement"], sato_scores["total"]) == (20, 10, 30)
    assert sato_scores["thresholds_reached"] == ["warm"]
    assert [(r["rule"], r["points"]) for r in sato_scores["reasons"]] == [
        ("fit.0", 10),
        ("fit.1", 10),
        ("engagement.0", 10),
    ]
    assert scores(client, admin_headers, suzuki)["default"]["total"] == -5
    contact = client.get(f"/api/v1/contacts/{sato}", headers=admin_headers).json()
    assert contact["scores"] == {"default": {"fit": 20, "engagement": 10, "total": 30}}
    assert crossings(client, admin_headers, "default") == [(sato, "warm", True, "model")]

    # Events score as they are processed; Suzuki's title changes the fit.
    track(client, workspace, "u2", "Seminar Attended")
    track(client, workspace, "u2", "Inquiry Submitted")
    identify(client, workspace, "u2", job_title="部長")
    process_all(runtime)
    suzuki_scores = scores(client, admin_headers, suzuki)["default"]
    assert (suzuki_scores["fit"], suzuki_scores["engagement"]) == (5, 18)
    assert crossings(client, admin_headers, "default")[1:] == [(suzuki, "warm", True, "event")]
    assert_exact(runtime, workspace)

    # Negative points: an unsubscribe takes Suzuki below `warm` again.
    track(client, workspace, "u2", "Unsubscribed")
    process_all(runtime)
    assert scores(client, admin_headers, suzuki)["default"]["total"] == 3
    assert crossings(client, admin_headers, "default")[2:] == [(suzuki, "warm", False, "event")]
    assert_exact(runtime, workspace)

    history = client.get(
        f"/api/v1/contacts/{suzuki}/scores/default/history", headers=admin_headers
    ).json()["items"]
    assert [(point["total"], point["cause"]) for point in history] == [
        (-5, "model"),
        (23, "event"),
        (3, "event"),
    ]


def test_caps_per_day_and_in_total(
    client: TestClient, runtime: Runtime, workspace: Created, admin_headers: dict[str, str]
) -> None:
    put_model(client, admin_headers, "default", {**MODEL, "decay": None})
    for _ in range(3):
        track(client, workspace, "u1", "Email Opened")
    for path in ("/pricing", "/pricing/enterprise", "/about", "/pricing", "/pricing"):
        track(client, workspace, "u1", "Page Viewed", path=path)
    process_all(runtime)
    sato = only_contact(client, admin_headers, user_id="u1")["id"]
    reasons = {
        r["rule"]: r["points"] for r in scores(client, admin_headers, sato)["default"]["reasons"]
    }
    # One point a day for opens; pricing views give 2 each up to 5 in all (the third gives 1).
    assert reasons == {"engagement.2": 1, "engagement.3": 5}
    assert_exact(runtime, workspace)

    advance(runtime, timedelta(days=1))
    track(client, workspace, "u1", "Email Opened")
    track(client, workspace, "u1", "Page Viewed", path="/pricing")
    process_all(runtime)
    reasons = {
        r["rule"]: r["points"] for r in scores(client, admin_headers, sato)["default"]["reasons"]
    }
    assert reasons == {"engagement.2": 2, "engagement.3": 5}
    assert_exact(runtime, workspace)


def test_engagement_decays_exactly_and_the_sweep_records_falling_below(
    client: TestClient, runtime: Runtime, workspace: Created, admin_headers: dict[str, str]
) -> None:
    model = {**MODEL, "thresholds": {"warm": 12}}
    put_model(client, admin_headers, "default", model)
    track(client, workspace, "u1", "Inquiry Submitted")
    track(client, workspace, "u1", "Seminar Attended")
    process_all(runtime)
    sato = only_contact(client, admin_headers, user_id="u1")["id"]
    assert scores(client, admin_headers, sato)["default"]["engagement"] == 18

    advance(runtime, timedelta(days=30))
    assert scores(client, admin_headers, sato)["default"]["engagement"] == 9
    advance(runtime, timedelta(days=15))
    assert scores(client, admin_headers, sato)["default"]["engagement"] == round(
        18 * 2 ** (-1.5), 2
    )
    assert crossings(client, admin_headers, "default") == [(sato, "warm", True, "event")]
    context = ServiceContext(runtime=runtime, worker_id="test", stop=None)  # type: ignore[arg-type]
    assert score_sweeper.run(context) == 1
    assert crossings(client, admin_headers, "default")[1:] == [(sato, "warm", False, "time")]
    assert score_sweeper.run(context) == 0
    assert_exact(runtime, workspace)

    # An inquiry now: 10 + 6.36 reaches `warm` again.
    track(client, workspace, "u1", "Inquiry Submitted")
    process_all(runtime)
    assert crossings(client, admin_headers, "default")[2:] == [(sato, "warm", True, "event")]
    assert_exact(runtime, workspace)


def test_a_changed_model_rescores_everyone(
    client: TestClient, runtime: Runtime, workspace: Created, admin_headers: dict[str, str]
) -> None:
    put_model(client, admin_headers, "default", MODEL)
    track(client, workspace, "u1", "Inquiry Submitted")
    process_all(runtime)
    sato = only_contact(client, admin_headers, user_id="u1")["id"]
    changed = {**MODEL, "engagement": [{"event": "Inquiry Submitted", "points": 25}]}
    saved = put_model(client, admin_headers, "default", changed)
    assert saved["reached"] == 1
    assert scores(client, admin_headers, sato)["default"]["total"] == 25
    removed = {**MODEL, "engagement": [{"event": "Seminar Attended", "points": 1}]}
    saved = put_model(client, admin_headers, "default", removed)
    assert (saved["reached"], saved["fell"]) == (0, 1)
    assert scores(client, admin_headers, sato)["default"]["total"] == 0
    assert saved["model"]["scored_contacts"] == 0


def test_a_merge_scores_the_survivor_from_both_histories(
    client: TestClient, runtime: Runtime, workspace: Created, admin_headers: dict[str, str]
) -> None:
    put_model(client, admin_headers, "default", {**MODEL, "decay": None})
    send(
        client,
        workspace.write_key.key,
        "track",
        {"anonymousId": "anon-1", "event": "Seminar Attended"},
    )
    track(client, workspace, "u1", "Inquiry Submitted")
    process_all(runtime)
    send(client, workspace.write_key.key, "alias", {"userId": "u1", "previousId": "anon-1"})
    process_all(runtime)
    sato = only_contact(client, admin_headers, user_id="u1")["id"]
    assert scores(client, admin_headers, sato)["default"]["engagement"] == 18
    assert_exact(runtime, workspace)


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        (
            {"fit": [{"when": {"event": {"name": "Login"}}, "points": 5}]},
            [["fit", 0, "when"]],
        ),
        (
            {
                "fit": [{"when": {"attr": "plan", "op": "eq", "value": "pro"}, "points": 0}],
                "engagement": [
                    {"event": "Login", "points": 1, "max_per_day": 0},
                    {"event": "Login", "points": 1, "colour": "red"},
                ],
                "decay": {"half_life_days": -1},
            },
            [
                ["fit", 0, "points"],
                ["engagement", 0, "max_per_day"],
                ["engagement", 1, "colour"],
                ["decay", "half_life_days"],
            ],
        ),
        ({}, [[]]),
        (
            {
                "fit": [
                    {
                        "when": {"attr": "created_at", "op": "within_last", "value": "7d"},
                        "points": 1,
                    }
                ]
            },
            [["fit", 0, "when"]],
        ),
    ],
)
def test_an_invalid_model_is_refused_with_every_error_and_nothing_saved(
    client: TestClient, admin_headers: dict[str, str], body: dict[str, Any], errors: list[Any]
) -> None:
    response = client.put("/api/v1/scoring-models/bad", json=body, headers=admin_headers)
    assert response.status_code == 422, response.text
    found = [detail["loc"][1:] for detail in error_of(response)["details"]]
    assert found == errors
    assert client.get("/api/v1/scoring-models/bad", headers=admin_headers).status_code == 404


def test_segments_read_scores_in_real_time_and_a_model_in_use_cannot_be_deleted(
    client: TestClient, runtime: Runtime, workspace: Created, admin_headers: dict[str, str]
) -> None:
    put_model(client, admin_headers, "default", MODEL)
    hot = {"name": "熱い", "condition": {"score": {"model": "default", "op": "gte", "value": 15}}}
    unknown = {"name": "x", "condition": {"score": {"model": "nope", "op": "gte", "value": 1}}}
    response = client.put("/api/v1/segments/x", json=unknown, headers=admin_headers)
    assert response.status_code == 422, response.text
    assert [d["loc"] for d in error_of(response)["details"]] == [["condition", "score", "model"]]
    response = client.put("/api/v1/segments/hot", json=hot, headers=admin_headers)
    assert response.status_code == 201, response.text

    track(client, workspace, "u1", "Inquiry Submitted")
    process_all(runtime)
    sato = only_contact(client, admin_headers, user_id="u1")["id"]
    assert client.get(f"/api/v1/contacts/{sato}", headers=admin_headers).json()["segments"] == []
    track(client, workspace, "u1", "Seminar Attended")
    process_all(runtime)
    assert client.get(f"/api/v1/contacts/{sato}", headers=admin_headers).json()["segments"] == [
        "hot"
    ]

    # A model change rescores everyone and the segments reading it follow at once.
    put_model(client, admin_headers, "default", {**MODEL, "engagement": MODEL["engagement"][:1]})
    changes = client.get("/api/v1/segments/hot/changes", headers=admin_headers).json()["items"]
    assert [(c["entered"], c["cause"]) for c in changes] == [(True, "event"), (False, "model")]

    response = client.delete("/api/v1/scoring-models/default", headers=admin_headers)
    assert response.status_code == 409, response.text
    assert error_of(response)["details"] == [{"kind": "segment", "key": "hot"}]
    assert client.delete("/api/v1/segments/hot", headers=admin_headers).status_code == 204
    assert client.delete("/api/v1/scoring-models/default", headers=admin_headers).status_code == 204


def test_a_save_records_crossings_decay_made_and_writes_history_only_for_changes(
    client: TestClient, runtime: Runtime, workspace: Created, admin_headers: dict[str, str]
) -> None:
    model = {**MODEL, "thresholds": {"warm": 12}}
    put_model(client, admin_headers, "default", model)
    track(client, workspace, "u1", "Inquiry Submitted")
    track(client, workspace, "u1", "Seminar Attended")
    track(client, workspace, "u2", "Unsubscribed")
    process_all(runtime)
    sato = only_contact(client, admin_headers, user_id="u1")["id"]
    suzuki = only_contact(client, admin_headers, user_id="u2")["id"]
    history = f"/api/v1/contacts/{suzuki}/scores/default/history"
    assert len(client.get(history, headers=admin_headers).json()["items"]) == 1

    advance(runtime, timedelta(days=45))  # 18 → 6.36, below `warm`; nobody swept yet
    saved = put_model(client, admin_headers, "default", {**model, "thresholds": {"warm": 5}})
    assert (saved["reached"], saved["fell"]) == (0, 0)
    assert crossings(client, admin_headers, "default") == [
        (sato, "warm", True, "event"),
        (sato, "warm", False, "time"),
    ]
    # The same rules a month and a half later: nobody's score changed, so no history.
    assert len(client.get(history, headers=admin_headers).json()["items"]) == 1
    assert_exact(runtime, workspace)


def test_moving_the_epoch_changes_no_score(
    client: TestClient, runtime: Runtime, workspace: Created, admin_headers: dict[str, str]
) -> None:
    put_model(client, admin_headers, "default", MODEL)
    track(client, workspace, "u1", "Inquiry Submitted")
    track(client, workspace, "u1", "Email Opened")
    process_all(runtime)
    sato = only_contact(client, admin_headers, user_id="u1")["id"]
    advance(runtime, timedelta(days=20))
    before = scores(client, admin_headers, sato)
    with runtime.db.transaction() as session:
        (model,) = live.live_models(session, workspace.workspace.id)
        recompute.rebase(session, model, now=runtime.clock.now())
    assert scores(client, admin_headers, sato) == before
    assert_exact(runtime, workspace)  # bases stored after the move match a recomputation


def test_a_total_shown_as_a_threshold_has_reached_it_in_every_reader(
    client: TestClient, runtime: Runtime, workspace: Created, admin_headers: dict[str, str]
) -> None:
    """Six inquiries an hour after the model's epoch: 60 points, which decay's arithmetic
    leaves at 59.99999999999999. Shown as 60, they reach `mql: 60` everywhere."""
    put_model(client, admin_headers, "default", MODEL)
    segments = {
        "mql-60": {"score": {"model": "default", "op": "gte", "value": 60}},
        "below-60": {"score": {"model": "default", "op": "lt", "value": 60}},
        "above-60": {"score": {"model": "default", "op": "gt", "value": 60}},
        "at-most-60": {"score": {"model": "default", "op": "lte", "value": 60}},
        "60-to-70": {"score": {"model": "default", "op": "between", "value": [60, 70]}},
    }
    for key, condition in segments.items():
        response = client.put(
            f"/api/v1/segments/{key}",
            json={"name": key, "condition": condition},
            headers=admin_headers,
        )
        assert response.status_code == 201, response.text
    advance(runtime, timedelta(minutes=61))
    for _ in range(6):
        track(client, workspace, "u5", "Inquiry Submitted")
    process_all(runtime)
    contact = only_contact(client, admin_headers, user_id="u5")
    assert scores(client, admin_headers, contact["id"])["default"]["total"] == 60
    assert scores(client, admin_headers, contact["id"])["default"]["thresholds_reached"] == [
        "warm",
        "mql",
    ]
    assert crossings(client, admin_headers, "default") == [
        (contact["id"], "warm", True, "event"),
        (contact["id"], "mql", True, "event"),
    ]
    expected = ["60-to-70", "at-most-60", "mql-60"]
    assert sorted(contact["segments"]) == expected  # in memory, in real time
    for key, condition in segments.items():  # and compiled to SQL
        response = client.post(
            "/api/v1/segments/preview", json={"condition": condition}, headers=admin_headers
        )
        assert response.json()["count"] == (1 if key in expected else 0), key
    assert_exact(runtime, workspace)


def test_events_up_to_an_engagement_reset_give_no_points_even_when_they_arrive_late(
    client: TestClient, runtime: Runtime, workspace: Created, admin_headers: dict[str, str]
) -> None:
    put_model(client, admin_headers, "default", MODEL)
    track(client, workspace, "u1", "Inquiry Submitted")
    process_all(runtime)
    sato = only_contact(client, admin_headers, user_id="u1")["id"]
    advance(runtime, timedelta(hours=1))
    reset_at = runtime.clock.now()
    with runtime.db.transaction() as session:
        service.reset_engagement(session, workspace.workspace.id, "default", sato, now=reset_at)
    assert scores(client, admin_headers, sato)["default"]["engagement"] == 0
    # A seminar half an hour before the reset, sent late by an app that was offline, and an
    # inquiry at the reset's instant: neither gives points. One a minute later does.
    late = (reset_at - timedelta(minutes=30)).isoformat()
    body = {"userId": "u1", "event": "Seminar Attended", "timestamp": late}
    send(client, workspace.write_key.key, "track", body)
    track(client, workspace, "u1", "Inquiry Submitted")
    process_all(runtime)
    assert scores(client, admin_headers, sato)["default"]["engagement"] == 0
    advance(runtime, timedelta(minutes=1))
    track(client, workspace, "u1", "Inquiry Submitted")
    process_all(runtime)
    assert round(scores(client, admin_headers, sato)["default"]["engagement"]) == 10
    assert_exact(runtime, workspace)  # as a recomputation (a model save) scores them


def test_an_event_from_a_clock_ahead_is_worth_its_points_and_no_more(
    client: TestClient, runtime: Runtime, workspace: Created, admin_headers: dict[str, str]
) -> None:
    put_model(client, admin_headers, "default", MODEL)
    # A device's clock twelve hours ahead, with no sentAt to correct it by: accepted as sent.
    ahead = (runtime.clock.now() + timedelta(hours=12)).isoformat()
    body = {"userId": "u1", "event": "Seminar Attended", "timestamp": ahead}
    send(client, workspace.write_key.key, "track", body)
    process_all(runtime)
    sato = only_contact(client, admin_headers, user_id="u1")["id"]
    assert scores(client, admin_headers, sato)["default"]["engagement"] == 8
    assert_exact(runtime, workspace)  # a recomputation decays it from the same moment
    advance(runtime, timedelta(days=30))
    assert scores(client, admin_headers, sato)["default"]["engagement"] == 4


def test_each_model_keeps_its_own_fit_rules_in_real_time(
    client: TestClient, runtime: Runtime, workspace: Created, admin_headers: dict[str, str]
) -> None:
    """Two models' first fit rules share a name (`fit.0`), not a condition."""
    titles = {
        "fit": [{"when": {"attr": "job_title", "op": "contains", "value": "部長"}, "points": 7}]
    }
    plans = {"fit": [{"when": {"attr": "plan", "op": "eq", "value": "pro"}, "points": 3}]}
    put_model(client, admin_headers, "titles", titles)
    put_model(client, admin_headers, "plans", plans)
    identify(client, workspace, "u1", job_title="営業部長", plan="free")
    identify(client, workspace, "u2", job_title="担当", plan="pro")
    process_all(runtime)
    sato = only_contact(client, admin_headers, user_id="u1")["id"]
    suzuki = only_contact(client, admin_headers, user_id="u2")["id"]
    held = {
        contact: {
            key: score["fit"] for key, score in scores(client, admin_headers, contact).items()
        }
        for contact in (sato, suzuki)
    }
    assert held == {sato: {"titles": 7, "plans": 0}, suzuki: {"titles": 0, "plans": 3}}
    assert_exact(runtime, workspace)
