"""Workspace-isolation cases of the segments routes (run by tests/test_isolation.py)."""

from __future__ import annotations

from typing import Any

from tests.isolation import Pair, case


def _preview(pair: Pair, headers: dict[str, str], condition: dict[str, Any]) -> Any:
    response = pair.client.post(
        "/api/v1/segments/preview", json={"condition": condition}, headers=headers
    )
    assert response.status_code == 200, response.text
    return response.json()


@case("POST", "/api/v1/segments/preview")
def _preview_segment(pair: Pair) -> None:
    for headers, email in ((pair.a_key, "a@example.jp"), (pair.b_key, "b@example.jp")):
        response = pair.client.post(
            "/api/v1/contacts", json={"email": email, "traits": {"plan": "pro"}}, headers=headers
        )
        assert response.status_code == 201, response.text
    pro = {"attr": "plan", "op": "eq", "value": "pro"}
    seen_by_b = _preview(pair, pair.b_key, pro)
    assert seen_by_b["count"] == 1
    assert [contact["email"] for contact in seen_by_b["sample"]] == ["b@example.jp"]
    a_email = {"attr": "email", "op": "eq", "value": "a@example.jp"}
    assert _preview(pair, pair.b_key, a_email) == {"count": 0, "sample": []}
    assert _preview(pair, pair.a_key, a_email)["count"] == 1
