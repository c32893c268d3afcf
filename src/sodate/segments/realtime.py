"""Membership in real time: the segments step of the event pipeline, and merges.

After a batch's events, profiles and counts are written, each dynamic segment is re-checked
only for the contacts whose change it reads: contacts with events it counts, contacts whose
profile changed when it reads attributes, every contact when it reads first or last seen, and
new or merged contacts always. The check is one in-memory evaluation of all the segments over
state loaded for many contacts at once (`CONTACTS_AT_ONCE`), so segments sharing a comparison
pay for it once; a change of membership is passed on to the segments that read that segment.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sodate.conditions import filtered
from sodate.conditions.reads import Changes, Reads, reads
from sodate.conditions.state import CONTACTS_AT_ONCE, load_states
from sodate.contacts.resolution import PlannedMerge
from sodate.db.bulk import fetch_in
from sodate.events.pipeline import EventBatch
from sodate.segments import membership
from sodate.segments.membership import MEMBERS, LiveSegment, MemberChanges
from sodate.segments.models import ChangeCause
from sodate.workspaces.service import workspace_zone

_NONE: frozenset[int] = frozenset()


def keep_filtered_times(session: Session, batch: EventBatch) -> None:
    """Before the steps that read them: the latest times of the event filters the dynamic
    segments count (`sodate.conditions.filtered`), with the batch's events."""
    wanted = _wanted_filters(session, batch.workspace_id, batch.now)
    filtered.keep_filtered_times(session, batch.workspace_id, wanted, batch.events, batch.now)


def sync_filters(session: Session, workspace_id: str, now: datetime) -> None:
    """After the dynamic segments changed: keep the event filters they count now, filled from
    the stored events, and only those."""
    filtered.sync_filters(session, workspace_id, _wanted_filters(session, workspace_id, now), now)


def _wanted_filters(
    session: Session, workspace_id: str, now: datetime
) -> dict[str, filtered.WantedFilter]:
    """The event filters the workspace's dynamic segments count, by digest."""
    segments = membership.dynamic_segments(session, workspace_id)
    return filtered.wanted_filters((segment.condition for segment in segments), now)


def update_memberships(session: Session, batch: EventBatch) -> None:
    segments = membership.dynamic_segments(session, batch.workspace_id)
    if not segments:
        return
    refresh(
        session,
        batch.workspace_id,
        segments,
        _Changed(batch.changes(), segments),
        now=batch.now,
        cause=ChangeCause.EVENT,
    )


class Candidates(Protocol):
    """Which contacts each segment is to be checked for, asked part by part."""

    def everyone(self) -> set[int]:
        """The contacts some segment is to be checked for."""

    def among(self, part: AbstractSet[int]) -> Mapping[str, AbstractSet[int]]:
        """By segment key, its candidates among `part` (of `everyone`); the sets are read,
        never changed, and several segments may share one."""


class _Given:
    """Candidates given as sets, by segment key."""

    def __init__(self, candidates: Mapping[str, AbstractSet[int]]) -> None:
        self.candidates = candidates

    def everyone(self) -> set[int]:
        return set().union(*self.candidates.values())

    def among(self, part: AbstractSet[int]) -> Mapping[str, AbstractSet[int]]:
        # By a candidate set's id (each is alive until this returns): a shared one is cut once.
        cut: dict[int, AbstractSet[int]] = {}
        for contacts in self.candidates.values():
            if id(contacts) not in cut:
                cut[id(contacts)] = part & contacts
        return {key: cut[id(contacts)] for key, contacts in self.candidates.items()}


