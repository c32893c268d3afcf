"""Consent: every grant and withdrawal kept with its proof, the latest one in force, read by
segments and lifecycle rules as soon as it is recorded."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from sodate.runtime import Runtime
from sodate.workspaces.schemas import Created
from tests.events.helpers import new_contact
from tests.segments.test_segments import assert_exact, changes, member_ids, put
from tests.workspaces.helpers import error_locs, error_of, key_headers

EMAIL_OPT_IN: dict[str, Any] = {"consent": {"channel": "email"}}


def record(
    client: TestClient, headers: dict[str, str], contact_id: int, **body: Any
) -> list[dict[str, Any]]:
    response = client.post(f"/api/v1/contacts/{contact_id}/consents", json=body, headers=headers)
    assert response.status_code == 200, response.text
    held: list[dict[str, Any]] = response.json()
    return held


def test_a_grant_is_kept_with_its_proof_and_shown_on_the_contact(
    client: TestClient, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    sato = new_contact(client, admin_headers, email="sato@example.jp")
    given_at = runtime.clock.now() - timedelta(hours=2)
    held = record(
        client,
        admin_headers,
        sato,
        channel="email",
        granted=True,
        at=given_at.isoformat(),
        text="キャンペーン情報をメールで受け取ります",
        ip="203.0.113.7",
    )
    assert [(c["channel"], c["purpose"], c["granted"]) for c in held] == [
        ("email", "marketing", True)
    ]
    records = client.get(f"/api/v1/contacts/{sato}/consents/records", headers=admin_headers)
    [proof] = records.json()["items"]
    assert proof["text"] == "キャンペーン情報をメールで受け取ります"
    assert proof["ip"] == "203.0.113.7"
    assert proof["source"] == "api"
    assert proof["api_key_id"] is not None
    assert proof["at"].startswith(given_at.strftime("%Y-%m-%dT%H:%M"))
    contact = client.get(f"/api/v1/contacts/{sato}", headers=admin_headers).json()
    assert contact["consents"]["email"]["marketing"]["granted"] is True


def test_the_latest_record_by_when_it_was_given_is_in_force(
    client: TestClient, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    sato = new_contact(client, admin_headers, email="sato@example.jp")
    now = runtime.clock.now()
    record(client, admin_headers, sato, channel="sms", granted=True, at=now.isoformat())
    # A withdrawal told late (given before the grant) is kept as proof but changes nothing.
    late = (now - timedelta(days=1)).isoformat()
    held = record(client, admin_headers, sato, channel="sms", granted=False, at=late)
    assert [c["granted"] for c in held] == [True]
    held = record(client, admin_headers, sato, channel="sms", granted=False)
    assert [c["granted"] for c in held] == [False]
    items = client.get(f"/api/v1/contacts/{sato}/consents/records", headers=admin_headers).json()
    assert [item["granted"] for item in items["items"]] == [True, False, False]


def test_purposes_are_apart(client: TestClient, admin_headers: dict[str, str]) -> None:
    sato = new_contact(client, admin_headers, email="sato@example.jp")
    record(client, admin_headers, sato, channel="email", purpose="newsletter", granted=True)
    held = record(client, admin_headers, sato, channel="email", granted=False)
    assert {(c["purpose"], c["granted"]) for c in held} == {
        ("newsletter", True),
        ("marketing", False),
    }


def test_bad_consents_are_refused_with_every_error_named(
    client: TestClient, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    sato = new_contact(client, admin_headers, email="sato@example.jp")
    body = {"channel": "fax", "purpose": "", "granted": "maybe", "ip": "not-an-ip", "extra": 1}
    response = client.post(f"/api/v1/contacts/{sato}/consents", json=body, headers=admin_headers)
    assert response.status_code == 422, response.text
    locs = error_locs(response)
    for field in ("channel", "purpose", "granted", "ip", "extra"):
        assert any(field in loc for loc in locs), (field, locs)
    future = (runtime.clock.now() + timedelta(hours=1)).isoformat()
    response = client.post(
        f"/api/v1/contacts/{sato}/consents",
        json={"channel": "email", "granted": True, "at": future},
        headers=admin_headers,
    )
    assert response.status_code == 422, response.text
    assert error_of(response)["details"][0]["loc"] == ["at"]
    records = client.get(f"/api/v1/contacts/{sato}/consents/records", headers=admin_headers)
    assert records.json()["items"] == []
    response = client.post(
        "/api/v1/contacts/999999/consents",
        json={"channel": "email", "granted": True},
        headers=admin_headers,
    )
    assert response.status_code == 404


def test_a_viewer_reads_but_does_not_record(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    sato = new_contact(client, admin_headers, email="sato@example.jp")
    viewer = key_headers(client, admin_headers, role="viewer")
    body = {"channel": "email", "granted": True}
    response = client.post(f"/api/v1/contacts/{sato}/consents", json=body, headers=viewer)
    assert response.status_code == 403
    assert client.get(f"/api/v1/contacts/{sato}/consents", headers=viewer).json() == []


def test_segments_follow_consent_as_it_is_recorded(
    client: TestClient, admin_headers: dict[str, str], runtime: Runtime, workspace: Created
) -> None:
    sato = new_contact(client, admin_headers, email="sato@example.jp")
    suzuki = new_contact(client, admin_headers, email="suzuki@example.jp")
    record(client, admin_headers, suzuki, channel="email", granted=True)
    put(client, admin_headers, "mailable", {"name": "メール可", "condition": EMAIL_OPT_IN})
    put(
        client,
        admin_headers,
        "not-mailable",
        {"name": "メール不可", "condition": {"not": {"segment": "mailable"}}},
    )
    assert member_ids(client, admin_headers, "mailable") == [suzuki]
    record(client, admin_headers, sato, channel="email", granted=True)
    record(client, admin_headers, suzuki, channel="email", granted=False)
    assert member_ids(client, admin_headers, "mailable") == [sato]
    assert member_ids(client, admin_headers, "not-mailable") == [suzuki]
    assert changes(client, admin_headers, "mailable") == [
        (suzuki, True, "saved"),
        (sato, True, "consent"),
        (suzuki, False, "consent"),
    ]
    assert_exact(runtime, workspace)


def test_lifecycle_rules_read_consent(client: TestClient, admin_headers: dict[str, str]) -> None:
    rules = {"rules": {"subscriber": EMAIL_OPT_IN}}
    response = client.put("/api/v1/lifecycle", json=rules, headers=admin_headers)
    assert response.status_code == 200, response.text
    sato = new_contact(client, admin_headers, email="sato@example.jp")
    assert client.get(f"/api/v1/contacts/{sato}", headers=admin_headers).json()["stage"] is None
    record(client, admin_headers, sato, channel="email", granted=True)
    contact = client.get(f"/api/v1/contacts/{sato}", headers=admin_headers).json()
    assert contact["stage"] == "subscriber"


def test_fit_rules_cannot_read_consent(client: TestClient, admin_headers: dict[str, str]) -> None:
    model = {"fit": [{"when": EMAIL_OPT_IN, "points": 5}]}
    response = client.put("/api/v1/scoring-models/default", json=model, headers=admin_headers)
    assert response.status_code == 422, response.text
    assert ["body", "fit", 0, "when"] in error_locs(response)


def test_a_merge_keeps_the_later_consent_and_every_record(
    client: TestClient, admin_headers: dict[str, str], runtime: Runtime, workspace: Created
) -> None:
    survivor = new_contact(client, admin_headers, email="sato@example.jp")
    merged = new_contact(client, admin_headers, email="sato.home@example.jp")
    now = runtime.clock.now()
    earlier = (now - timedelta(days=3)).isoformat()
    record(client, admin_headers, survivor, channel="email", granted=True, at=earlier)
    record(client, admin_headers, merged, channel="email", granted=False)
    record(client, admin_headers, merged, channel="line", granted=True)
    put(client, admin_headers, "mailable", {"name": "メール可", "condition": EMAIL_OPT_IN})
    assert member_ids(client, admin_headers, "mailable") == [survivor]
    response = client.post(
        f"/api/v1/contacts/{survivor}/merge", json={"contact_id": merged}, headers=admin_headers
    )
    assert response.status_code == 200, response.text
    held = client.get(f"/api/v1/contacts/{survivor}/consents", headers=admin_headers).json()
    assert {(c["channel"], c["granted"]) for c in held} == {("email", False), ("line", True)}
    items = client.get(
        f"/api/v1/contacts/{survivor}/consents/records", headers=admin_headers
    ).json()["items"]
    assert len(items) == 3
    # The merged contact's later withdrawal is the survivor's now, and its segments follow.
    assert member_ids(client, admin_headers, "mailable") == []
    assert_exact(runtime, workspace)


def test_the_workspace_lists_every_record_by_channel_and_purpose(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    sato = new_contact(client, admin_headers, email="sato@example.jp")
    suzuki = new_contact(client, admin_headers, email="suzuki@example.jp")
    record(client, admin_headers, sato, channel="email", granted=True)
    record(client, admin_headers, suzuki, channel="line", granted=True)
    record(client, admin_headers, suzuki, channel="email", purpose="newsletter", granted=True)
    listed = client.get("/api/v1/consents", headers=admin_headers).json()["items"]
    assert [(r["contact_id"], r["channel"], r["purpose"]) for r in listed] == [
        (sato, "email", "marketing"),
        (suzuki, "line", "marketing"),
        (suzuki, "email", "newsletter"),
    ]
    emails = client.get("/api/v1/consents?channel=email", headers=admin_headers).json()
    assert [r["contact_id"] for r in emails["items"]] == [sato, suzuki]
    news = client.get("/api/v1/consents?purpose=newsletter", headers=admin_headers).json()
    assert [r["contact_id"] for r in news["items"]] == [suzuki]
    first = client.get("/api/v1/consents?limit=2", headers=admin_headers).json()
    rest = client.get(
        f"/api/v1/consents?limit=2&cursor={first['next_cursor']}", headers=admin_headers
    ).json()
    assert len(first["items"]) == 2
    assert len(rest["items"]) == 1
    bad = client.get("/api/v1/consents?channel=fax", headers=admin_headers)
    assert bad.status_code == 422


def test_a_merge_keeps_the_survivors_consent_when_it_is_the_later(
    client: TestClient, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    survivor = new_contact(client, admin_headers, email="sato@example.jp")
    merged = new_contact(client, admin_headers, email="sato.home@example.jp")
    earlier = (runtime.clock.now() - timedelta(days=3)).isoformat()
    record(client, admin_headers, merged, channel="sms", granted=False, at=earlier)
    record(client, admin_headers, survivor, channel="sms", granted=True)
    response = client.post(
        f"/api/v1/contacts/{survivor}/merge", json={"contact_id": merged}, headers=admin_headers
    )
    assert response.status_code == 200, response.text
    held = client.get(f"/api/v1/contacts/{survivor}/consents", headers=admin_headers).json()
    assert [(c["channel"], c["granted"]) for c in held] == [("sms", True)]
