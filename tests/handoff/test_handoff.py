"""Sales handoff: a new MQL is assigned, its owner is told why it is hot (by real SMTP and a
Slack-compatible webhook), the CRM gets a signed post, the SLA escalates, and sales accepts
(→ SQL) or rejects (→ a lead again, optionally with engagement reset); KPIs count it all."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

import sodate.handoff.jobs  # noqa: F401 - registers the handoff job handlers
from sodate.handoff.jobs import handoff_opener
from sodate.queue.runner import drain_due_jobs
from sodate.runtime import Runtime
from sodate.worker_types import ServiceContext
from sodate.workspaces.schemas import Created
from tests.events.helpers import advance, only_contact, process_all, send
from tests.handoff.conftest import Mailbox, Receiver
from tests.workspaces.helpers import create_user, error_of, login

SECRET = "crm-signing-secret-0123456789"
MODEL: dict[str, Any] = {
    "fit": [{"when": {"attr": "job_title", "op": "contains", "value": "部長"}, "points": 10}],
    "engagement": [{"event": "Inquiry Submitted", "points": 10}],
    "thresholds": {"mql": 20},
}


def setup(
    client: TestClient, headers: dict[str, str], receiver: Receiver, **overrides: Any
) -> dict[str, int]:
    """Two sales users, a manager, the model, the MQL rule and the handoff rules."""
    users = {
        name: create_user(client, headers, email=f"{name}@example.jp", role=role)["id"]
        for name, role in (("tanaka", "sales"), ("suzuki", "sales"), ("boss", "admin"))
    }
    assert client.put("/api/v1/scoring-models/default", json=MODEL, headers=headers).is_success
    lifecycle = {"mql": {"model": "default", "threshold": "mql"}}
    assert client.put("/api/v1/lifecycle", json=lifecycle, headers=headers).is_success
    rules = {
        "assign": [
            {
                "when": {"attr": "company.industry", "op": "eq", "value": "製造業"},
                "owners": ["tanaka@example.jp"],
            }
        ],
        "notify": {"email": True, "slack_webhook": f"{receiver.base}/slack"},
        "sla_hours": 24,
        "escalate_to": ["boss@example.jp"],
        "crm_webhook": {"url": f"{receiver.base}/crm", "secret": SECRET},
        **overrides,
    }
    response = client.put("/api/v1/handoff", json=rules, headers=headers)
    assert response.status_code == 200, response.text
    if rules["crm_webhook"] is not None:
        assert response.json()["crm_webhook"] == {"url": f"{receiver.base}/crm"}  # no secret
    # The Slack webhook's URL lets anyone post to the channel: its origin only.
    assert response.json()["notify"]["slack_webhook"] == f"{receiver.base}/…"
    return users


def become_mql(
    client: TestClient, workspace: Created, runtime: Runtime, user_id: str, **traits: Any
) -> None:
    key = workspace.write_key.key
    send(client, key, "identify", {"userId": user_id, "traits": traits})
    for _ in range(2):
        send(client, key, "track", {"userId": user_id, "event": "Inquiry Submitted"})
    process_all(runtime)


def open_handoffs(runtime: Runtime) -> int:
    context = ServiceContext(runtime=runtime, worker_id="test", stop=None)  # type: ignore[arg-type]
    return handoff_opener.run(context)


def handoffs(client: TestClient, headers: dict[str, str]) -> list[Any]:
    response = client.get("/api/v1/handoffs", headers=headers)
    assert response.status_code == 200, response.text
    items: list[Any] = response.json()["items"]
    return items


def verify(received: Any) -> Any:
    """The CRM's check: the signature is HMAC-SHA256 of `t.body` with the shared secret."""
    parts = dict(item.split("=", 1) for item in received.headers["Sodate-Signature"].split(","))
    signed = parts["t"].encode() + b"." + received.body
    expected = hmac.new(SECRET.encode(), signed, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(parts["v1"], expected)
    return received.json()


def test_a_new_mql_is_assigned_and_its_owner_told_why_it_is_hot(
    client: TestClient,
    runtime: Runtime,
    workspace: Created,
    admin_headers: dict[str, str],
    mailbox: Mailbox,
    receiver: Receiver,
) -> None:
    users = setup(client, admin_headers, receiver)
    key = workspace.write_key.key
    send(
        client,
        key,
        "group",
        {"userId": "u1", "groupId": "acme", "traits": {"name": "アクメ", "industry": "製造業"}},
    )
    become_mql(client, workspace, runtime, "u1", name="佐藤 一郎", email="sato@example.jp")
    assert open_handoffs(runtime) == 1
    assert open_handoffs(runtime) == 0  # each MQL is handed off once
    (handoff,) = handoffs(client, admin_headers)
    assert (handoff["state"], handoff["owner_user_id"], handoff["assigned_by"]) == (
        "pending",
        users["tanaka"],
        "assign.0",
    )
    assert [step["kind"] for step in handoff["steps"]] == ["opened"]
    assert handoff["due_at"] is not None

    drain_due_jobs(runtime, worker_id="test")
    (email,) = mailbox.to("tanaka@example.jp")
    assert email["Subject"] == "【ホットリード】佐藤 一郎 さんを担当してください"
    body = email.get_content()
    assert "default: 20 (fit 0 + engagement 20)" in body
    assert "Inquiry Submitted" in body
    assert "アクメ" in body
    assert "industry: 製造業" in body
    # A link the owner can follow from the mail, on SODATE_BASE_URL.
    contact_id = only_contact(client, admin_headers, user_id="u1")["id"]
    assert f"contact: {runtime.settings.base_url}/api/v1/contacts/{contact_id}" in body
    (slack,) = receiver.at("/slack")
    assert "佐藤 一郎" in slack.json()["text"]
    (crm,) = receiver.at("/crm")
    posted = verify(crm)
    assert posted["type"] == "lead.handed_off"
    assert posted["data"]["contact"]["email"] == "sato@example.jp"
    assert posted["data"]["scores"]["default"]["total"] == 20
    assert crm.headers["Sodate-Event-Id"] == f"handoff-{handoff['id']}-lead.handed_off"

    # Leads no rule picks go round-robin to the sales users.
    become_mql(client, workspace, runtime, "u2", email="a@example.jp")
    become_mql(client, workspace, runtime, "u3", email="b@example.jp")
    assert open_handoffs(runtime) == 2
    owners = [h["owner_user_id"] for h in handoffs(client, admin_headers)[1:]]
    assert sorted(owners) == sorted([users["tanaka"], users["suzuki"]])
    assert {h["assigned_by"] for h in handoffs(client, admin_headers)[1:]} == {"sales"}


def test_what_a_visitor_sends_reaches_the_owner_as_text_and_not_as_markup(
    client: TestClient,
    runtime: Runtime,
    workspace: Created,
    admin_headers: dict[str, str],
    mailbox: Mailbox,
    receiver: Receiver,
) -> None:
    setup(client, admin_headers, receiver, assign=[])
    # Traits come from anyone with the public write key.
    planted = "<!channel> <https://evil.example/login|請求書を確認> & co"
    become_mql(client, workspace, runtime, "u1", name=planted)
    become_mql(client, workspace, runtime, "u2", name="山田\r\nBcc: victim@example.com")
    assert open_handoffs(runtime) == 2
    drain_due_jobs(runtime, worker_id="test")

    texts = [received.json()["text"] for received in receiver.at("/slack")]
    assert len(texts) == 2
    assert all("<!channel>" not in text and "<https://" not in text for text in texts)
    assert any(
        "&lt;!channel&gt; &lt;https://evil.example/login|請求書を確認&gt; &amp; co" in t
        for t in texts
    )
    subjects = sorted(message["Subject"] for message in mailbox.messages)
    assert len(subjects) == 2  # both owners emailed, the line break notwithstanding
    assert "【ホットリード】山田 Bcc: victim@example.com さんを担当してください" in subjects
    assert all(message["Bcc"] is None for message in mailbox.messages)
    sent = runtime.clock.now().replace(microsecond=0)  # a Date header is to the second
    assert all(message["Date"].datetime == sent for message in mailbox.messages)


def test_the_sla_escalates_to_the_manager_and_passes_the_lead_on(
    client: TestClient,
    runtime: Runtime,
    workspace: Created,
    admin_headers: dict[str, str],
    mailbox: Mailbox,
    receiver: Receiver,
) -> None:
    users = setup(client, admin_headers, receiver, assign=[])
    become_mql(client, workspace, runtime, "u1", email="sato@example.jp")
    open_handoffs(runtime)
    drain_due_jobs(runtime, worker_id="test")
    (first,) = handoffs(client, admin_headers)
    other = users["suzuki"] if first["owner_user_id"] == users["tanaka"] else users["tanaka"]
    mailbox.messages.clear()

    advance(runtime, timedelta(hours=23))
    drain_due_jobs(runtime, worker_id="test")
    assert mailbox.messages == []
    advance(runtime, timedelta(hours=2))
    drain_due_jobs(runtime, worker_id="test")
    escalated = client.get(f"/api/v1/handoffs/{first['id']}", headers=admin_headers).json()
    assert (escalated["escalations"], escalated["owner_user_id"]) == (1, other)
    assert [step["kind"] for step in escalated["steps"]] == ["opened", "escalated", "reassigned"]
    (to_boss,) = mailbox.to("boss@example.jp")
    assert to_boss["Subject"].startswith("【対応期限超過】")
    new_owner = "suzuki@example.jp" if other == users["suzuki"] else "tanaka@example.jp"
    assert len(mailbox.to(new_owner)) == 1

    # The new owner accepts in time: no further escalation.
    response = client.post(f"/api/v1/handoffs/{first['id']}/accept", headers=admin_headers)
    assert response.status_code == 200, response.text
    mailbox.messages.clear()
    advance(runtime, timedelta(hours=30))
    drain_due_jobs(runtime, worker_id="test")
    assert mailbox.messages == []
    final = client.get(f"/api/v1/handoffs/{first['id']}", headers=admin_headers).json()
    assert (final["state"], final["escalations"]) == ("accepted", 1)


def test_sales_accepts_or_rejects_and_the_kpis_follow(
    client: TestClient,
    runtime: Runtime,
    workspace: Created,
    admin_headers: dict[str, str],
    mailbox: Mailbox,
    receiver: Receiver,
) -> None:
    users = setup(client, admin_headers, receiver, assign=[])
    become_mql(client, workspace, runtime, "u1", email="sato@example.jp")
    become_mql(client, workspace, runtime, "u2", email="kato@example.jp")
    open_handoffs(runtime)
    by_owner = {h["owner_user_id"]: h for h in handoffs(client, admin_headers)}
    tanakas, suzukis = by_owner[users["tanaka"]], by_owner[users["suzuki"]]

    # Signed in, a sales user decides only the leads assigned to them.
    session = login(client, "tanaka@example.jp")
    csrf = {"X-CSRF-Token": session["csrf_token"]}
    response = client.post(f"/api/v1/handoffs/{suzukis['id']}/accept", headers=csrf)
    assert response.status_code == 403, response.text
    advance(runtime, timedelta(hours=3))
    response = client.post(f"/api/v1/handoffs/{tanakas['id']}/accept", headers=csrf)
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "accepted"
    contact = client.get(f"/api/v1/contacts/{tanakas['contact_id']}", headers=admin_headers)
    assert contact.json()["stage"] == "sql"
    changes = client.get(
        f"/api/v1/contacts/{tanakas['contact_id']}/stage/changes", headers=admin_headers
    ).json()["items"]
    assert (changes[-1]["to"], changes[-1]["source"], changes[-1]["user_id"]) == (
        "sql",
        "user",
        users["tanaka"],
    )
    response = client.post(f"/api/v1/handoffs/{tanakas['id']}/accept", headers=csrf)
    assert response.status_code == 409, response.text
    # Nor by moving the stage of a lead that waits on another owner, which would close it.
    stage = f"/api/v1/contacts/{suzukis['contact_id']}/stage"
    response = client.put(stage, json={"stage": "sql"}, headers=csrf)
    assert response.status_code == 403, response.text
    assert error_of(response)["message"] == "a sales user decides only the leads assigned to them"
    assert client.get(stage, headers=admin_headers).json()["stage"] == "mql"
    client.cookies.clear()

    # Rejected with engagement reset: a lead again, at 0 engagement, in a new cycle.
    kato = suzukis["contact_id"]
    response = client.post(
        f"/api/v1/handoffs/{suzukis['id']}/reject",
        json={"reason": "予算なし", "reset_engagement": True},
        headers=admin_headers,
    )
    assert response.status_code == 200, response.text
    assert (response.json()["reason"], response.json()["engagement_reset"]) == ("予算なし", True)
    assert client.get(f"/api/v1/contacts/{kato}", headers=admin_headers).json()["stage"] == "lead"
    scores = client.get(f"/api/v1/contacts/{kato}/scores", headers=admin_headers).json()
    assert scores["default"]["total"] == 0
    history = client.get(
        f"/api/v1/contacts/{kato}/scores/default/history", headers=admin_headers
    ).json()["items"]
    assert (history[-1]["total"], history[-1]["cause"]) == (0, "reset")
    # A model save does not bring the reset points back.
    client.put("/api/v1/scoring-models/default", json=MODEL, headers=admin_headers)
    scores = client.get(f"/api/v1/contacts/{kato}/scores", headers=admin_headers).json()
    assert scores["default"]["total"] == 0

    drain_due_jobs(runtime, worker_id="test")
    types = [verify(r)["type"] for r in receiver.at("/crm")]
    assert sorted(types) == ["lead.accepted", "lead.handed_off", "lead.handed_off", "lead.rejected"]

    kpis = client.get("/api/v1/reports/leads", headers=admin_headers).json()
    assert {k: kpis[k] for k in ("mql", "handed_off", "accepted", "rejected", "pending")} == {
        "mql": 2,
        "handed_off": 2,
        "accepted": 1,
        "rejected": 1,
        "pending": 0,
    }
    assert kpis["mql_to_sql_rate"] == 0.5
    assert kpis["lead_time_hours_median"] == 3.0
    assert kpis["within_sla_rate"] == 1.0
    backwards = {"since": "2026-05-01T00:00:00+09:00", "until": "2026-04-01T00:00:00+09:00"}
    response = client.get("/api/v1/reports/leads", params=backwards, headers=admin_headers)
    assert response.status_code == 422, response.text
    assert error_of(response)["message"] == "since is after until"
    # A date or time without an offset is the workspace's (Asia/Tokyo): the first MQL came at
    # 09:00 there.
    for period, mql in (({"since": "2026-04-01"}, 2), ({"until": "2026-04-01T08:59"}, 0)):
        response = client.get("/api/v1/reports/leads", params=period, headers=admin_headers)
        assert response.json()["mql"] == mql, period

    # Nurtured again, Kato reaches the threshold anew: a second handoff.
    advance(runtime, timedelta(hours=1))
    become_mql(client, workspace, runtime, "u2")
    assert open_handoffs(runtime) == 1
    assert [h["contact_id"] for h in handoffs(client, admin_headers)].count(kato) == 2


def test_a_lead_that_leaves_mql_otherwise_closes_its_handoff(
    client: TestClient,
    runtime: Runtime,
    workspace: Created,
    admin_headers: dict[str, str],
    mailbox: Mailbox,
    receiver: Receiver,
) -> None:
    setup(client, admin_headers, receiver, assign=[], crm_webhook=None)
    become_mql(client, workspace, runtime, "u1", email="sato@example.jp")
    open_handoffs(runtime)
    contact = only_contact(client, admin_headers, user_id="u1")["id"]
    response = client.put(
        f"/api/v1/contacts/{contact}/stage", json={"stage": "customer"}, headers=admin_headers
    )
    assert response.status_code == 200, response.text
    assert open_handoffs(runtime) == 0
    (handoff,) = handoffs(client, admin_headers)
    assert handoff["state"] == "closed"
    response = client.post(f"/api/v1/handoffs/{handoff['id']}/accept", headers=admin_headers)
    assert response.status_code == 409


def test_a_merge_passes_the_waiting_handoff_and_the_reset_to_the_survivor(
    client: TestClient,
    runtime: Runtime,
    workspace: Created,
    admin_headers: dict[str, str],
    mailbox: Mailbox,
    receiver: Receiver,
) -> None:
    setup(client, admin_headers, receiver, assign=[], crm_webhook=None)
    key = workspace.write_key.key

    # Sato is handed off, then found to be the same person as a lead: one handoff, moved.
    become_mql(client, workspace, runtime, "u1", email="sato@example.jp")
    open_handoffs(runtime)
    send(client, key, "identify", {"userId": "u2", "traits": {"email": "sato@work.example.jp"}})
    process_all(runtime)
    sato = only_contact(client, admin_headers, user_id="u1")["id"]
    lead = only_contact(client, admin_headers, user_id="u2")["id"]
    response = client.post(
        f"/api/v1/contacts/{lead}/merge", json={"contact_id": sato}, headers=admin_headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["stage"] == "mql"
    assert open_handoffs(runtime) == 0
    (handoff,) = handoffs(client, admin_headers)
    assert (handoff["contact_id"], handoff["state"]) == (lead, "pending")

    # Rejected with a reset, then merged into a newer contact: the reset points stay out.
    response = client.post(
        f"/api/v1/handoffs/{handoff['id']}/reject",
        json={"reason": "時期尚早", "reset_engagement": True},
        headers=admin_headers,
    )
    assert response.status_code == 200, response.text
    advance(runtime, timedelta(hours=1))
    send(client, key, "track", {"userId": "u3", "event": "Inquiry Submitted"})
    process_all(runtime)
    newer = only_contact(client, admin_headers, user_id="u3")["id"]
    response = client.post(
        f"/api/v1/contacts/{newer}/merge", json={"contact_id": lead}, headers=admin_headers
    )
    assert response.status_code == 200, response.text
    scores = client.get(f"/api/v1/contacts/{newer}/scores", headers=admin_headers).json()
    assert scores["default"]["engagement"] == 10
    client.put("/api/v1/scoring-models/default", json=MODEL, headers=admin_headers)
    scores = client.get(f"/api/v1/contacts/{newer}/scores", headers=admin_headers).json()
    assert scores["default"]["engagement"] == 10
    assert [h["contact_id"] for h in handoffs(client, admin_headers)] == [newer]


def test_invalid_rules_are_refused_with_every_error(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    create_user(client, admin_headers, email="mori@example.jp", role="marketer")
    body = {
        "assign": [
            {
                "when": {"attr": "industry", "op": "eq", "value": "IT"},
                "owners": ["nobody@example.jp"],
            },
            {
                "when": {"attr": "industry", "op": "eq", "value": "建設"},
                "owners": ["mori@example.jp"],
            },
        ],
        "escalate_to": ["ghost@example.jp"],
    }
    response = client.put("/api/v1/handoff", json=body, headers=admin_headers)
    assert response.status_code == 422, response.text
    details = error_of(response)["details"]
    assert [d["loc"] for d in details] == [
        ["assign", 0, "owners", 0],
        ["assign", 1, "owners", 0],
        ["escalate_to", 0],
    ]
    assert "only sales, admins and owners" in details[1]["msg"]

    response = client.put(
        "/api/v1/handoff",
        json={"sla_hours": 0, "crm_webhook": {"url": "ftp://x", "secret": "short"}},
        headers=admin_headers,
    )
    assert response.status_code == 422, response.text
    locs = [d["loc"][-2:] for d in error_of(response)["details"]]
    assert ["body", "sla_hours"] in locs
    response = client.put("/api/v1/handoff", json={"sla_hours": True}, headers=admin_headers)
    assert response.status_code == 422, response.text

    # The segments and models a rule names must exist: an unknown one would never match.
    response = client.put(
        "/api/v1/handoff",
        json={"assign": [{"when": {"segment": "no-such-segment"}, "owners": ["mori@example.jp"]}]},
        headers=admin_headers,
    )
    assert response.status_code == 422, response.text
    assert [(d["loc"], d["msg"]) for d in error_of(response)["details"]] == [
        (
            ["assign", 0, "owners", 0],
            "mori@example.jp is marketer: only sales, admins and owners take leads",
        ),
        (["assign", 0, "when", "segment"], "no segment 'no-such-segment'"),
    ]
    assert client.get("/api/v1/handoff", headers=admin_headers).json()["updated_at"] is None


def test_a_segment_an_assignment_rule_reads_is_not_deleted(
    client: TestClient, admin_headers: dict[str, str], receiver: Receiver
) -> None:
    setup(client, admin_headers, receiver)
    vip = {
        "kind": "dynamic",
        "name": "VIP",
        "condition": {"attr": "plan", "op": "eq", "value": "vip"},
    }
    assert client.put("/api/v1/segments/vip", json=vip, headers=admin_headers).is_success
    when = {"any": [{"segment": "vip"}, {"attr": "plan", "op": "eq", "value": "gold"}]}
    rules = {
        "assign": [{"when": when, "owners": ["tanaka@example.jp"]}],
        "notify": {"email": False},
    }
    response = client.put("/api/v1/handoff", json=rules, headers=admin_headers)
    assert response.status_code == 200, response.text

    response = client.delete("/api/v1/segments/vip", headers=admin_headers)
    assert response.status_code == 409, response.text
    assert error_of(response)["message"] == "segment 'vip' is used by handoff assign.0"
    assert client.get("/api/v1/segments/vip", headers=admin_headers).status_code == 200


def test_an_owner_who_may_no_longer_work_leads_gets_none(
    client: TestClient,
    runtime: Runtime,
    workspace: Created,
    admin_headers: dict[str, str],
    receiver: Receiver,
) -> None:
    users = setup(
        client,
        admin_headers,
        receiver,
        assign=[
            {
                "when": {"attr": "email", "op": "ends_with", "value": "@kyoto.jp"},
                "owners": ["tanaka@example.jp", "boss@example.jp"],
            }
        ],
    )
    response = client.patch(
        f"/api/v1/users/{users['tanaka']}", json={"role": "viewer"}, headers=admin_headers
    )
    assert response.status_code == 200, response.text
    for user_id in ("u1", "u2"):
        become_mql(client, workspace, runtime, user_id, email=f"{user_id}@kyoto.jp")
    assert open_handoffs(runtime) == 2
    assert {h["owner_user_id"] for h in handoffs(client, admin_headers)} == {users["boss"]}
