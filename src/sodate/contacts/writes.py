"""Profile writes from the API and imports, run as identify events through the pipeline.

Going through the pipeline gives an upsert exactly the identity rules, merges and history of
an `identify` call, and lets later stages (scores, segments, journeys) react to it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from sodate.contacts.companies import CompanyChange, contacts_of_companies, upsert_companies
from sodate.contacts.identifiers import (
    normalize_email,
    normalize_phone,
    usable_id,
)
from sodate.contacts.identity import resolve_identities
from sodate.contacts.prepared import (
    ContactData,
    PreparedContact,
    identify_traits,
    row_claim,
)
from sodate.contacts.profiles import ProfileChange, apply_profile_changes
from sodate.contacts.schemas import ContactPatch, ContactUpsert
from sodate.contacts.service import live_contact_id
from sodate.db.bulk import DriverValues
from sodate.db.locks import lock_workspace
from sodate.errors import InvalidInput
from sodate.events.pipeline import BatchEvent, EventBatch
from sodate.events.schemas import MessageType
from sodate.pipeline import process_batch

API_SOURCE = "api"


@dataclass(frozen=True)
class Upserted:
    contact_id: int
    created: bool


def check_identifiers(data: ContactUpsert) -> list[dict[str, Any]]:
    """An error detail for each identifier that cannot be used: its `loc`, `msg`, and `type`
    "value", as a static list's rejected rows say of the same identifiers."""
    problems: list[tuple[list[str], str]] = []
    if data.user_id is not None and usable_id(data.user_id) is None:
        problems.append((["user_id"], f"a placeholder, not an id: {data.user_id!r}"))
    for kind, value in data.external_ids.items():
        if usable_id(value) is None:
            problems.append((["external_ids", kind], f"a placeholder, not an id: {value!r}"))
    if data.email is not None and normalize_email(data.email) is None:
        problems.append((["email"], f"not an email address: {data.email!r}"))
    if data.phone is not None and normalize_phone(data.phone) is None:
        problems.append((["phone"], f"not a valid phone number: {data.phone!r}"))
    return [{"loc": loc, "msg": msg, "type": "value"} for loc, msg in problems]


def upsert_contacts(
    session: Session,
    workspace_id: str,
    rows: Sequence[ContactData],
    *,
    now: datetime,
    source: str = API_SOURCE,
    context: dict[str, Any] | None = None,
    company_traits: Mapping[str, Mapping[str, Any]] | None = None,
    prepared: Sequence[PreparedContact | None] | None = None,
) -> list[Upserted]:
    """Create or update one contact per row, in order; rows must have passed check_identifiers.

    `company_traits` (by group key) are set on the rows' companies as they are linked.
    `prepared`, one a row where given, is each row's `prepare_contact` with this source.

    The pipeline's contact steps are done here, by the same functions and rules: resolution,
    with new contacts created holding their profile (one insert instead of an empty row
    filled afterwards), then the changes of contacts already stored. The identify events then
    go through the whole pipeline (history, scores, segments, journeys) resolved, marked
    `profiles_applied`: the pipeline's profile step has nothing left to do for them.
    """
    lock_workspace(session, workspace_id, wait=True)
    prepared_rows = prepared if prepared is not None else [None] * len(rows)
    events = _identify_events(rows, prepared_rows, now, source, context)
    keys = {row.company_key for row in rows if row.company_key}
    companies = upsert_companies(
        session,
        workspace_id,
        [CompanyChange(key, (company_traits or {}).get(key, {})) for key in sorted(keys)],
        now=now,
    )
    changes = [
        ProfileChange(
            contact_id=0,
            traits=event.traits,
            user_id=row.user_id,
            company_id=companies.ids.get(row.company_key) if row.company_key else None,
            source=source,
            prepared=None if prepared_row is None else prepared_row.profile,
        )
        for row, event, prepared_row in zip(rows, events, prepared_rows, strict=True)
    ]
    resolution = resolve_identities(
        session,
        workspace_id,
        [
            row_claim(row, event.traits) if prepared_row is None else prepared_row.claim
            for row, event, prepared_row in zip(rows, events, prepared_rows, strict=True)
        ],
        now=now,
        source=source,
        profiles=changes,
    )
    for change, event, contact_id in zip(changes, events, resolution.contact_ids, strict=True):
        change.contact_id = event.contact_id = contact_id
    changed = apply_profile_changes(
        session,
        workspace_id,
        [change for change in changes if change.contact_id not in resolution.created],
        now=now,
    )
    if companies.changed:  # every contact of a company reads its traits as `company.*`
        changed |= contacts_of_companies(session, workspace_id, companies.changed)
    batch = EventBatch(
        workspace_id=workspace_id,
        events=events,
        now=now,
        source=source,
        created_contacts=set(resolution.created),
        merges=list(resolution.merges),
        changed_profiles=changed,
        profiles_applied=True,
    )
    process_batch(session, batch)
    return [
        Upserted(contact_id=contact_id, created=contact_id in resolution.created)
        for contact_id in resolution.contact_ids
    ]


