"""Sending tracking messages, processing them, and reading back what they did, for tests."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from sodate.clock import ManualClock
from sodate.contacts.models import Contact
from sodate.events.models import Event, EventDailyCount
from sodate.events.service import pending_count
from sodate.pipeline import process_pending
from sodate.runtime import Runtime


def basic(write_key: str) -> dict[str, str]:
    token = base64.b64encode(f"{write_key}:".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def send(client: TestClient, write_key: str, path: str, body: dict[str, Any]) -> Any:
    response = client.post(f"/v1/{path}", json=body, headers=basic(write_key))
    assert response.status_code == 200, response.text
    return response.json()


def process_all(runtime: Runtime, batch_size: int = 1000) -> int:
    total = 0
    while done := process_pending(runtime, batch_size=batch_size):
        total += done
    return total


def count_rows(runtime: Runtime, model: type[Any], workspace_id: str | None = None) -> int:
    """How many rows the table of `model` holds (in one workspace, if given)."""
    statement = sa.select(sa.func.count()).select_from(model)
    if workspace_id is not None:
        statement = statement.where(model.workspace_id == workspace_id)
    with runtime.db.read() as session:
        return session.execute(statement).scalar_one()


def inbox_count(runtime: Runtime, workspace_id: str | None = None) -> int:
    """How many accepted messages wait to be processed."""
    with runtime.inbox.read() as session:
        return pending_count(session, workspace_id)


def event_count(runtime: Runtime, workspace_id: str | None = None) -> int:
    return count_rows(runtime, Event, workspace_id)


def live_contact_count(runtime: Runtime, workspace_id: str | None = None) -> int:
    statement = sa.select(sa.func.count()).where(Contact.merged_into_id.is_(None))
    if workspace_id is not None:
        statement = statement.where(Contact.workspace_id == workspace_id)
    with runtime.db.read() as session:
        return session.execute(statement).scalar_one()


def daily_counts(runtime: Runtime) -> list[tuple[int, str, str, int]]:
    """Every (contact id, event name, ISO day, count), in that order."""
    with runtime.db.read() as session:
        rows = session.execute(
            sa.select(
                EventDailyCount.contact_id,
                EventDailyCount.name,
                EventDailyCount.day,
                EventDailyCount.count,
            ).order_by(EventDailyCount.contact_id, EventDailyCount.name, EventDailyCount.day)
        ).all()
    return [(contact, name, day.isoformat(), count) for contact, name, day, count in rows]


def find_contacts(client: TestClient, headers: dict[str, str], **filters: str) -> list[Any]:
    """The contacts the admin API lists for these filters."""
    response = client.get("/api/v1/contacts", params=filters, headers=headers)
    assert response.status_code == 200, response.text
    items: list[Any] = response.json()["items"]
    return items


def only_contact(client: TestClient, headers: dict[str, str], **filters: str) -> Any:
    found = find_contacts(client, headers, **filters)
    assert len(found) == 1, found
    return found[0]


def new_contact(client: TestClient, headers: dict[str, str], **fields: Any) -> int:
    """A contact upserted through the API (`POST /api/v1/contacts`); its id."""
    response = client.post("/api/v1/contacts", json=fields, headers=headers)
    assert response.status_code in (200, 201), response.text
    contact_id: int = response.json()["contact"]["id"]
    return contact_id


def timeline(client: TestClient, headers: dict[str, str], contact_id: int) -> list[Any]:
    """A contact's whole timeline, newest first."""
    response = client.get(
        f"/api/v1/contacts/{contact_id}/timeline", params={"limit": 500}, headers=headers
    )
    assert response.status_code == 200, response.text
    items: list[Any] = response.json()["items"]
    return items


def identity_keys(contact: dict[str, Any]) -> set[tuple[str, str]]:
    return {(identity["kind"], identity["value"]) for identity in contact["identities"]}


def advance(runtime: Runtime, delta: timedelta) -> datetime:
    """Move the manual clock of the tests forward."""
    assert isinstance(runtime.clock, ManualClock)
    return runtime.clock.advance(delta)
