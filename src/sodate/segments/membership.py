"""Keeping segment membership exact: whole recomputation, and entries and exits recorded.

Membership is a table (`segment_members`); every change to it is also a row of
`segment_changes`, which journeys trigger on and analytics count. A whole recomputation is two
set-based statements (insert those who now match and were not members, delete members who no
longer match), each returning the contacts it touched. Segments built on segments are
recomputed after the segments they read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sodate.conditions.kept import tracked_filters
from sodate.conditions.reads import reads
from sodate.conditions.schemas import Condition, parse_condition
from sodate.conditions.sql import matching_contacts
from sodate.db.bulk import driver_values, execute_many, insert_rows
from sodate.segments.models import ChangeCause, Segment, SegmentChange, SegmentKind, SegmentMember

SEGMENTS: sa.Table = Segment.__table__  # type: ignore[assignment]
MEMBERS: sa.Table = SegmentMember.__table__  # type: ignore[assignment]
CHANGES: sa.Table = SegmentChange.__table__  # type: ignore[assignment]
MATCHING = sa.Table(
    "segment_matching", sa.MetaData(), sa.Column("id", sa.BigInteger, primary_key=True)
)
"""A temporary table, one per database connection (never part of the schema)."""


@dataclass(frozen=True)
class LiveSegment:
    """A dynamic segment with its parsed condition and what that condition reads."""

    id: int
    key: str
    condition: Condition


def dynamic_segments(session: Session, workspace_id: str) -> list[LiveSegment]:
    """The workspace's dynamic segments, each after every segment it reads."""
    rows = session.execute(
        sa.select(SEGMENTS.c.id, SEGMENTS.c.key, SEGMENTS.c.condition).where(
            SEGMENTS.c.workspace_id == workspace_id,
            SEGMENTS.c.kind == SegmentKind.DYNAMIC.value,
        )
    ).all()
    segments = {
        key: LiveSegment(id, key, parse_condition(condition)) for id, key, condition in rows
    }
    return topological(segments)


def topological(segments: dict[str, LiveSegment]) -> list[LiveSegment]:
    ordered: list[LiveSegment] = []
    done: set[str] = set()

    def visit(key: str, path: tuple[str, ...]) -> None:
        if key in done or key not in segments:
            return
        if key in path:
            raise ValueError(f"segments read each other in a cycle: {' → '.join((*path, key))}")
        for dependency in sorted(reads(segments[key].condition).segments):
            visit(dependency, (*path, key))
        done.add(key)
        ordered.append(segments[key])

    for key in sorted(segments):
        visit(key, ())
    return ordered


def clock_dependent(segments: Sequence[LiveSegment]) -> list[LiveSegment]:
    """The segments whose members can change with time alone, directly or through another."""
    moving: set[str] = set()
    for segment in segments:  # in dependency order, so what a segment reads is decided first
        found = reads(segment.condition)
        if found.clock or found.segments & moving:
            moving.add(segment.key)
    return [segment for segment in segments if segment.key in moving]


