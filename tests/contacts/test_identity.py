"""Identities stored and found by their keys (`sodate.contacts.models.identity_key`)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from sodate.contacts import identity, service
from sodate.contacts.models import identity_key
from sodate.runtime import Runtime
from sodate.workspaces.schemas import Created
from tests.events.helpers import only_contact, process_all, send


def test_the_key_is_of_the_workspace_kind_and_value() -> None:
    key = identity_key("w1", "email", "hanako@example.jp")
    assert key == identity_key("w1", "email", "hanako@example.jp")
    assert (
        len(
            {
                key,
                identity_key("w2", "email", "hanako@example.jp"),
                identity_key("w1", "user_id", "hanako@example.jp"),
                identity_key("w1", "email", "taro@example.jp"),
            }
        )
        == 4
    )
    assert -(2**63) <= key < 2**63
    # Pinned: stored keys (and migration 0028's SQL) must keep meaning the same identities.
    assert key == -589_309_976_408_984_616


def test_identities_sharing_one_key_still_lead_each_to_its_own_contact(
    client: TestClient,
    runtime: Runtime,
    workspace: Created,
    admin_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every identity hashed alike: lookups find identities by their texts, not their keys."""

    def same_key(_workspace_id: str, _kind: str, _value: str) -> int:
        return 42

    monkeypatch.setattr(identity, "identity_key", same_key)
    monkeypatch.setattr(service, "identity_key", same_key)
    write_key = workspace.write_key.key
    people = [("u-1", "hanako@example.jp", "a-1"), ("u-2", "taro@example.jp", "a-2")]
    for user_id, email, anonymous_id in people:
        send(client, write_key, "page", {"anonymousId": anonymous_id})
        send(
            client,
            write_key,
            "identify",
            {"userId": user_id, "anonymousId": anonymous_id, "traits": {"email": email}},
        )
    send(client, write_key, "track", {"userId": "u-2", "event": "Order Completed"})
    process_all(runtime, batch_size=1)

    hanako = only_contact(client, admin_headers, email="hanako@example.jp")
    taro = only_contact(client, admin_headers, user_id="u-2")
    assert hanako["id"] != taro["id"]
    assert only_contact(client, admin_headers, anonymous_id="a-1")["id"] == hanako["id"]
    assert taro["email"] == "taro@example.jp"
    with runtime.db.read() as session:
        stored = session.execute(
            sa.text("SELECT DISTINCT key FROM contact_identities WHERE workspace_id = :ws"),
            {"ws": workspace.workspace.id},
        ).all()
        found = service.live_contacts_by(
            session, workspace.workspace.id, "email", ["taro@example.jp", "jiro@example.jp"]
        )
    assert [row[0] for row in stored] == [42]
    assert found == {"taro@example.jp": taro["id"]}


def test_an_identity_stored_twice_still_finds_one_contact(
    client: TestClient, runtime: Runtime, workspace: Created, admin_headers: dict[str, str]
) -> None:
    """Nothing stores an identity twice; should a row ever be repeated, lookups still answer."""
    send(
        client,
        workspace.write_key.key,
        "identify",
        {"userId": "u-1", "traits": {"email": "hanako@example.jp"}},
    )
    process_all(runtime)
    hanako = only_contact(client, admin_headers, email="hanako@example.jp")
    with runtime.db.transaction() as session:
        session.execute(
            sa.text(
                "INSERT INTO contact_identities (workspace_id, kind, value, key, contact_id,"
                " created_at) SELECT workspace_id, kind, value, key, contact_id, created_at"
                " FROM contact_identities WHERE kind = 'email'"
            )
        )
    assert only_contact(client, admin_headers, email="hanako@example.jp")["id"] == hanako["id"]
