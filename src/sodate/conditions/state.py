"""Loading what the in-memory evaluator reads, for many contacts at once.

Real-time work evaluates conditions against the contacts a batch touched. Their state comes in
two queries whatever their number: the contacts with their companies, and only the events the
conditions name, only as far back as their windows reach.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sodate.conditions import terms
from sodate.conditions.memory import ContactState, EventFact
from sodate.conditions.reads import reads
from sodate.conditions.schemas import (
    AllCondition,
    AnyCondition,
    Condition,
    EventCondition,
    NotCondition,
)
from sodate.conditions.sql import COMPANIES, CONTACTS, EVENTS, MEMBERS, SEGMENTS

_CHUNK = 500


def referenced_events(conditions: Iterable[Condition]) -> dict[str, timedelta | None]:
    """The event names the conditions read, each with how far back (None: all time)."""
    reach: dict[str, timedelta | None] = {}
    stack = list(conditions)
    while stack:
        condition = stack.pop()
        if isinstance(condition, AllCondition):
            stack.extend(condition.all)
        elif isinstance(condition, AnyCondition):
            stack.extend(condition.any)
        elif isinstance(condition, NotCondition):
            stack.append(condition.not_)
        elif isinstance(condition, EventCondition):
            spec = condition.event
            window = terms.parse_positive_duration(spec.within) if spec.within else None
            if spec.name not in reach:
                reach[spec.name] = window
            else:
                known = reach[spec.name]
                reach[spec.name] = None if known is None or window is None else max(known, window)
    return reach


def load_states(
    session: Session,
    workspace_id: str,
    contact_ids: Sequence[int],
    *,
    conditions: Sequence[Condition],
    now: datetime,
) -> dict[int, ContactState]:
    """The state of each live contact among `contact_ids`, with the events `conditions` read."""
    events = _load_events(session, workspace_id, contact_ids, referenced_events(conditions), now)
    keys = {key for condition in conditions for key in reads(condition).segments}
    memberships = _load_memberships(session, workspace_id, contact_ids, keys)
    states: dict[int, ContactState] = {}
    for chunk in _chunks(contact_ids):
        rows = session.execute(
            sa.select(
                CONTACTS.c.id,
                CONTACTS.c.created_at,
                CONTACTS.c.traits,
                CONTACTS.c.email,
                CONTACTS.c.phone,
                CONTACTS.c.user_id,
                CONTACTS.c.first_seen_at,
                CONTACTS.c.last_seen_at,
                COMPANIES.c.id.label("company_id"),
                COMPANIES.c.name.label("company_name"),
                COMPANIES.c.traits.label("company_traits"),
            )
            .select_from(CONTACTS.outerjoin(COMPANIES, COMPANIES.c.id == CONTACTS.c.company_id))
            .where(
                CONTACTS.c.workspace_id == workspace_id,
                CONTACTS.c.merged_into_id.is_(None),
                CONTACTS.c.id.in_(chunk),
            )
        )
        for row in rows:
            states[row.id] = ContactState(
                created_at=row.created_at,
                traits=row.traits,
                email=row.email,
                phone=row.phone,
                user_id=row.user_id,
                first_seen_at=row.first_seen_at,
                last_seen_at=row.last_seen_at,
                company_name=row.company_name,
                company_traits=row.company_traits if row.company_id is not None else None,
                events=events.get(row.id, ()),
                segments=frozenset(memberships.get(row.id, ())),
            )
    return states


def _load_events(
    session: Session,
    workspace_id: str,
    contact_ids: Sequence[int],
    reach: dict[str, timedelta | None],
    now: datetime,
) -> dict[int, list[EventFact]]:
    found: dict[int, list[EventFact]] = defaultdict(list)
    if not reach:
        return found
    windows = [
        sa.and_(
            EVENTS.c.name == name,
            sa.true() if window is None else EVENTS.c.timestamp >= now - window,
        )
        for name, window in reach.items()
    ]
    for chunk in _chunks(contact_ids):
        rows = session.execute(
            sa.select(EVENTS.c.contact_id, EVENTS.c.name, EVENTS.c.properties, EVENTS.c.timestamp)
            .where(
                EVENTS.c.workspace_id == workspace_id,
                EVENTS.c.contact_id.in_(chunk),
                sa.or_(*windows),
            )
            .order_by(EVENTS.c.id)
        )
        for row in rows:
            found[row.contact_id].append(EventFact(row.name, row.properties, row.timestamp))
    return found


def _load_memberships(
    session: Session, workspace_id: str, contact_ids: Sequence[int], keys: set[str]
) -> dict[int, set[str]]:
    found: dict[int, set[str]] = defaultdict(set)
    if not keys:
        return found
    for chunk in _chunks(contact_ids):
        rows = session.execute(
            sa.select(MEMBERS.c.contact_id, SEGMENTS.c.key)
            .join(SEGMENTS, SEGMENTS.c.id == MEMBERS.c.segment_id)
            .where(
                SEGMENTS.c.workspace_id == workspace_id,
                SEGMENTS.c.key.in_(sorted(keys)),
                MEMBERS.c.contact_id.in_(chunk),
            )
        )
        for contact_id, key in rows:
            found[contact_id].add(key)
    return found


def _chunks(ids: Sequence[int]) -> Iterable[Sequence[int]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]
