"""Identity resolution and merges against the database, for a whole batch at a time.

Loading is set-based: one query for the batch's identifiers (by their keys), one for the
identities of the contacts found. The rules themselves live in `sodate.contacts.resolution`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sodate.contacts.identifiers import IdentityKey
from sodate.contacts.models import Contact, ContactIdentity, ContactMerge, identity_key
from sodate.contacts.profiles import (
    NEW_CONTACT_COLUMNS,
    ProfileChange,
    filled,
    new_contact_row,
    search_text,
)
from sodate.contacts.resolution import IdentityClaim, PlannedMerge, Resolver
from sodate.db.bulk import driver_values, fetch_all, fetch_in, insert_rows

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
    profiles: Sequence[ProfileChange] | None = None,
) -> Resolution:
    """Find or create the contact of every claim, merging contacts the rules say are one.

    Most claims only repeat identifiers that all lead to one stored contact: that contact is
    theirs, and they can change nothing. Only the others go through the resolver, which loads
    every identity of the contacts they reach.

    `profiles`, one change per claim (its contact id is not read), gives new contacts their
    profile as they are created: then the caller applies only the changes of the claims whose
    contact was already stored (`Resolution.created` tells them apart).
    """
    hashed: dict[IdentityKey, int] = {}
    for claim in claims:
        rest = claim.aliases
        if claim.key_hashes:
            hashed.update(zip(claim.keys, claim.key_hashes, strict=True))
        else:
            rest = (*claim.keys, *rest)
        for key in rest:
            if key not in hashed:
                hashed[key] = identity_key(workspace_id, key.kind, key.value)
    found = dict(_identities_by_key(session, workspace_id, hashed))
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
    changes_of: dict[int, list[ProfileChange]] = {ref: [] for ref in new_refs}
    if profiles is not None:
        for ref, change in zip(refs, profiles, strict=True):
            if (ref := resolver.find(ref)) < 0:
                changes_of[ref].append(change)
    stored = _create_contacts(session, workspace_id, changes_of, now=now, source=source)
    real = dict(zip(new_refs, stored, strict=True))

    def final(ref: int) -> int:
        ref = resolver.find(ref)
        return real.get(ref, ref)

    for merge in resolver.merges:
        merge_contact_rows(
            session, workspace_id, merge.survivor, merge.merged, reason=merge.reason, now=now
        )
    stamp = driver_values(session).time(now)
    # In key order: the index's pages are then each reached once, in turn, where keys at
    # random reached them back and forth (`BENCHMARKS.md`).
    new = sorted((hashed[key], key, final(ref)) for key, ref in resolver.new_keys.items())
    insert_rows(
        session,
        "contact_identities",
        ("key", "workspace_id", "kind", "value", "contact_id", "created_at"),
        [
            (key_hash, workspace_id, key.kind, key.value, contact, stamp)
            for key_hash, key, contact in new
        ],
    )
    return Resolution(
        contact_ids=[final(ref) for ref in refs], created=set(stored), merges=resolver.merges
    )


def _identities_by_key(
    session: Session, workspace_id: str, hashed: Mapping[IdentityKey, int]
) -> list[tuple[IdentityKey, int]]:
    """The contacts of these identities, given with their keys (`identity_key`)."""
    rows = fetch_in(
        session,
        "SELECT workspace_id, kind, value, contact_id FROM contact_identities WHERE key IN",
        sorted(set(hashed.values())),
    )
    # Another identity may share a key: only those asked for are found.
    return [
        (key, contact)
        for workspace, kind, value, contact in rows
        if (key := IdentityKey(kind, value)) in hashed and workspace == workspace_id
    ]


def _identities_of(session: Session, contacts: set[int]) -> list[tuple[IdentityKey, int]]:
    rows = fetch_in(
        session,
        "SELECT kind, value, contact_id FROM contact_identities WHERE contact_id IN",
        sorted(contacts),
    )
    return [(IdentityKey(kind, value), contact) for kind, value, contact in rows]


def _create_contacts(
    session: Session,
    workspace_id: str,
    changes_of: Mapping[int, Sequence[ProfileChange]],
    *,
    now: datetime,
    source: str,
) -> list[int]:
    """Store a contact for each new reference, with its changes; return their ids, in order."""
    if not changes_of:
        return []
    ids = _allocate_contact_ids(session, len(changes_of))
    values = driver_values(session)
    stamp = values.time(now)
    rows = [
        new_contact_row(
            contact_id, workspace_id, changes, source=source, values=values, stamp=stamp
        )
        for contact_id, changes in zip(ids, changes_of.values(), strict=True)
    ]
    insert_rows(session, "contacts", NEW_CONTACT_COLUMNS, rows)
    return ids


def _allocate_contact_ids(session: Session, count: int) -> list[int]:
    """Ids for new contacts, so that their rows go in without RETURNING (COPY on PostgreSQL).

    SQLite's write transaction is exclusive, so the ids after the largest are free until it
    ends; PostgreSQL hands out the sequence's values.
    """
    if driver_values(session).postgresql:
        return [
            row[0]
            for row in fetch_all(
                session,
                "SELECT nextval(pg_get_serial_sequence('contacts', 'id'))"
                " FROM generate_series(1, ?)",
                (count,),
            )
        ]
    start = fetch_all(session, "SELECT coalesce(max(id), 0) FROM contacts")[0][0]
    return list(range(start + 1, start + 1 + count))


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
