"""Segment operations. Functions take the session, flush and never commit."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sodate.conditions.kept import tracked_filters
from sodate.conditions.reads import reads
from sodate.conditions.schemas import (
    Condition,
    dump_condition,
)
from sodate.conditions.sql import matching_contacts
from sodate.contacts import service as contacts
from sodate.db.locks import lock_workspace
from sodate.db.paging import fetch_page
from sodate.errors import Conflict, InvalidInput, NotFound
from sodate.segments import membership, realtime
from sodate.segments.membership import CHANGES, MEMBERS, SEGMENTS, LiveSegment
from sodate.segments.models import ChangeCause, Segment, SegmentKind
from sodate.segments.references import check_references
from sodate.segments.schemas import (
    ChangeOut,
    ChangePage,
    MemberOut,
    MemberPage,
    PreviewOut,
    SegmentIn,
    SegmentOut,
    SegmentSaved,
)
from sodate.workspaces.service import workspace_zone


def preview(
    session: Session, workspace_id: str, condition: Condition, *, sample: int, now: datetime
) -> PreviewOut:
    """How many of the workspace's contacts satisfy `condition` at `now`, and the first few."""
    check_references(session, workspace_id, None, condition)
    matching = matching_contacts(
        condition,
        dialect=session.get_bind().dialect.name,
        workspace_id=workspace_id,
        now=now,
        zone=workspace_zone(session, workspace_id),
        kept=tracked_filters(session, workspace_id),
    ).subquery()
    count = session.execute(sa.select(sa.func.count()).select_from(matching)).scalar_one()
    ids = (
        session.execute(sa.select(matching.c.id).order_by(matching.c.id).limit(sample))
        .scalars()
        .all()
        if sample
        else []
    )
    return PreviewOut(count=count, sample=contacts.contacts_by_ids(session, workspace_id, ids))


def put_segment(
    session: Session, workspace_id: str, key: str, data: SegmentIn, *, now: datetime
) -> tuple[SegmentSaved, bool]:
    """Create or replace a segment, then recompute its members (and those of the segments that
    read it); return it and whether it was created."""
    lock_workspace(session, workspace_id, wait=True)
    segment = _find(session, workspace_id, key)
    if segment is not None and segment.kind != data.kind.value:
        raise Conflict(f"segment {key!r} is {segment.kind}; delete it to make it {data.kind.value}")
    if data.condition is not None:
        check_references(session, workspace_id, key, data.condition)
    created = segment is None
    if segment is None:
        segment = Segment(workspace_id=workspace_id, key=key, created_at=now)
        session.add(segment)
    segment.name = data.name
    segment.description = data.description
    segment.kind = data.kind.value
    segment.condition = dump_condition(data.condition) if data.condition is not None else None
    segment.time_dependent = data.condition is not None and reads(data.condition).clock
    segment.updated_at = now
    session.flush()
    entered = exited = 0
    if data.kind is SegmentKind.DYNAMIC:
        realtime.sync_filters(session, workspace_id, now)
        zone = workspace_zone(session, workspace_id)
        for live in _with_dependents(session, workspace_id, key):
            counts = membership.recompute(
                session, workspace_id, live, now=now, zone=zone, cause=ChangeCause.SAVED
            )
            if live.key == key:
                entered, exited = counts
        session.refresh(segment, ["computed_at"])  # set by the recomputation's own statement
    return SegmentSaved(segment=_out(session, segment), entered=entered, exited=exited), created


def _with_dependents(session: Session, workspace_id: str, key: str) -> list[LiveSegment]:
    """The segment and every dynamic segment that reads it, directly or not, in order."""
    ordered = membership.dynamic_segments(session, workspace_id)
    affected = {key}
    for segment in ordered:
        if reads(segment.condition).segments & affected:
            affected.add(segment.key)
    return [segment for segment in ordered if segment.key in affected]


def get_segment(session: Session, workspace_id: str, key: str) -> SegmentOut:
    return _out(session, _get(session, workspace_id, key))


