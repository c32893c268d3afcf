"""The contact rows that profile changes read and write (`sodate.contacts.profiles`): the
first, narrow load (what decides if a change is only "seen"), first and last seen moved in
place, the whole load of a profile's fields, and the statements that write them back.

They are on the event pipeline's path: reads and writes go through the driver
(`sodate.db.bulk`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy.orm import Session

from sodate.db.bulk import DriverValues, driver_values, execute_many, fetch_in


class Known(NamedTuple):
    """What the first, narrow load says of a contact."""

    user_id: str | None
    sources: list[str]
    blank: bool
    """Nothing else is known of it (a contact just created): it need not be loaded whole."""


def load_identity_fields(
    session: Session, workspace_id: str, ids: Iterable[int]
) -> dict[int, Known]:
    """The user id and sources of each live contact: what decides if a change is only "seen"."""
    # `|| ''` here and in `load_profiles`: see `sodate.db.plans`.
    rows = fetch_in(
        session,
        "SELECT id, user_id, sources, CASE WHEN email IS NULL AND phone IS NULL"
        " AND company_id IS NULL AND first_seen_at IS NULL AND last_seen_at IS NULL"
        " THEN traits = '{}' ELSE false END"
        " FROM contacts WHERE workspace_id || '' = ? AND merged_into_id IS NULL AND id IN",
        sorted(ids),
        (workspace_id,),
    )
    stored_json = DriverValues.stored_json
    return {
        contact_id: Known(user_id, stored_json(sources), bool(blank))
        for contact_id, user_id, sources, blank in rows
    }


def move_seen(
    session: Session, workspace_id: str, seen: Mapping[int, tuple[datetime, datetime]]
) -> None:
    if not seen:
        return
    values = driver_values(session)
    if values.postgresql:
        # One statement over arrays: an executemany costs PostgreSQL a statement per contact.
        session.connection().exec_driver_sql(
            "UPDATE contacts SET"
            " first_seen_at = LEAST(first_seen_at, seen.first_at),"
            " last_seen_at = GREATEST(last_seen_at, seen.last_at)"
            " FROM unnest(%s::bigint[], %s::timestamptz[], %s::timestamptz[])"
            " AS seen(id, first_at, last_at)"
            " WHERE contacts.id = seen.id AND contacts.workspace_id = %s",
            (
                list(seen),
                [first for first, _last in seen.values()],
                [last for _first, last in seen.values()],
                workspace_id,
            ),
        )
        return
    rows = []
    for contact_id, (first_at, last_at) in seen.items():
        first, last = values.time(first_at), values.time(last_at)
        rows.append((first, first, last, last, contact_id, workspace_id))
    # A comparison with NULL is not true: a contact never seen takes the new times.
    execute_many(
        session,
        "UPDATE contacts SET"
        " first_seen_at = CASE WHEN first_seen_at <= ? THEN first_seen_at ELSE ? END,"
        " last_seen_at = CASE WHEN last_seen_at >= ? THEN last_seen_at ELSE ? END"
        " WHERE id = ? AND workspace_id = ?",
        rows,
    )


@dataclass(slots=True)
class Profile:
    """The profile fields of one contact, as loaded, then as its changes leave them."""

    traits: dict[str, Any]
    user_id: str | None
    email: str | None
    phone: str | None
    company_id: int | None
    sources: list[str]
    first_seen_at: datetime | None = None
    last_seen_at: datetime | None = None
    seen_moved: bool = False


UPDATE_PROFILE = (
    "UPDATE contacts SET traits = ?::jsonb, user_id = ?, email = ?, phone = ?, company_id = ?,"
    " sources = ?::jsonb, first_seen_at = ?, last_seen_at = ?, search_text = ?, updated_at = ?"
    " WHERE id = ? AND workspace_id = ?"
)
UPDATE_SEEN = (
    "UPDATE contacts SET first_seen_at = ?, last_seen_at = ? WHERE id = ? AND workspace_id = ?"
)


def load_profiles(session: Session, workspace_id: str, ids: Iterable[int]) -> dict[int, Profile]:
    rows = fetch_in(
        session,
        "SELECT id, traits, user_id, email, phone, company_id, sources, first_seen_at,"
        " last_seen_at FROM contacts"
        " WHERE workspace_id || '' = ? AND merged_into_id IS NULL AND id IN",
        sorted(ids),
        (workspace_id,),
    )
    stored_json, stored_time = DriverValues.stored_json, DriverValues.stored_time
    return {
        row[0]: Profile(
            stored_json(row[1]),
            row[2],
            row[3],
            row[4],
            row[5],
            stored_json(row[6]),
            stored_time(row[7]),
            stored_time(row[8]),
        )
        for row in rows
    }