def recompute(
    session: Session,
    workspace_id: str,
    segment: LiveSegment,
    *,
    now: datetime,
    zone: ZoneInfo,
    cause: ChangeCause,
) -> tuple[int, int]:
    """Make the segment's members exactly the contacts that match now; return (entered, exited).

    The matching contacts are computed once, into a temporary table that the entries and the
    exits both read: evaluating the condition is the costly part. Each move is an
    `INSERT … SELECT` of its change rows; the entries' rows return their contacts, which become
    members, and the exits' members are deleted."""
    matching = matching_contacts(
        segment.condition,
        dialect=session.get_bind().dialect.name,
        workspace_id=workspace_id,
        now=now,
        zone=zone,
        kept=tracked_filters(session, workspace_id),
    )
    session.execute(
        sa.text(f"CREATE TEMPORARY TABLE IF NOT EXISTS {MATCHING.name} (id BIGINT PRIMARY KEY)")
    )
    session.execute(sa.delete(MATCHING))
    session.execute(sa.insert(MATCHING).from_select(["id"], matching))

    def change(entered: bool) -> list[Any]:
        return [
            sa.literal(workspace_id),
            sa.literal(segment.id),
            sa.literal(entered, CHANGES.c.entered.type),
            sa.literal(cause.value),
            sa.literal(now, CHANGES.c.at.type),
        ]

    columns = ["workspace_id", "segment_id", "entered", "cause", "at", "contact_id"]
    new = MATCHING.c.id.not_in(
        sa.select(MEMBERS.c.contact_id).where(MEMBERS.c.segment_id == segment.id)
    )
    # The entries from RETURNING (a driver's rowcount for INSERT … SELECT is not to be relied
    # on), so that the new members are not looked for a second time.
    entering = session.execute(
        sa.insert(CHANGES)
        .from_select(columns, sa.select(*change(True), MATCHING.c.id).where(new))
        .returning(CHANGES.c.contact_id)
    ).scalars()
    since = driver_values(session).time(now)
    members = [(segment.id, contact_id, workspace_id, since) for contact_id in entering]
    insert_rows(
        session, "segment_members", ("segment_id", "contact_id", "workspace_id", "since"), members
    )
    entered = len(members)
    gone = sa.and_(
        MEMBERS.c.segment_id == segment.id, MEMBERS.c.contact_id.not_in(sa.select(MATCHING.c.id))
    )
    exited = len(
        session.execute(
            sa.insert(CHANGES)
            .from_select(columns, sa.select(*change(False), MEMBERS.c.contact_id).where(gone))
            .returning(CHANGES.c.contact_id)
        ).all()
    )
    if exited:
        session.execute(sa.delete(MEMBERS).where(gone))
    session.execute(sa.delete(MATCHING))
    session.execute(sa.update(SEGMENTS).where(SEGMENTS.c.id == segment.id).values(computed_at=now))
    return entered, exited


class MemberChanges(NamedTuple):
    """Contacts that enter and leave one segment."""

    segment_id: int
    entered: Sequence[int]
    exited: Sequence[int]


def apply_changes(
    session: Session,
    workspace_id: str,
    changes: Sequence[MemberChanges],
    *,
    now: datetime,
    cause: ChangeCause,
) -> None:
    """Add and remove members already known to be new and present, and record it: one
    statement of each kind for all the segments (the inserts a COPY on PostgreSQL)."""
    values = driver_values(session)
    stamp = values.time(now)
    entry, exit_ = values.truth(True), values.truth(False)
    insert_rows(
        session,
        "segment_members",
        ("segment_id", "contact_id", "workspace_id", "since"),
        [(c.segment_id, contact, workspace_id, stamp) for c in changes for contact in c.entered],
    )
    execute_many(
        session,
        "DELETE FROM segment_members WHERE segment_id = ? AND contact_id = ?",
        [(c.segment_id, contact) for c in changes for contact in c.exited],
    )
    insert_rows(
        session,
        "segment_changes",
        ("workspace_id", "segment_id", "contact_id", "entered", "cause", "at"),
        [
            (workspace_id, c.segment_id, contact, truth, cause.value, stamp)
            for c in changes
            for contacts, truth in ((c.entered, entry), (c.exited, exit_))
            for contact in contacts
        ],
    )


def static_segment_ids(session: Session, workspace_id: str) -> set[int]:
    return set(
        session.execute(
            sa.select(SEGMENTS.c.id).where(
                SEGMENTS.c.workspace_id == workspace_id,
                SEGMENTS.c.kind == SegmentKind.STATIC.value,
            )
        ).scalars()
    )


def sweep(session: Session, workspace_id: str, *, now: datetime, zone: ZoneInfo) -> int:
    """Recompute the segments that time alone can change; return how many contacts moved."""
    moved = 0
    for segment in clock_dependent(dynamic_segments(session, workspace_id)):
        entered, exited = recompute(
            session, workspace_id, segment, now=now, zone=zone, cause=ChangeCause.TIME
        )
        moved += entered + exited
    return moved


def workspaces_with_clock_segments(session: Session) -> list[str]:
    """Workspaces where time alone can move members: some segment's own condition reads the
    clock (segments that read it follow in `sweep`)."""
    return list(
        session.execute(
            sa.select(SEGMENTS.c.workspace_id).where(SEGMENTS.c.time_dependent).distinct()
        ).scalars()
    )