class _Changed:
    """Candidates of a batch's changes (`Changes.candidates`), made part by part: a batch's
    sets, one per kind of change the segments read, were each as large as its contacts (28
    of 1 MB for a batch of 40,000 new contacts), where a part's are a part's size."""

    def __init__(self, changes: Changes, segments: Sequence[LiveSegment]) -> None:
        self.changes = changes
        # Segments that read the same kinds of change share one set of candidates.
        self.groups: dict[tuple[bool, bool, bool, frozenset[str]], tuple[Reads, list[str]]] = {}
        for segment in segments:
            found = reads(segment.condition)
            self.groups.setdefault(found.kinds_of_change(), (found, []))[1].append(segment.key)

    def everyone(self) -> set[int]:
        return set().union(*(self.changes.candidates(found) for found, _ in self.groups.values()))

    def among(self, part: AbstractSet[int]) -> Mapping[str, AbstractSet[int]]:
        found_for: dict[str, AbstractSet[int]] = {}
        for found, keys in self.groups.values():
            contacts = self.changes.candidates(found, among=part)
            found_for.update(dict.fromkeys(keys, contacts))
        return found_for


def refresh(
    session: Session,
    workspace_id: str,
    segments: Sequence[LiveSegment],
    candidates: Candidates | Mapping[str, AbstractSet[int]],
    *,
    now: datetime,
    cause: ChangeCause,
) -> None:
    """Re-check each segment (in dependency order) for its candidate contacts.

    A contact's memberships depend on its own state alone, so the contacts are checked
    `CONTACTS_AT_ONCE` at a time: what is loaded for them (3–4 KB a contact) stays the same
    whatever the batch.
    """
    source = _Given(candidates) if isinstance(candidates, Mapping) else candidates
    everyone = sorted(source.everyone())
    if not everyone:
        return
    zone = workspace_zone(session, workspace_id)
    for start in range(0, len(everyone), CONTACTS_AT_ONCE):
        part = everyone[start : start + CONTACTS_AT_ONCE]
        asked = source.among(set(part))
        _refresh_contacts(session, workspace_id, segments, asked, part, now, zone, cause)


def _refresh_contacts(
    session: Session,
    workspace_id: str,
    segments: Sequence[LiveSegment],
    candidates: Mapping[str, AbstractSet[int]],
    everyone: list[int],
    now: datetime,
    zone: ZoneInfo,
    cause: ChangeCause,
) -> None:
    # A segment reading another is asked about the contacts that may move in that one too.
    asked: dict[str, AbstractSet[int]] = {}
    for segment in segments:
        own = candidates.get(segment.key, _NONE)
        read = reads(segment.condition).segments
        asked[segment.key] = _joined(own, (asked.get(key, _NONE) for key in read)) if read else own
    loaded = load_states(
        session,
        workspace_id,
        everyone,
        conditions=[s.condition for s in segments],
        now=now,
        zone=zone,
        asked=[asked[s.key] for s in segments],
    )
    states = loaded.states
    current = _members(session, [segment.id for segment in segments], everyone)
    keys_of = {contact: set(state.segments) for contact, state in states.items()}
    evaluation = loaded.evaluation(now=now, zone=zone)
    live = set(states)
    # By a candidate set's id (each is alive until this returns): a shared one is cut once.
    live_among: dict[int, set[int]] = {}
    changed: dict[str, set[int]] = {}
    changes: list[MemberChanges] = []
    for segment in segments:
        own = candidates.get(segment.key, _NONE)
        read = reads(segment.condition).segments
        if read:
            contacts = live & _joined(own, (changed.get(key, _NONE) for key in read))
        else:
            found = live_among.get(id(own))
            contacts = live_among[id(own)] = found if found is not None else live & own
        if not contacts:
            continue
        matching = evaluation.matching(segment.condition, contacts, segments=keys_of)
        was = current[segment.id] & contacts
        entered, exited = sorted(matching - was), sorted(was - matching)
        if not entered and not exited:
            continue
        changes.append(MemberChanges(segment.id, entered, exited))
        changed[segment.key] = {*entered, *exited}
        for contact in entered:
            keys_of[contact].add(segment.key)
        for contact in exited:
            if contact in keys_of:
                keys_of[contact].discard(segment.key)
    membership.apply_changes(session, workspace_id, changes, now=now, cause=cause)


def _joined(own: AbstractSet[int], more: Iterable[AbstractSet[int]]) -> set[int]:
    joined = set(own)
    for part in more:
        joined |= part
    return joined


