"""Companies by group key, for many contacts at once."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy.orm import Session

from sodate.contacts.profiles import filled
from sodate.db.bulk import DriverValues, driver_values, execute_many, fetch_in


@dataclass
class CompanyChange:
    group_key: str
    traits: Mapping[str, Any]


_COMPANIES_WITH_TRAITS = (
    "SELECT id, group_key, traits FROM companies WHERE workspace_id = ? AND group_key IN"
)
_COMPANIES = "SELECT id, group_key, NULL FROM companies WHERE workspace_id = ? AND group_key IN"


class CompaniesUpserted(NamedTuple):
    ids: dict[str, int]
    """The id of each group key."""
    changed: set[int]
    """Existing companies whose traits changed (their contacts' `company.*` moved)."""


def upsert_companies(
    session: Session, workspace_id: str, changes: Sequence[CompanyChange], *, now: datetime
) -> CompaniesUpserted:
    """Create or update companies by group key."""
    if not changes:
        return CompaniesUpserted({}, set())
    merged: dict[str, dict[str, Any]] = {}
    for change in changes:
        traits = merged.setdefault(change.group_key, {})
        if change.traits:
            traits.update({k: v for k, v in change.traits.items() if filled(v)})
    keys = sorted(merged)
    # Identify calls only link contacts to companies: with no traits to merge, none are read.
    with_traits = any(merged.values())
    existing = {
        key: (company_id, DriverValues.stored_json(traits) if with_traits else None)
        for company_id, key, traits in fetch_in(
            session,
            _COMPANIES_WITH_TRAITS if with_traits else _COMPANIES,
            keys,
            (workspace_id,),
        )
    }
    values = driver_values(session)
    stamp = values.time(now)
    new = [
        (workspace_id, key, _company_name(traits), values.json(traits), stamp, stamp)
        for key, traits in merged.items()
        if key not in existing
    ]
    execute_many(
        session,
        "INSERT INTO companies (workspace_id, group_key, name, traits, created_at, updated_at)"
        " VALUES (?, ?, ?, ?::jsonb, ?, ?)",
        new,
    )
    updates = []
    for key, (company_id, stored) in existing.items():
        if stored is not None and (traits := {**stored, **merged[key]}) != stored:
            updates.append(
                (values.json(traits), _company_name(traits), stamp, company_id, workspace_id)
            )
    execute_many(
        session,
        "UPDATE companies SET traits = ?::jsonb, name = ?, updated_at = ?"
        " WHERE id = ? AND workspace_id = ?",
        updates,
    )
    ids = {key: company_id for key, (company_id, _) in existing.items()}
    if new:
        ids.update(_company_ids(session, workspace_id, {row[1] for row in new}))
    return CompaniesUpserted(ids, {row[3] for row in updates})


def contacts_of_companies(session: Session, workspace_id: str, company_ids: set[int]) -> set[int]:
    """The live contacts that belong to these companies."""
    # `|| ''`: the company index, not the workspace's (`sodate.db.plans`).
    rows = fetch_in(
        session,
        "SELECT id FROM contacts WHERE workspace_id || '' = ? AND merged_into_id IS NULL"
        " AND company_id IN",
        sorted(company_ids),
        (workspace_id,),
    )
    return {contact_id for (contact_id,) in rows}


def _company_ids(session: Session, workspace_id: str, keys: Iterable[str]) -> dict[str, int]:
    rows = fetch_in(
        session,
        "SELECT group_key, id FROM companies WHERE workspace_id = ? AND group_key IN",
        sorted(keys),
        (workspace_id,),
    )
    return dict(rows)


def _company_name(traits: Mapping[str, Any]) -> str | None:
    name = traits.get("name")
    return name[:300] if isinstance(name, str) and name else None
