"""Segments: saved conditions whose members stay exact in real time, as time passes, and by hand.

After every step the tests also recompute every segment from scratch and expect nothing to
move: the real-time path and the set-based recomputation must agree.
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sodate.runtime import Runtime
from sodate.segments import membership
from sodate.segments import realtime as segment_realtime
from sodate.segments.jobs import segment_sweeper
from sodate.segments.models import ChangeCause
from sodate.worker_types import ServiceContext
from sodate.workspaces import service as workspaces
from sodate.workspaces.schemas import Created
from tests.conftest import bearer
from tests.events.helpers import advance, only_contact, process_all, send
from tests.workspaces.helpers import create_key, error_locs, error_of

HOT = {
    "all": [
        {"attr": "plan", "op": "eq", "value": "pro"},
        {"event": {"name": "Demo Requested", "within": "7d"}},
    ]
}


def put(client: TestClient, headers: dict[str, str], key: str, body: dict[str, Any]) -> Any:
    response = client.put(f"/api/v1/segments/{key}", json=body, headers=headers)
    assert response.status_code in (200, 201), response.text
    return response.json()


def plan_is(plan: str) -> dict[str, Any]:
    return {"name": "pro", "condition": {"attr": "plan", "op": "eq", "value": plan}}


def member_ids(client: TestClient, headers: dict[str, str], key: str) -> list[int]:
    response = client.get(f"/api/v1/segments/{key}/members", headers=headers)
    assert response.status_code == 200, response.text
    return [item["contact_id"] for item in response.json()["items"]]


def changes(client: TestClient, headers: dict[str, str], key: str) -> list[tuple[int, bool, str]]:
    response = client.get(f"/api/v1/segments/{key}/changes", headers=headers)
    assert response.status_code == 200, response.text
    return [(c["contact_id"], c["entered"], c["cause"]) for c in response.json()["items"]]


def assert_exact(runtime: Runtime, workspace: Created) -> None:
    """Recomputing every segment from scratch moves nobody: real time kept them exact."""
    workspace_id = workspace.workspace.id
    with runtime.db.transaction() as session:
        zone = workspaces.workspace_zone(session, workspace_id)
        for segment in membership.dynamic_segments(session, workspace_id):
            moved = membership.recompute(
                session,
                workspace_id,
                segment,
                now=runtime.clock.now(),
                zone=zone,
                cause=ChangeCause.SAVED,
            )
            assert moved == (0, 0), segment.key


def identify(client: TestClient, workspace: Created, user_id: str, **traits: Any) -> None:
    send(client, workspace.write_key.key, "identify", {"userId": user_id, "traits": traits})


def track(client: TestClient, workspace: Created, user_id: str, event: str) -> None:
    send(client, workspace.write_key.key, "track", {"userId": user_id, "event": event})


def test_a_saved_segment_is_computed_then_kept_in_real_time(
    client: TestClient, runtime: Runtime, workspace: Created, admin_headers: dict[str, str]
) -> None:
    identify(client, workspace, "u1", plan="pro", email="sato@example.jp")
    identify(client, workspace, "u2", plan="free", email="suzuki@example.jp")
    track(client, workspace, "u1", "Demo Requested")
    process_all(runtime)
    sato = only_contact(client, admin_headers, user_id="u1")["id"]
    suzuki = only_contact(client, admin_headers, user_id="u2")["id"]

    saved = client.put(
        "/api/v1/segments/hot", json={"name": "熱いリード", "condition": HOT}, headers=admin_headers
    )
    assert saved.status_code == 201, saved.text
    assert saved.json()["entered"] == 1
    assert saved.json()["segment"]["member_count"] == 1
    computed = saved.json()["segment"]["computed_at"]
    assert computed is not None  # the members were computed before the answer
    assert client.get("/api/v1/segments/hot", headers=admin_headers).json()["computed_at"] == (
        computed
    )
    assert member_ids(client, admin_headers, "hot") == [sato]
    assert changes(client, admin_headers, "hot") == [(sato, True, "saved")]

    # Saving the same condition again moves nobody.
    again = put(client, admin_headers, "hot", {"name": "熱いリード", "condition": HOT})
    assert (again["entered"], again["exited"]) == (0, 0)

    # Events move members as they are processed: Suzuki upgrades and asks for a demo.
    identify(client, workspace, "u2", plan="PRO")
    process_all(runtime)
    assert member_ids(client, admin_headers, "hot") == [sato]
    track(client, workspace, "u2", "Demo Requested")
    process_all(runtime)
    assert member_ids(client, admin_headers, "hot") == [sato, suzuki]
    # Sato downgrades and leaves.
    identify(client, workspace, "u1", plan="free")
    process_all(runtime)
    assert member_ids(client, admin_headers, "hot") == [suzuki]
    assert changes(client, admin_headers, "hot")[1:] == [
        (suzuki, True, "event"),
        (sato, False, "event"),
    ]
    assert_exact(runtime, workspace)

    # A new contact who matches from its first batch enters in that batch.
    send(
        client,
        workspace.write_key.key,
        "batch",
        {
            "batch": [
                {"type": "identify", "userId": "u3", "traits": {"plan": "pro"}},
                {"type": "track", "userId": "u3", "event": "Demo Requested"},
            ]
        },
    )
    process_all(runtime)
    tanaka = only_contact(client, admin_headers, user_id="u3")["id"]
    assert member_ids(client, admin_headers, "hot") == [suzuki, tanaka]
    assert_exact(runtime, workspace)


def test_time_moves_members_through_the_sweep(
    client: TestClient, runtime: Runtime, workspace: Created, admin_headers: dict[str, str]
) -> None:
    identify(client, workspace, "u1", plan="pro")
    track(client, workspace, "u1", "Demo Requested")
    process_all(runtime)
    put(client, admin_headers, "hot", {"name": "hot", "condition": HOT})
    lapsed = {"not": {"event": {"name": "Demo Requested", "within": "7d"}}}
    put(client, admin_headers, "lapsed", {"name": "lapsed", "condition": lapsed})
    sato = only_contact(client, admin_headers, user_id="u1")["id"]
    assert member_ids(client, admin_headers, "hot") == [sato]
    assert member_ids(client, admin_headers, "lapsed") == []

    advance(runtime, timedelta(days=8))
    context = ServiceContext(runtime=runtime, worker_id="test", stop=None)  # type: ignore[arg-type]
    assert segment_sweeper.run(context) == 2
    assert member_ids(client, admin_headers, "hot") == []
    assert member_ids(client, admin_headers, "lapsed") == [sato]
    assert changes(client, admin_headers, "lapsed") == [(sato, True, "time")]
    assert segment_sweeper.run(context) == 0
    assert_exact(runtime, workspace)


def test_segments_built_on_segments_follow_them(
    client: TestClient, runtime: Runtime, workspace: Created, admin_headers: dict[str, str]
) -> None:
    identify(client, workspace, "u1", plan="pro", job_title="部長")
    process_all(runtime)
    put(
        client,
        admin_headers,
        "pro",
        plan_is("pro"),
    )
    managers = {
        "all": [{"segment": "pro"}, {"attr": "job_title", "op": "contains", "value": "部長"}]
    }
    put(client, admin_headers, "pro-managers", {"name": "pro managers", "condition": managers})
    sato = only_contact(client, admin_headers, user_id="u1")["id"]
    assert member_ids(client, admin_headers, "pro-managers") == [sato]

    identify(client, workspace, "u1", plan="free")
    process_all(runtime)
    assert member_ids(client, admin_headers, "pro") == []
    assert member_ids(client, admin_headers, "pro-managers") == []
    assert_exact(runtime, workspace)

    # Changing the segment read recomputes its readers too.
    put(
        client,
        admin_headers,
        "pro",
        plan_is("free"),
    )
    assert member_ids(client, admin_headers, "pro-managers") == [sato]

    # A cycle is refused, naming the path; so is a segment that does not exist.
    cycle = client.put(
        "/api/v1/segments/pro",
        json={"name": "pro", "condition": {"any": [{"segment": "pro-managers"}]}},
        headers=admin_headers,
    )
    assert cycle.status_code == 422
    detail = error_of(cycle)["details"][0]
    assert detail["loc"] == ["condition", "any", 0, "segment"]
    assert "pro → pro-managers → pro" in detail["msg"]
    unknown = client.put(
        "/api/v1/segments/x",
        json={"name": "x", "condition": {"segment": "nope"}},
        headers=admin_headers,
    )
    assert unknown.status_code == 422
    assert error_of(unknown)["details"][0]["msg"] == "no segment 'nope'"

    # A segment in use cannot be deleted; the error lists its users.
    refused = client.delete("/api/v1/segments/pro", headers=admin_headers)
    assert refused.status_code == 409
    assert error_of(refused)["details"] == [{"kind": "segment", "key": "pro-managers"}]
    assert client.delete("/api/v1/segments/pro-managers", headers=admin_headers).status_code == 204
    assert client.delete("/api/v1/segments/pro", headers=admin_headers).status_code == 204
    assert client.get("/api/v1/segments/pro", headers=admin_headers).status_code == 404


def test_every_reference_a_condition_cannot_use_is_named_at_once(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    put(client, admin_headers, "pro", plan_is("pro"))
    condition = {
        "all": [
            {"segment": "nope"},
            {"score": {"model": "nomodel", "op": "gte", "value": 3}},
            {"segment": "pro"},
            {"not": {"segment": "x"}},
        ]
    }
    # A missing model hid the missing segment, and the cycle.
    refused = client.put(
        "/api/v1/segments/x", json={"name": "x", "condition": condition}, headers=admin_headers
    )
    assert refused.status_code == 422, refused.text
    error = error_of(refused)
    assert error["message"] == "the condition names segments or scoring models it cannot use"
    assert sorted(error["details"], key=str) == sorted(
        [
            {
                "loc": ["condition", "all", 1, "score", "model"],
                "msg": "no scoring model 'nomodel'",
                "type": "model",
            },
            {
                "loc": ["condition", "all", 0, "segment"],
                "msg": "no segment 'nope'",
                "type": "segment",
            },
            {
                "loc": ["condition", "all", 3, "not", "segment"],
                "msg": "segments would read each other in a cycle: x → x",
                "type": "cycle",
            },
        ],
        key=str,
    )
    assert client.get("/api/v1/segments/x", headers=admin_headers).status_code == 404
    preview = client.post(
        "/api/v1/segments/preview", json={"condition": condition}, headers=admin_headers
    )
    assert preview.status_code == 422
    assert sorted(map(str, error_locs(preview))) == sorted(
        map(
            str,
            [
                ["condition", "all", 1, "score", "model"],
                ["condition", "all", 0, "segment"],
                ["condition", "all", 3, "not", "segment"],
            ],
        )
    )


def test_a_reader_counts_the_events_of_contacts_moved_by_the_segment_it_reads(
    client: TestClient, runtime: Runtime, workspace: Created, admin_headers: dict[str, str]
) -> None:
    """The reader's own events did not change, only its membership of the segment it reads:
    its counts must be loaded for that contact all the same."""
    identify(client, workspace, "u1", plan="free")
    for _ in range(2):
        track(client, workspace, "u1", "Demo Requested")
    process_all(runtime)
    put(client, admin_headers, "pro", plan_is("pro"))
    repeat = {"event": {"name": "Demo Requested", "count": {"op": "gte", "value": 2}}}
    filtered = {"event": {"name": "Demo Requested", "where": [{"prop": "x", "op": "not_exists"}]}}
    for key, counted in (("pro-repeat", repeat), ("pro-filtered", filtered)):
        condition = {"all": [{"segment": "pro"}, counted]}
        put(client, admin_headers, key, {"name": key, "condition": condition})
        assert member_ids(client, admin_headers, key) == []

    identify(client, workspace, "u1", plan="pro")
    process_all(runtime)
    sato = only_contact(client, admin_headers, user_id="u1")["id"]
    assert member_ids(client, admin_headers, "pro-repeat") == [sato]
    assert member_ids(client, admin_headers, "pro-filtered") == [sato]
    assert_exact(runtime, workspace)


def test_static_lists_change_by_hand_and_their_readers_follow(
    client: TestClient, runtime: Runtime, workspace: Created, admin_headers: dict[str, str]
) -> None:
    identify(client, workspace, "u1", plan="pro")
    identify(client, workspace, "u2", plan="pro")
    process_all(runtime)
    sato = only_contact(client, admin_headers, user_id="u1")["id"]
    suzuki = only_contact(client, admin_headers, user_id="u2")["id"]
    put(client, admin_headers, "booth", {"name": "展示会2026 来場者", "kind": "static"})
    reader = {"all": [{"segment": "booth"}, {"attr": "plan", "op": "eq", "value": "pro"}]}
    put(client, admin_headers, "booth-pro", {"name": "booth pro", "condition": reader})

    added = client.post(
        "/api/v1/segments/booth/members",
        json={"contact_ids": [sato, suzuki, sato]},
        headers=admin_headers,
    )
    assert added.json() == {"changed": 2}
    assert member_ids(client, admin_headers, "booth-pro") == [sato, suzuki]
    removed = client.post(
        "/api/v1/segments/booth/members/remove",
        json={"contact_ids": [suzuki]},
        headers=admin_headers,
    )
    assert removed.json() == {"changed": 1}
    assert member_ids(client, admin_headers, "booth") == [sato]
    assert member_ids(client, admin_headers, "booth-pro") == [sato]
    assert changes(client, admin_headers, "booth") == [
        (sato, True, "api"),
        (suzuki, True, "api"),
        (suzuki, False, "api"),
    ]
    assert_exact(runtime, workspace)

    missing = client.post(
        "/api/v1/segments/booth/members", json={"contact_ids": [999999]}, headers=admin_headers
    )
    assert missing.status_code == 422
    dynamic = client.post(
        "/api/v1/segments/booth-pro/members", json={"contact_ids": [sato]}, headers=admin_headers
    )
    assert dynamic.status_code == 409
    kind_change = client.put(
        "/api/v1/segments/booth",
        json={"name": "b", "condition": {"attr": "plan", "op": "exists"}},
        headers=admin_headers,
    )
    assert kind_change.status_code == 409


def test_a_merge_moves_static_lists_and_leaves_the_merged_contact_out(
    client: TestClient, runtime: Runtime, workspace: Created, admin_headers: dict[str, str]
) -> None:
    send(client, workspace.write_key.key, "page", {"anonymousId": "a-1"})
    identify(client, workspace, "u1", plan="pro")
    process_all(runtime)
    visitor = only_contact(client, admin_headers, anonymous_id="a-1")["id"]
    sato = only_contact(client, admin_headers, user_id="u1")["id"]
    put(client, admin_headers, "booth", {"name": "booth", "kind": "static"})
    client.post(
        "/api/v1/segments/booth/members", json={"contact_ids": [visitor]}, headers=admin_headers
    )
    put(
        client,
        admin_headers,
        "pro",
        plan_is("pro"),
    )

    # The visitor logs in: the anonymous contact merges into Sato.
    send(client, workspace.write_key.key, "identify", {"userId": "u1", "anonymousId": "a-1"})
    process_all(runtime)
    assert member_ids(client, admin_headers, "booth") == [sato]
    assert changes(client, admin_headers, "booth")[-2:] == [
        (visitor, False, "merge"),
        (sato, True, "merge"),
    ]
    assert member_ids(client, admin_headers, "pro") == [sato]
    assert_exact(runtime, workspace)


def test_roles_and_validation(client: TestClient, admin_headers: dict[str, str]) -> None:
    viewer = bearer(create_key(client, admin_headers, role="viewer")["key"])
    body = {"name": "hot", "condition": HOT}
    assert client.put("/api/v1/segments/hot", json=body, headers=viewer).status_code == 403
    marketer = bearer(create_key(client, admin_headers, role="marketer")["key"])
    assert client.put("/api/v1/segments/hot", json=body, headers=marketer).status_code == 201
    assert [s["key"] for s in client.get("/api/v1/segments", headers=viewer).json()] == ["hot"]

    no_condition = client.put("/api/v1/segments/x", json={"name": "x"}, headers=admin_headers)
    assert no_condition.status_code == 422
    bad_key = client.put("/api/v1/segments/-x", json=body, headers=admin_headers)
    assert bad_key.status_code == 422
    bad = client.put(
        "/api/v1/segments/x",
        json={"name": "x", "condition": {"all": [{"attr": "plan", "op": "gt", "value": "a"}]}},
        headers=admin_headers,
    )
    assert bad.status_code == 422
    assert error_of(bad)["details"][0]["loc"] == ["body", "condition", "all", 0, "value"]
    assert client.get("/api/v1/segments/x", headers=admin_headers).status_code == 404


PART_SEGMENTS: dict[str, Any] = {
    "pro": {"attr": "plan", "op": "eq", "value": "pro"},
    "not-free": {"attr": "plan", "op": "ne", "value": "free"},  # reads what "pro" reads
    "demo-twice": {"event": {"name": "Demo", "count": {"op": "gte", "value": 2}}},
    "demo": {"event": {"name": "Demo"}},  # reads what "demo-twice" reads
    "hot": {"all": [{"segment": "pro"}, {"segment": "demo-twice"}]},
    "cold": {"not": {"segment": "hot"}},
    "cold-managers": {"all": [{"segment": "cold"}, {"attr": "title", "op": "eq", "value": "m"}]},
    "demo-or-buy": {"any": [{"segment": "demo"}, {"event": {"name": "Buy"}}]},
}


@pytest.mark.parametrize("at_once", [1, 3, 5000])
@pytest.mark.parametrize("seed", [1, 2])
def test_batches_of_known_contacts_checked_in_parts(
    client: TestClient,
    runtime: Runtime,
    workspace: Created,
    admin_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    at_once: int,
    seed: int,
) -> None:
    """Known contacts change in random ways, each a candidate of some segments only, and
    segments that read the same changes share their candidates: checked a few contacts at a
    time (`CONTACTS_AT_ONCE`) or all at once, real time agrees with a recomputation."""
    monkeypatch.setattr(segment_realtime, "CONTACTS_AT_ONCE", at_once)
    for key, condition in PART_SEGMENTS.items():
        put(client, admin_headers, key, {"name": key, "condition": condition})
    draw = random.Random(seed)
    for _round in range(6):
        messages: list[dict[str, Any]] = []
        for n in range(12):
            user, roll = f"u{n}", draw.random()
            if roll < 0.3:
                plan = draw.choice(["pro", "free", "trial"])
                messages.append({"type": "identify", "userId": user, "traits": {"plan": plan}})
            elif roll < 0.5:
                title = draw.choice(["m", "e"])
                messages.append({"type": "identify", "userId": user, "traits": {"title": title}})
            elif roll < 0.8:
                messages.append({"type": "track", "userId": user, "event": "Demo"})
            elif roll < 0.9:
                messages.append({"type": "track", "userId": user, "event": "Buy"})
        send(client, workspace.write_key.key, "batch", {"batch": messages})
        process_all(runtime)
        assert_exact(runtime, workspace)