def refresh_readers(
    session: Session,
    workspace_id: str,
    key: str,
    contacts: set[int],
    *,
    now: datetime,
    cause: ChangeCause,
) -> None:
    """Pass a change of a segment's members (a static list's) on to the segments that read it,
    with the change's own cause."""
    _refresh_readers(
        session, workspace_id, contacts, lambda found: key in found.segments, now, cause
    )


def update_stage_readers(session: Session, batch: EventBatch) -> None:
    """After the lifecycle step: the segments that read stages, for the contacts it moved."""
    refresh_stage_readers(
        session, batch.workspace_id, batch.changed_stages, now=batch.now, cause=ChangeCause.EVENT
    )


def refresh_stage_readers(
    session: Session, workspace_id: str, contacts: set[int], *, now: datetime, cause: ChangeCause
) -> None:
    _refresh_readers(session, workspace_id, contacts, lambda found: found.lifecycle, now, cause)


def refresh_consent_readers(
    session: Session, workspace_id: str, contacts: set[int], *, now: datetime, cause: ChangeCause
) -> None:
    _refresh_readers(session, workspace_id, contacts, lambda found: found.consent, now, cause)


def _refresh_readers(
    session: Session,
    workspace_id: str,
    contacts: set[int],
    reads_it: Callable[[Reads], bool],
    now: datetime,
    cause: ChangeCause,
) -> None:
    """Re-check `contacts` in the dynamic segments whose condition `reads_it`."""
    if not contacts:
        return
    segments = membership.dynamic_segments(session, workspace_id)
    readers = [segment for segment in segments if reads_it(reads(segment.condition))]
    if readers:
        refresh(
            session,
            workspace_id,
            segments,
            {s.key: contacts for s in readers},
            now=now,
            cause=cause,
        )


def _members(session: Session, segment_ids: list[int], contacts: list[int]) -> dict[int, set[int]]:
    """The contacts' memberships of the segments (the workspace's own): read by contact from
    the index of contact and segment alone, which is cheaper than a probe for every segment
    and contact pair, and one row per contact with its segments, since a row costs more to
    read than its values. The `+` keeps SQLite from making such pairs of the two lists."""
    found: dict[int, set[int]] = {segment_id: set() for segment_id in segment_ids}
    if not segment_ids:
        return found
    postgresql = session.get_bind().dialect.name == "postgresql"
    together = "array_agg" if postgresql else "group_concat"
    statement = (
        f"SELECT contact_id, {together}(segment_id) FROM segment_members"  # noqa: S608 (placeholders only)
        f" WHERE +segment_id IN ({', '.join('?' * len(segment_ids))}) AND contact_id IN"
    )
    rows = fetch_in(session, statement, contacts, tuple(segment_ids), then=" GROUP BY contact_id")
    for contact, held in rows:
        for segment_id in held if postgresql else map(int, held.split(",")):
            found[segment_id].add(contact)
    return found


def move_memberships(
    session: Session, workspace_id: str, merges: Sequence[PlannedMerge], now: datetime
) -> None:
    """A merged contact leaves every segment; its static lists pass to the survivor, and the
    survivor's dynamic segments are checked again."""
    static = membership.static_segment_ids(session, workspace_id)
    for merge in merges:
        rows = session.execute(
            sa.select(MEMBERS.c.segment_id, MEMBERS.c.contact_id).where(
                MEMBERS.c.contact_id.in_((merge.merged, merge.survivor))
            )
        ).all()
        held = {(segment, contact) for segment, contact in rows}
        # Each merge is applied before the next is read: a chain of merges in one batch
        # passes static lists along.
        changes: list[MemberChanges] = []
        for segment_id, contact in held:
            if contact != merge.merged:
                continue
            changes.append(MemberChanges(segment_id, [], [merge.merged]))
            if segment_id in static and (segment_id, merge.survivor) not in held:
                changes.append(MemberChanges(segment_id, [merge.survivor], []))
        membership.apply_changes(session, workspace_id, changes, now=now, cause=ChangeCause.MERGE)
    segments = membership.dynamic_segments(session, workspace_id)
    survivors = {merge.survivor for merge in merges}
    refresh(
        session,
        workspace_id,
        segments,
        {s.key: survivors for s in segments},
        now=now,
        cause=ChangeCause.MERGE,
    )
