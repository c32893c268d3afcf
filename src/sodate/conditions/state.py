"""Loading what the in-memory evaluator reads, for many contacts at once.

Real-time work evaluates conditions against the contacts a batch touched. Their state comes in
a few queries whatever their number: the contacts with their companies; only the events the
conditions name, only as far back as their windows reach; and segment memberships, scores and
lifecycle stages only when the conditions read them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sodate.conditions import terms
from sodate.conditions.memory import ContactState, EventFact, ScoreState
from sodate.conditions.reads import nodes, reads
from sodate.conditions.schemas import Condition, EventCondition
from sodate.conditions.sql import (
    COMPANIES,
    CONTACT_SCORES,
    CONTACT_STAGES,
    CONTACTS,
    MEMBERS,
    SCORING_MODELS,
    SEGMENTS,
)
from sodate.db.bulk import driver_values, fetch_in
from sodate.scoring.decay import SECONDS_A_DAY

_CHUNK = 500


@dataclass(frozen=True)
class EventReach:
    """How far back the conditions read events of one name, and whether their properties."""

    window: timedelta | None
    """None: all time."""
    properties: bool


def referenced_events(conditions: Iterable[Condition]) -> dict[str, EventReach]:
    """The event names the conditions read, each with how far back and what of them."""
    reach: dict[str, EventReach] = {}
    for condition in conditions:
        for _path, node in nodes(condition):
            if not isinstance(node, EventCondition):
                continue
            spec = node.event
            window = terms.parse_positive_duration(spec.within) if spec.within else None
            known = reach.get(spec.name)
            if known is not None:
                wider = known.window is None or window is None
                window = None if wider else max(known.window, window)  # type: ignore[type-var]
            reach[spec.name] = EventReach(
                window, bool(spec.where) or (known is not None and known.properties)
            )
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
    read = [reads(condition) for condition in conditions]
    keys = {key for found in read for key in found.segments}
    memberships = _load_memberships(session, workspace_id, contact_ids, keys)
    models = {key for found in read for key in found.scores}
    scores = _load_scores(session, workspace_id, contact_ids, models)
    stages = (
        _load_stages(session, workspace_id, contact_ids)
        if any(found.lifecycle for found in read)
        else {}
    )
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
                scores=scores.get(row.id, {}),
                stage=stages.get(row.id),
            )
    return states


def _load_events(
    session: Session,
    workspace_id: str,
    contact_ids: Sequence[int],
    reach: dict[str, EventReach],
    now: datetime,
) -> dict[int, list[EventFact]]:
    """The events the conditions read, through the driver: properties only of the names whose
    filters need them, and no further back than the widest window of each name."""
    found: dict[int, list[EventFact]] = defaultdict(list)
    if not reach:
        return found
    values = driver_values(session)
    wanted: list[str] = []
    params: list[Any] = [workspace_id]
    for name, seen in reach.items():
        if seen.window is None:
            wanted.append("name = ?")
            params.append(name)
        else:
            wanted.append("(name = ? AND timestamp >= ?)")
            params += [name, values.time(now - seen.window)]
    with_properties = [name for name, seen in reach.items() if seen.properties]
    properties = (
        f"CASE WHEN name IN ({', '.join('?' * len(with_properties))}) THEN properties END"
        if with_properties
        else "NULL"
    )
    rows = fetch_in(
        session,
        f"SELECT contact_id, name, {properties}, timestamp FROM events"  # noqa: S608 (placeholders only)
        f" WHERE workspace_id = ? AND ({' OR '.join(wanted)}) AND contact_id IN",
        sorted(contact_ids),
        (*with_properties, *params),
    )
    rows.sort(key=lambda row: row[3])
    for contact_id, name, document, timestamp in rows:
        found[contact_id].append(
            EventFact(
                name,
                values.stored_json(document) if document is not None else _NO_PROPERTIES,
                values.stored_time(timestamp),  # type: ignore[arg-type]
            )
        )
    return found


_NO_PROPERTIES: dict[str, Any] = {}


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


def _load_scores(
    session: Session, workspace_id: str, contact_ids: Sequence[int], models: set[str]
) -> dict[int, dict[str, ScoreState]]:
    found: dict[int, dict[str, ScoreState]] = defaultdict(dict)
    if not models:
        return found
    for chunk in _chunks(contact_ids):
        rows = session.execute(
            sa.select(
                CONTACT_SCORES.c.contact_id,
                SCORING_MODELS.c.key,
                CONTACT_SCORES.c.fit,
                CONTACT_SCORES.c.engagement_base,
                SCORING_MODELS.c.epoch,
                SCORING_MODELS.c.half_life_days,
            )
            .join(SCORING_MODELS, SCORING_MODELS.c.id == CONTACT_SCORES.c.model_id)
            .where(
                SCORING_MODELS.c.workspace_id == workspace_id,
                SCORING_MODELS.c.key.in_(sorted(models)),
                CONTACT_SCORES.c.contact_id.in_(chunk),
            )
        )
        for contact_id, key, fit, base, epoch, half_life_days in rows:
            half_life = half_life_days * SECONDS_A_DAY if half_life_days is not None else None
            found[contact_id][key] = ScoreState(fit, base, epoch, half_life)
    return found


def _load_stages(session: Session, workspace_id: str, contact_ids: Sequence[int]) -> dict[int, str]:
    found: dict[int, str] = {}
    for chunk in _chunks(contact_ids):
        rows = session.execute(
            sa.select(CONTACT_STAGES.c.contact_id, CONTACT_STAGES.c.stage).where(
                CONTACT_STAGES.c.workspace_id == workspace_id,
                CONTACT_STAGES.c.contact_id.in_(chunk),
            )
        )
        found.update((contact_id, stage) for contact_id, stage in rows)
    return found


def _chunks(ids: Sequence[int]) -> Iterable[Sequence[int]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]