def list_segments(session: Session, workspace_id: str) -> list[SegmentOut]:
    rows = session.scalars(
        sa.select(Segment).where(Segment.workspace_id == workspace_id).order_by(Segment.key)
    ).all()
    counts: dict[int, int] = dict(
        session.execute(
            sa.select(MEMBERS.c.segment_id, sa.func.count())
            .where(MEMBERS.c.workspace_id == workspace_id)
            .group_by(MEMBERS.c.segment_id)
        ).all()
    )
    return [_out(session, row, counts.get(row.id, 0)) for row in rows]


def segment_keys(
    session: Session, workspace_id: str, contact_ids: Sequence[int]
) -> dict[int, list[str]]:
    """The keys of the segments each contact is a member of, in key order."""
    found: dict[int, list[str]] = defaultdict(list)
    for start in range(0, len(contact_ids), 500):
        rows = session.execute(
            sa.select(MEMBERS.c.contact_id, SEGMENTS.c.key)
            .join(SEGMENTS, SEGMENTS.c.id == MEMBERS.c.segment_id)
            .where(
                MEMBERS.c.workspace_id == workspace_id,
                MEMBERS.c.contact_id.in_(contact_ids[start : start + 500]),
            )
            .order_by(SEGMENTS.c.key)
        )
        for contact_id, key in rows:
            found[contact_id].append(key)
    return found


def segments_reading_model(session: Session, workspace_id: str, model: str) -> list[str]:
    """Keys of the dynamic segments whose conditions compare scores of `model`."""
    return sorted(
        segment.key
        for segment in membership.dynamic_segments(session, workspace_id)
        if model in reads(segment.condition).scores
    )


def recompute_readers_of_model(
    session: Session, workspace_id: str, model: str, *, now: datetime
) -> None:
    """After a model rescored everyone: the segments that read it, and those reading them."""
    ordered = membership.dynamic_segments(session, workspace_id)
    affected: set[str] = set()
    for segment in ordered:
        found = reads(segment.condition)
        if model in found.scores or found.segments & affected:
            affected.add(segment.key)
    zone = workspace_zone(session, workspace_id)
    for segment in ordered:
        if segment.key in affected:
            membership.recompute(
                session, workspace_id, segment, now=now, zone=zone, cause=ChangeCause.MODEL
            )


def recheck_stage_readers(
    session: Session, workspace_id: str, contacts: set[int], *, now: datetime
) -> None:
    """Contacts whose lifecycle stage changed outside event processing: re-check them in the
    segments that read stages (and those reading these)."""
    realtime.refresh_stage_readers(
        session, workspace_id, contacts, now=now, cause=ChangeCause.STAGE
    )


def recheck_consent_readers(
    session: Session, workspace_id: str, contacts: set[int], *, now: datetime
) -> None:
    """Contacts whose consent changed: re-check them in the segments that read consent (and
    those reading these)."""
    realtime.refresh_consent_readers(
        session, workspace_id, contacts, now=now, cause=ChangeCause.CONSENT
    )


def existing_segment_keys(session: Session, workspace_id: str) -> set[str]:
    """Keys of the existing segments, to check the segments a definition names."""
    return set(
        session.scalars(sa.select(SEGMENTS.c.key).where(SEGMENTS.c.workspace_id == workspace_id))
    )


def delete_segment(session: Session, workspace_id: str, key: str, *, now: datetime) -> None:
    """Delete a segment; refused while another segment reads it (listed in the error)."""
    lock_workspace(session, workspace_id, wait=True)
    segment = _get(session, workspace_id, key)
    users = sorted(
        other.key
        for other in membership.dynamic_segments(session, workspace_id)
        if key in reads(other.condition).segments
    )
    if users:
        raise Conflict(
            f"segment {key!r} is used by other segments: {', '.join(users)}",
            details=[{"kind": "segment", "key": user} for user in users],
        )
    session.delete(segment)
    session.flush()
    realtime.sync_filters(session, workspace_id, now)