def put_company(
    session: Session,
    workspace_id: str,
    group_key: str,
    traits: Mapping[str, Any],
    *,
    now: datetime,
) -> int:
    """Create or update a company by its group key; return its id. A change of its traits
    re-checks every contact of the company (segments, fit and lifecycle rules read
    `company.*`), as a `group` call does."""
    lock_workspace(session, workspace_id, wait=True)
    companies = upsert_companies(
        session, workspace_id, [CompanyChange(group_key, dict(traits))], now=now
    )
    if companies.changed:
        batch = EventBatch(
            workspace_id=workspace_id,
            events=[],
            now=now,
            source=API_SOURCE,
            changed_profiles=contacts_of_companies(session, workspace_id, companies.changed),
        )
        process_batch(session, batch)
    return companies.ids[group_key]


def upsert_contact(
    session: Session, workspace_id: str, data: ContactUpsert, *, now: datetime
) -> Upserted:
    errors = check_identifiers(data)
    if errors:
        raise InvalidInput("the contact's identifiers are not valid", details=errors)
    return upsert_contacts(session, workspace_id, [data], now=now)[0]


def patch_contact(
    session: Session, workspace_id: str, contact_id: int, patch: ContactPatch, *, now: datetime
) -> int:
    """Set and clear traits of a known contact; return its id (the survivor's, if merged)."""
    contact_id = live_contact_id(session, workspace_id, contact_id)
    event = BatchEvent(
        message_id=f"api-{uuid.uuid4()}",
        type=MessageType.IDENTIFY,
        name=None,
        user_id=None,
        anonymous_id=None,
        properties=dict(patch.traits),
        traits={k: v for k, v in patch.traits.items() if v is not None},
        context={"source": API_SOURCE},
        timestamp=now,
        received_at=now,
        group_id=patch.company_key,
        clear_traits=tuple(k for k, v in patch.traits.items() if v is None),
        contact_id=contact_id,
        activity=False,
        keyed=False,
    )
    process_batch(
        session, EventBatch(workspace_id=workspace_id, events=[event], now=now, source=API_SOURCE)
    )
    return contact_id


def _identify_events(
    rows: Sequence[ContactData],
    prepared: Sequence[PreparedContact | None],
    now: datetime,
    source: str,
    context: dict[str, Any] | None,
) -> list[BatchEvent]:
    """Each row's identify event. The message ids share one random part, numbered after it
    (a random id each cost more than the rest of the event). Rows without external ids share
    one context, as stored JSON text (no step changes an event's context), and a prepared
    row's event takes its traits' text from `prepare_contact`: neither is serialized again
    for each row."""
    prefix = f"{source}-{uuid.uuid4()}"
    shared_context = {**(context or {}), "source": source}
    no_external_ids = DriverValues.json({**shared_context, "externalIds": []})
    events = []
    for number, (row, prepared_row) in enumerate(zip(rows, prepared, strict=True)):
        traits = identify_traits(row)
        external_ids = row.external_ids
        events.append(
            BatchEvent(
                message_id=f"{prefix}-{number}",
                type=MessageType.IDENTIFY,
                name=None,
                user_id=row.user_id,
                anonymous_id=None,
                properties=traits if prepared_row is None else prepared_row.event_traits,
                traits=traits,
                context={
                    **shared_context,
                    "externalIds": [{"id": v, "type": k} for k, v in external_ids.items()],
                }
                if external_ids
                else no_external_ids,
                timestamp=now,
                received_at=now,
                group_id=row.company_key,
                activity=False,
                keyed=False,
            )
        )
    return events
