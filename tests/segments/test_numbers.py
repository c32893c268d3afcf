"""Numbers at the ends of what a condition takes: a score is compared with bounded numbers
only, every other comparison takes any finite number and compares it exactly, in the SQL
evaluator (previews, saves) and the in-memory one (events) alike."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from sodate.runtime import Runtime
from sodate.workspaces.schemas import Created
from tests.events.helpers import process_all, send
from tests.segments.test_segments import assert_exact, member_ids, put
from tests.workspaces.helpers import error_of

SCORE_BOUNDS = "a score is compared with numbers from -1e306 to 1e306"


@pytest.mark.parametrize(
    ("op", "value"), [("gte", 1e308), ("lt", -1e308), ("between", [0, 1e308]), ("gt", 2e306)]
)
def test_a_score_bound_too_large_to_compare_is_refused_with_its_path(
    client: TestClient, admin_headers: dict[str, str], op: str, value: Any
) -> None:
    model = {"engagement": [{"event": "Demo Requested", "points": 10}]}
    saved = client.put("/api/v1/scoring-models/default", json=model, headers=admin_headers)
    assert saved.status_code == 201, saved.text
    condition = {"score": {"model": "default", "op": op, "value": value}}
    expected = [
        {"loc": ["body", "condition", "score", "value"], "msg": SCORE_BOUNDS, "type": "value"}
    ]

    # 1e308 was a 500 (an overflow comparing the score as shown), saved or previewed.
    preview = client.post(
        "/api/v1/segments/preview", json={"condition": condition}, headers=admin_headers
    )
    assert preview.status_code == 422, preview.text
    assert error_of(preview)["details"] == expected
    refused = client.put(
        "/api/v1/segments/huge",
        json={"name": "huge", "condition": condition},
        headers=admin_headers,
    )
    assert refused.status_code == 422, refused.text
    assert error_of(refused)["details"] == expected
    assert client.get("/api/v1/segments/huge", headers=admin_headers).status_code == 404

    # The bounds themselves are taken.
    for bound in ({"op": "gte", "value": 1e306}, {"op": "between", "value": [-1e306, 1e306]}):
        condition = {"score": {"model": "default", **bound}}
        put(client, admin_headers, "bounded", {"name": "bounded", "condition": condition})


NUMBERS = {"max": 1e308, "min": -1e308, "int64": 2**63 - 1, "tiny": 5e-324, "zero": 0}
CONDITIONS: dict[str, tuple[dict[str, Any], set[str]]] = {
    "at-max": ({"attr": "n", "op": "gte", "value": 1e308}, {"max"}),
    "below-min": ({"attr": "n", "op": "lt", "value": -1e308}, set()),
    "int64": ({"attr": "n", "op": "eq", "value": 2**63 - 1}, {"int64"}),
    "not-int64": ({"attr": "n", "op": "ne", "value": -(2**63 - 1)}, set(NUMBERS)),
    "tiny": ({"attr": "n", "op": "between", "value": [5e-324, 5e-324]}, {"tiny"}),
    "positive": ({"attr": "n", "op": "gt", "value": 0}, {"max", "int64", "tiny"}),
    "everyone": ({"attr": "n", "op": "between", "value": [-1e308, 1e308]}, set(NUMBERS)),
    "listed": (
        {"attr": "n", "op": "in", "value": [1e308, -1e308, 2**63 - 1]},
        {"max", "min", "int64"},
    ),
    "big-order": (
        {"event": {"name": "Order", "where": [{"prop": "total", "op": "gte", "value": 2**63 - 1}]}},
        {"max", "int64"},
    ),
    "orders": ({"event": {"name": "Order", "count": {"op": "lte", "value": 10**9}}}, set(NUMBERS)),
}


def test_other_numbers_compare_exactly_at_any_size_in_both_evaluators(
    client: TestClient, runtime: Runtime, workspace: Created, admin_headers: dict[str, str]
) -> None:
    # Saved first, so that the events below are checked by the in-memory evaluator.
    for key, (condition, _) in CONDITIONS.items():
        put(client, admin_headers, key, {"name": key, "condition": condition})
    batch: list[dict[str, Any]] = []
    for name, number in NUMBERS.items():
        batch += [
            {"type": "identify", "userId": name, "traits": {"n": number}},
            {"type": "track", "userId": name, "event": "Order", "properties": {"total": number}},
        ]
    send(client, workspace.write_key.key, "batch", {"batch": batch})
    process_all(runtime)
    ids = {
        item["user_id"]: item["id"]
        for item in client.get("/api/v1/contacts", headers=admin_headers).json()["items"]
    }
    for key, (condition, expected) in CONDITIONS.items():
        wanted = sorted(ids[name] for name in expected)
        assert member_ids(client, admin_headers, key) == wanted, key
        preview = client.post(
            "/api/v1/segments/preview",
            json={"condition": condition, "sample": 100},
            headers=admin_headers,
        )
        assert preview.status_code == 200, preview.text
        assert sorted(contact["id"] for contact in preview.json()["sample"]) == wanted, key
    assert_exact(runtime, workspace)