def list_members(
    session: Session, workspace_id: str, key: str, *, limit: int, after: int | None
) -> MemberPage:
    segment = _get(session, workspace_id, key)
    statement = (
        sa.select(MEMBERS.c.contact_id.label("id"), MEMBERS.c.since)
        .where(MEMBERS.c.segment_id == segment.id)
        .order_by(MEMBERS.c.contact_id)
    )
    if after is not None:
        statement = statement.where(MEMBERS.c.contact_id > after)
    page, cursor = fetch_page(session, statement, limit=limit, rows=True)
    return MemberPage(
        items=[MemberOut(contact_id=row.id, since=row.since) for row in page],
        next_cursor=cursor,
    )


def list_changes(
    session: Session, workspace_id: str, key: str, *, limit: int, after: int | None
) -> ChangePage:
    """Entries and exits of a segment, oldest first."""
    segment = _get(session, workspace_id, key)
    statement = sa.select(CHANGES).where(CHANGES.c.segment_id == segment.id).order_by(CHANGES.c.id)
    if after is not None:
        statement = statement.where(CHANGES.c.id > after)
    page, cursor = fetch_page(session, statement, limit=limit, rows=True)
    return ChangePage(
        items=[
            ChangeOut(
                id=row.id,
                segment=key,
                contact_id=row.contact_id,
                entered=row.entered,
                cause=row.cause,
                at=row.at,
            )
            for row in page
        ],
        next_cursor=cursor,
    )


def change_members(
    session: Session,
    workspace_id: str,
    key: str,
    contact_ids: list[int],
    *,
    add: bool,
    now: datetime,
) -> int:
    """Add contacts to, or remove them from, a static list; return how many changed."""
    lock_workspace(session, workspace_id, wait=True)
    segment = static_list(session, workspace_id, key)
    wanted = sorted(set(contact_ids))
    live = contacts.live_contact_ids(session, workspace_id, wanted)
    missing = [contact for contact in wanted if contact not in live]
    if missing and add:
        raise InvalidInput(
            "some contacts do not exist (or were merged)",
            details=[
                {"loc": ["contact_ids"], "msg": f"no contact {c}", "type": "contact"}
                for c in missing
            ],
        )
    present = set(
        session.execute(
            sa.select(MEMBERS.c.contact_id).where(
                MEMBERS.c.segment_id == segment.id, MEMBERS.c.contact_id.in_(wanted)
            )
        ).scalars()
    )
    entered = [c for c in wanted if c not in present] if add else []
    exited = [c for c in wanted if c in present] if not add else []
    membership.apply_changes(
        session,
        workspace_id,
        [membership.MemberChanges(segment.id, entered, exited)],
        now=now,
        cause=ChangeCause.API,
    )
    realtime.refresh_readers(
        session, workspace_id, key, {*entered, *exited}, now=now, cause=ChangeCause.API
    )
    return len(entered) + len(exited)


def static_list(session: Session, workspace_id: str, key: str) -> Segment:
    """The static list `key`: NotFound if there is none, Conflict if the segment is dynamic."""
    segment = _get(session, workspace_id, key)
    if segment.kind != SegmentKind.STATIC.value:
        raise Conflict(f"segment {key!r} is dynamic: its condition decides its members")
    return segment


def _find(session: Session, workspace_id: str, key: str) -> Segment | None:
    return session.scalar(
        sa.select(Segment).where(Segment.workspace_id == workspace_id, Segment.key == key)
    )


def _get(session: Session, workspace_id: str, key: str) -> Segment:
    segment = _find(session, workspace_id, key)
    if segment is None:
        raise NotFound(f"no segment {key!r}")
    return segment


def _out(session: Session, segment: Segment, count: int | None = None) -> SegmentOut:
    if count is None:
        count = session.execute(
            sa.select(sa.func.count()).where(MEMBERS.c.segment_id == segment.id)
        ).scalar_one()
    return SegmentOut(
        key=segment.key,
        name=segment.name,
        description=segment.description,
        kind=SegmentKind(segment.kind),
        condition=segment.condition,
        member_count=count,
        created_at=segment.created_at,
        updated_at=segment.updated_at,
        computed_at=segment.computed_at,
    )
