"""Profile updates for many contacts at once: traits, first and last seen, companies.

Trait rule: a new non-empty value replaces the old one; an empty value (null, "", "  ") changes
nothing, so an SDK that sends a partial profile never erases what is known. Clearing a trait
is an explicit act through the REST API.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.orm import Session

from sodate.contacts.identifiers import normalize_email, normalize_phone
from sodate.contacts.models import Company, Contact
from sodate.db.bulk import driver_values, execute_many, fetch_in

CONTACTS: sa.Table = Contact.__table__  # type: ignore[assignment]
COMPANIES: sa.Table = Company.__table__  # type: ignore[assignment]
CHUNK = 500
SEARCHED_TRAITS = ("name", "firstName", "lastName", "firstNameKana", "lastNameKana", "title")


@dataclass(slots=True)
class ProfileChange:
    """What one message or import row says about one contact."""

    contact_id: int
    seen_at: datetime | None = None
    traits: Mapping[str, Any] = field(default_factory=dict)
    user_id: str | None = None
    company_key: str | None = None
    source: str | None = None
    clear: Sequence[str] = ()


@dataclass
class CompanyChange:
    group_key: str
    traits: Mapping[str, Any]


def filled(value: Any) -> bool:
    """Whether a value says something: not null, nor blank text, nor an empty list or object."""
    if isinstance(value, str):
        return value.strip() != ""
    return value is not None and value != [] and value != {}


def display_name(traits: Mapping[str, Any]) -> str | None:
    """`name`, else the given and family names; family name first when they are Japanese."""
    name = traits.get("name")
    if isinstance(name, str) and name.strip():
        return name.strip()
    first, last = traits.get("firstName"), traits.get("lastName")
    parts = [p.strip() for p in (first, last) if isinstance(p, str) and p.strip()]
    if any(_is_cjk(part) for part in parts):
        parts.reverse()
    return " ".join(parts) or None


def _is_cjk(text: str) -> bool:
    return any("\u3040" <= ch <= "\u9fff" or "\uff66" <= ch <= "\uff9f" for ch in text)


def search_text(
    traits: Mapping[str, Any], *, email: str | None, phone: str | None, user_id: str | None
) -> str:
    parts = [email, phone, user_id, display_name(traits)]
    parts.extend(v for k in SEARCHED_TRAITS if isinstance(v := traits.get(k), str))
    return " ".join(p for p in dict.fromkeys(parts) if p).casefold()


def apply_profile_changes(
    session: Session, workspace_id: str, changes: Sequence[ProfileChange], *, now: datetime
) -> set[int]:
    """Apply changes in order; return the contacts whose profile fields changed.

    Most messages only say a contact was seen. Those contacts are not loaded: their first and
    last seen move in one narrow update each. Only contacts that some change could alter are
    loaded whole, changed in order, and written back.
    """
    if not changes:
        return set()
    known = _load_identity_fields(session, workspace_id, {change.contact_id for change in changes})
    profiled = {
        change.contact_id
        for change in changes
        if change.contact_id in known and _may_change_profile(change, known[change.contact_id])
    }
    seen: dict[int, tuple[datetime, datetime]] = {}
    for change in changes:
        at = change.seen_at
        if at is None or change.contact_id in profiled or change.contact_id not in known:
            continue
        first, last = seen.get(change.contact_id, (at, at))
        seen[change.contact_id] = (min(first, at), max(last, at))
    _move_seen(session, seen)
    return _apply_profiles(
        session,
        workspace_id,
        [change for change in changes if change.contact_id in profiled],
        now=now,
    )


def _may_change_profile(change: ProfileChange, known: tuple[str | None, list[str]]) -> bool:
    user_id, sources = known
    return bool(
        change.traits
        or change.clear
        or change.company_key
        or (change.user_id and change.user_id != user_id)
        or (change.source and change.source not in sources)
    )


def _load_identity_fields(
    session: Session, workspace_id: str, ids: Iterable[int]
) -> dict[int, tuple[str | None, list[str]]]:
    """The user id and sources of each live contact: what decides if a change is only "seen"."""
    rows = fetch_in(
        session,
        "SELECT id, user_id, sources FROM contacts"
        " WHERE workspace_id = ? AND merged_into_id IS NULL AND id IN",
        sorted(ids),
        (workspace_id,),
    )
    # PostgreSQL's driver decodes JSONB itself; SQLite gives the text.
    return {
        contact_id: (user_id, orjson.loads(sources) if isinstance(sources, str) else sources)
        for contact_id, user_id, sources in rows
    }


def _move_seen(session: Session, seen: Mapping[int, tuple[datetime, datetime]]) -> None:
    values = driver_values(session)
    rows = []
    for contact_id, (first_at, last_at) in seen.items():
        first, last = values.time(first_at), values.time(last_at)
        rows.append((first, first, last, last, contact_id))
    # A comparison with NULL is not true: a contact never seen takes the new times.
    execute_many(
        session,
        "UPDATE contacts SET"
        " first_seen_at = CASE WHEN first_seen_at <= ? THEN first_seen_at ELSE ? END,"
        " last_seen_at = CASE WHEN last_seen_at >= ? THEN last_seen_at ELSE ? END"
        " WHERE id = ?",
        rows,
    )


def _apply_profiles(
    session: Session, workspace_id: str, changes: Sequence[ProfileChange], *, now: datetime
) -> set[int]:
    if not changes:
        return set()
    company_ids = _company_ids(
        session, workspace_id, {c.company_key for c in changes if c.company_key}
    )
    rows = _load(session, workspace_id, {change.contact_id for change in changes})
    changed: set[int] = set()
    for change in changes:
        row = rows.get(change.contact_id)
        if row is None:
            continue
        if _apply(row, change, company_ids):
            changed.add(change.contact_id)
        row["_touched"] = True
    # A contact loaded for a change that turned out to change nothing gets the narrow update.
    seen_only = [
        {
            "_id": row["id"],
            "first_seen_at": row["first_seen_at"],
            "last_seen_at": row["last_seen_at"],
        }
        for row in rows.values()
        if row.get("_touched") and row["id"] not in changed
    ]
    profiles = [
        {
            "_id": row["id"],
            "traits": row["traits"],
            "user_id": row["user_id"],
            "email": row["email"],
            "phone": row["phone"],
            "company_id": row["company_id"],
            "sources": row["sources"],
            "first_seen_at": row["first_seen_at"],
            "last_seen_at": row["last_seen_at"],
            "search_text": search_text(
                row["traits"], email=row["email"], phone=row["phone"], user_id=row["user_id"]
            ),
            "updated_at": now,
        }
        for row in rows.values()
        if row["id"] in changed
    ]
    for updates in (seen_only, profiles):
        if updates:
            statement = (
                sa.update(CONTACTS)
                .where(CONTACTS.c.id == sa.bindparam("_id"))
                .values({key: sa.bindparam(key) for key in updates[0] if key != "_id"})
            )
            session.execute(statement, updates, execution_options={"synchronize_session": False})
    return changed


def _load(session: Session, workspace_id: str, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    wanted = sorted(ids)
    rows: dict[int, dict[str, Any]] = {}
    columns = [
        CONTACTS.c.id,
        CONTACTS.c.traits,
        CONTACTS.c.user_id,
        CONTACTS.c.email,
        CONTACTS.c.phone,
        CONTACTS.c.company_id,
        CONTACTS.c.sources,
        CONTACTS.c.first_seen_at,
        CONTACTS.c.last_seen_at,
        CONTACTS.c.updated_at,
    ]
    for start in range(0, len(wanted), CHUNK):
        result = session.execute(
            sa.select(*columns).where(
                CONTACTS.c.workspace_id == workspace_id,
                CONTACTS.c.id.in_(wanted[start : start + CHUNK]),
                CONTACTS.c.merged_into_id.is_(None),
            )
        )
        for row in result.mappings():
            rows[row["id"]] = dict(row)
    return rows


def _apply(row: dict[str, Any], change: ProfileChange, company_ids: Mapping[str, int]) -> bool:
    before = (row["traits"], row["user_id"], row["company_id"], row["sources"])
    traits = dict(row["traits"])
    for key, value in change.traits.items():
        if filled(value):
            traits[key] = value
    for key in change.clear:
        traits.pop(key, None)
    row["traits"] = traits
    if "email" in change.traits or "email" in change.clear:
        row["email"] = normalize_email(traits.get("email")) or (
            None if "email" in change.clear else row["email"]
        )
    if "phone" in change.traits or "phone" in change.clear:
        row["phone"] = normalize_phone(traits.get("phone")) or (
            None if "phone" in change.clear else row["phone"]
        )
    if change.user_id:
        row["user_id"] = change.user_id
    if change.company_key:
        row["company_id"] = company_ids[change.company_key]
    if change.source and change.source not in row["sources"]:
        row["sources"] = [*row["sources"], change.source]
    if change.seen_at is not None:
        first, last = row["first_seen_at"], row["last_seen_at"]
        row["first_seen_at"] = change.seen_at if first is None else min(first, change.seen_at)
        row["last_seen_at"] = change.seen_at if last is None else max(last, change.seen_at)
    return before != (row["traits"], row["user_id"], row["company_id"], row["sources"])


def upsert_companies(
    session: Session, workspace_id: str, changes: Sequence[CompanyChange], *, now: datetime
) -> dict[str, int]:
    """Create or update companies by group key; return the id of each key."""
    if not changes:
        return {}
    merged: dict[str, dict[str, Any]] = {}
    for change in changes:
        traits = merged.setdefault(change.group_key, {})
        traits.update({k: v for k, v in change.traits.items() if filled(v)})
    existing = {
        row.group_key: row
        for row in session.execute(
            sa.select(COMPANIES.c.id, COMPANIES.c.group_key, COMPANIES.c.traits).where(
                COMPANIES.c.workspace_id == workspace_id,
                COMPANIES.c.group_key.in_(sorted(merged)),
            )
        )
    }
    new = [
        {
            "workspace_id": workspace_id,
            "group_key": key,
            "name": _company_name(traits),
            "traits": traits,
            "created_at": now,
            "updated_at": now,
        }
        for key, traits in merged.items()
        if key not in existing
    ]
    if new:
        session.execute(sa.insert(COMPANIES), new)
    updates = []
    for key, row in existing.items():
        traits = {**row.traits, **merged[key]}
        if traits != row.traits:
            updates.append(
                {"_id": row.id, "traits": traits, "name": _company_name(traits), "updated_at": now}
            )
    if updates:
        session.execute(
            sa.update(COMPANIES)
            .where(COMPANIES.c.id == sa.bindparam("_id"))
            .values(
                traits=sa.bindparam("traits"),
                name=sa.bindparam("name"),
                updated_at=sa.bindparam("updated_at"),
            ),
            updates,
            execution_options={"synchronize_session": False},
        )
    return _company_ids(session, workspace_id, set(merged))


def _company_ids(session: Session, workspace_id: str, keys: set[str | None]) -> dict[str, int]:
    wanted = sorted(k for k in keys if k)
    if not wanted:
        return {}
    return {
        key: company_id
        for company_id, key in session.execute(
            sa.select(COMPANIES.c.id, COMPANIES.c.group_key).where(
                COMPANIES.c.workspace_id == workspace_id, COMPANIES.c.group_key.in_(wanted)
            )
        )
    }


def _company_name(traits: Mapping[str, Any]) -> str | None:
    name = traits.get("name")
    return name[:300] if isinstance(name, str) and name else None
