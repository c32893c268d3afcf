"""Recording consent and reading it back.

Every grant and withdrawal is a record kept as proof; a contact's consent now for a channel
and purpose is its latest record by the time the person gave it (`at`), so a record told late
is kept without undoing a later one. A change of a contact's consent now re-checks it in the
segments and lifecycle rules that read consent, before the call returns.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sodate.consents.models import Channel, ConsentRecord, ConsentSource, ContactConsent
from sodate.consents.schemas import ConsentIn, ConsentOut, ConsentRecordOut, ConsentRecordPage
from sodate.contacts.resolution import PlannedMerge
from sodate.db.locks import lock_workspace
from sodate.db.paging import fetch_page
from sodate.db.plans import workspace_check
from sodate.errors import InvalidInput
from sodate.lifecycle import service as lifecycle
from sodate.segments import service as segments

RECORDS: sa.Table = ConsentRecord.__table__  # type: ignore[assignment]
CURRENT: sa.Table = ContactConsent.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class Recorder:
    """Who recorded a consent: a person signed in, or an API key."""

    source: ConsentSource
    user_id: int | None = None
    api_key_id: int | None = None


def record_consent(
    session: Session,
    workspace_id: str,
    contact_id: int,
    consent: ConsentIn,
    *,
    recorder: Recorder,
    now: datetime,
) -> list[ConsentOut]:
    """Record a grant or withdrawal for a live contact; return its consents now."""
    at = consent.at or now
    if at > now:
        raise InvalidInput(
            "the consent is dated later than now",
            details=[{"loc": ["at"], "msg": "must not be later than now", "type": "future"}],
        )
    lock_workspace(session, workspace_id, wait=True)
    record_id = session.execute(
        sa.insert(RECORDS)
        .values(
            workspace_id=workspace_id,
            contact_id=contact_id,
            channel=consent.channel.value,
            purpose=consent.purpose,
            granted=consent.granted,
            at=at,
            text=consent.text,
            ip=None if consent.ip is None else str(consent.ip),
            source=recorder.source.value,
            user_id=recorder.user_id,
            api_key_id=recorder.api_key_id,
            recorded_at=now,
        )
        .returning(RECORDS.c.id)
    ).scalar_one()
    key = (
        CURRENT.c.contact_id == contact_id,
        CURRENT.c.channel == consent.channel.value,
        CURRENT.c.purpose == consent.purpose,
    )
    held = session.execute(sa.select(CURRENT.c.granted, CURRENT.c.since).where(*key)).first()
    if held is None or at >= held.since:
        values = {"granted": consent.granted, "since": at, "record_id": record_id}
        if held is None:
            session.execute(
                sa.insert(CURRENT).values(
                    contact_id=contact_id,
                    channel=consent.channel.value,
                    purpose=consent.purpose,
                    workspace_id=workspace_id,
                    **values,
                )
            )
        else:
            session.execute(sa.update(CURRENT).where(*key).values(**values))
        if held is None or held.granted != consent.granted:
            _recheck(session, workspace_id, {contact_id}, now=now)
    return consents_now(session, workspace_id, contact_id)


def _recheck(session: Session, workspace_id: str, contacts: set[int], *, now: datetime) -> None:
    # Segments first: a lifecycle rule may read a segment that reads consent.
    segments.recheck_consent_readers(session, workspace_id, contacts, now=now)
    lifecycle.recheck_consent_rules(session, workspace_id, contacts, now=now)


def consents_now(session: Session, workspace_id: str, contact_id: int) -> list[ConsentOut]:
    rows = session.execute(
        sa.select(CURRENT.c.channel, CURRENT.c.purpose, CURRENT.c.granted, CURRENT.c.since)
        .where(CURRENT.c.workspace_id == workspace_id, CURRENT.c.contact_id == contact_id)
        .order_by(CURRENT.c.channel, CURRENT.c.purpose)
    )
    return [ConsentOut.model_validate(row, from_attributes=True) for row in rows]


def consents_of(
    session: Session, workspace_id: str, contact_ids: Sequence[int]
) -> dict[int, dict[str, dict[str, dict[str, Any]]]]:
    """Each contact's consents now, by channel and purpose, as a contact shows them."""
    found: dict[int, dict[str, dict[str, dict[str, Any]]]] = defaultdict(dict)
    ids = sorted(set(contact_ids))
    for start in range(0, len(ids), 500):
        rows = session.execute(
            sa.select(
                CURRENT.c.contact_id,
                CURRENT.c.channel,
                CURRENT.c.purpose,
                CURRENT.c.granted,
                CURRENT.c.since,
            ).where(
                workspace_check(CURRENT.c.workspace_id, workspace_id),
                CURRENT.c.contact_id.in_(ids[start : start + 500]),
            )
        )
        for contact, channel, purpose, granted, since in rows:
            found[contact].setdefault(channel, {})[purpose] = {"granted": granted, "since": since}
    return found


def list_records(
    session: Session,
    workspace_id: str,
    *,
    contact_id: int | None = None,
    channel: Channel | None = None,
    purpose: str | None = None,
    limit: int,
    after: int | None,
) -> ConsentRecordPage:
    """Consent records oldest first, the proof of each grant and withdrawal: one contact's, or
    the workspace's, of one channel or purpose if asked."""
    statement = sa.select(RECORDS).where(RECORDS.c.workspace_id == workspace_id)
    if contact_id is not None:
        statement = statement.where(RECORDS.c.contact_id == contact_id)
    if channel is not None:
        statement = statement.where(RECORDS.c.channel == channel.value)
    if purpose is not None:
        statement = statement.where(RECORDS.c.purpose == purpose)
    if after is not None:
        statement = statement.where(RECORDS.c.id > after)
    page, cursor = fetch_page(session, statement.order_by(RECORDS.c.id), limit=limit, rows=True)
    return ConsentRecordPage(
        items=[ConsentRecordOut.model_validate(row, from_attributes=True) for row in page],
        next_cursor=cursor,
    )


def move_consents(
    session: Session, workspace_id: str, merges: Sequence[PlannedMerge], now: datetime
) -> None:
    """The merged contact's records become the survivor's; for each channel and purpose the
    survivor holds the later of the two consents (its own on a tie)."""
    for merge in merges:
        session.execute(
            sa.update(RECORDS)
            .where(RECORDS.c.workspace_id == workspace_id, RECORDS.c.contact_id == merge.merged)
            .values(contact_id=merge.survivor)
        )
        survivor, merged = CURRENT.alias("survivor"), CURRENT.alias("merged")
        mine = CURRENT.c.workspace_id == workspace_id
        # The survivor's consents that the merged contact's later ones replace, then the
        # merged contact's that the survivor's outlast; what remains of the merged moves over.
        session.execute(
            sa.delete(CURRENT).where(
                mine,
                CURRENT.c.contact_id == merge.survivor,
                sa.exists().where(
                    merged.c.contact_id == merge.merged,
                    merged.c.channel == CURRENT.c.channel,
                    merged.c.purpose == CURRENT.c.purpose,
                    merged.c.since > CURRENT.c.since,
                ),
            )
        )
        session.execute(
            sa.delete(CURRENT).where(
                mine,
                CURRENT.c.contact_id == merge.merged,
                sa.exists().where(
                    survivor.c.contact_id == merge.survivor,
                    survivor.c.channel == CURRENT.c.channel,
                    survivor.c.purpose == CURRENT.c.purpose,
                ),
            )
        )
        session.execute(
            sa.update(CURRENT)
            .where(mine, CURRENT.c.contact_id == merge.merged)
            .values(contact_id=merge.survivor)
        )
