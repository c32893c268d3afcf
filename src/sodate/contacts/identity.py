"""Identity resolution and merges against the database, for a whole batch at a time.

Loading is set-based: one query per identifier kind for the batch, one for the identities of
the contacts found. The rules themselves live in `sodate.contacts.resolution`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sodate.contacts.identifiers import IdentityKey
from sodate.contacts.models import Contact, ContactIdentity, ContactMerge
from sodate.contacts.profiles import filled, search_text
from sodate.contacts.resolution import IdentityClaim, PlannedMerge, Resolver
from sodate.db.bulk import driver_values, execute_many, fetch_all, fetch_in

CONTACTS: sa.Table = Contact.__table__  # type: ignore[assignment]
IDENTITIES: sa.Table = ContactIdentity.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class Resolution:
    contact_ids: list[int]
    """The contact of each claim, in order."""
    created: set[int]
    merges: list[PlannedMerge]


def resolve_identities(
    session: Session,
    workspace_id: str,
    claims: Sequence[IdentityClaim],
    *,
    now: datetime,
    source: str,
) -> Resolution:
    """Find or create the contact of every claim, merging contacts the rules say are one.

    Most claims only repeat identifiers that all lead to one stored contact: that contact is
    theirs, and they can change nothing. Only the others go through the resolver, which loads
    every identity of the contacts they reach.
    """
    wanted = {key for claim in claims for key in (*claim.keys, *claim.aliases)}
    found = dict(_identities_by_key(session, workspace_id, wanted))
    settled: list[int | None] = []
    for claim in claims:
        owner = found.get(claim.keys[0]) if claim.keys and not claim.aliases else None
        if owner is not None and all(found.get(key) == owner for key in claim.keys):
            settled.append(owner)
        else:
            settled.append(None)
    open_claims = [claim for claim, owner in zip(claims, settled, strict=True) if owner is None]
    holders = {
        found[key] for claim in open_claims for key in (*claim.keys, *claim.aliases) if key in found
    }
    resolver = Resolver.from_identities(_identities_of(session, holders))
    open_refs = iter([resolver.resolve(claim) for claim in open_claims])
    refs = [next(open_refs) if owner is None else owner for owner in settled]

    new_refs = [ref for ref in resolver.new_contacts if ref not in resolver.redirect]
    stored = _create_contacts(session, workspace_id, len(new_refs), now=now, source=source)
    real = dict(zip(new_refs, stored, strict=True))

    def final(ref: int) -> int:
        ref = resolver.find(ref)
        return real.get(ref, ref)

    for merge in resolver.merges:
        merge_contact_rows(
            session, workspace_id, merge.survivor, merge.merged, reason=merge.reason, now=now
        )
    stamp = driver_values(session).time(now)
    execute_many(
        session,
        _INSERT_IDENTITIES,
        [
            (workspace_id, key.kind, key.value, final(ref), stamp)
            for key, ref in resolver.new_keys.items()
        ],
    )
    return Resolution(
        contact_ids=[final(ref) for ref in refs], created=set(stored), merges=resolver.merges
    )


def _identities_by_key(
    session: Session, workspace_id: str, keys: Iterable[IdentityKey]
) -> list[tuple[IdentityKey, int]]:
    by_kind: dict[str, list[str]] = defaultdict(list)
    for key in keys:
        by_kind[key.kind].append(key.value)
    found: list[tuple[IdentityKey, int]] = []
    for kind, values in by_kind.items():
        rows = fetch_in(
            session,
            "SELECT value, contact_id FROM contact_identities"
            " WHERE workspace_id = ? AND kind = ? AND value IN",
            values,
            (workspace_id, kind),
        )
        found.extend((IdentityKey(kind, value), contact) for value, contact in rows)
    return found


def _identities_of(session: Session, contacts: set[int]) -> list[tuple[IdentityKey, int]]:
    rows = fetch_in(
        session,
        "SELECT kind, value, contact_id FROM contact_identities WHERE contact_id IN",
        sorted(contacts),
    )
    return [(IdentityKey(kind, value), contact) for kind, value, contact in rows]


_INSERT_IDENTITIES = (
    "INSERT INTO contact_identities (workspace_id, kind, value, contact_id, created_at)"
    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (workspace_id, kind, value) DO NOTHING"
)
# New contacts are alike, so one statement makes all of them (counting with a recursive query:
# SQLite has no generate_series), and any id may go to any.
_CREATE_CONTACTS = (
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
    " INSERT INTO contacts (workspace_id, traits, search_text, sources, created_at, updated_at)"
    " SELECT ?, ?::jsonb, '', ?::jsonb, ?, ? FROM n RETURNING id"
)


def _create_contacts(
    session: Session, workspace_id: str, count: int, *, now: datetime, source: str
) -> list[int]:
    if count == 0:
        return []
    values = driver_values(session)
    stamp = values.time(now)
    params = (count, workspace_id, values.json({}), values.json([source]), stamp, stamp)
    return [row[0] for row in fetch_all(session, _CREATE_CONTACTS, params)]


def merge_contact_rows(
    session: Session,
    workspace_id: str,
    survivor_id: int,
    merged_id: int,
    *,
    reason: str,
    now: datetime,
) -> ContactMerge:
    """Merge one contact into another: identities, profile fields, and a redirect.

    Conflicting values: the most recent non-empty one wins, "recent" meaning the contact
    updated last. Other capabilities move their own rows through `sodate.pipeline`.
    """
    survivor = session.get(Contact, survivor_id)
    merged = session.get(Contact, merged_id)
    if survivor is None or merged is None or merged.merged_into_id is not None:
        raise LookupError(f"cannot merge contact {merged_id} into {survivor_id}")
    moved = session.execute(
        sa.update(IDENTITIES)
        .where(IDENTITIES.c.contact_id == merged_id)
        .values(contact_id=survivor_id)
        .returning(IDENTITIES.c.kind, IDENTITIES.c.value)
    ).all()
    newer, older = (
        (merged, survivor)
        if merged.updated_at > survivor.updated_at
        else (
            survivor,
            merged,
        )
    )
    taken = {
        key: value
        for key, value in merged.traits.items()
        if filled(value) and (newer is merged or not filled(survivor.traits.get(key)))
    }
    survivor.traits = {**survivor.traits, **taken}
    for column in ("user_id", "email", "phone", "company_id"):
        setattr(survivor, column, getattr(newer, column) or getattr(older, column))
    survivor.sources = list(dict.fromkeys([*survivor.sources, *merged.sources]))
    survivor.first_seen_at = _earliest(survivor.first_seen_at, merged.first_seen_at)
    survivor.last_seen_at = _latest(survivor.last_seen_at, merged.last_seen_at)
    survivor.updated_at = now
    survivor.search_text = search_text(
        survivor.traits, email=survivor.email, phone=survivor.phone, user_id=survivor.user_id
    )
    merged.merged_into_id = survivor_id
    merged.traits, merged.email, merged.phone, merged.user_id = {}, None, None, None
    merged.search_text, merged.company_id, merged.updated_at = "", None, now
    session.execute(
        sa.update(CONTACTS)
        .where(CONTACTS.c.merged_into_id == merged_id)
        .values(merged_into_id=survivor_id)
    )
    record = ContactMerge(
        workspace_id=workspace_id,
        survivor_id=survivor_id,
        merged_id=merged_id,
        reason=reason,
        details={
            "identities": [{"kind": kind, "value": value} for kind, value in moved],
            "traits_taken": taken,
        },
        created_at=now,
    )
    session.add(record)
    session.flush()
    return record


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return min((v for v in (a, b) if v is not None), default=None)


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return max((v for v in (a, b) if v is not None), default=None)
