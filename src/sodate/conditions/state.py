"""Loading what the in-memory evaluator reads, for many contacts at once.

Real-time work evaluates conditions against the contacts a batch touched. Their state comes in
a few queries whatever their number: the contacts with their companies; for each event the
conditions count, how many each contact has, read from its latest times of that event (or of
that event's kept filter, `sodate.conditions.filtered`) when its comparisons need no more than
the times kept, else counted by the database over the contacts' own events; and segment
memberships, scores, lifecycle stages and consents only when the conditions read them. Events whose
filters read the contact's local date are loaded instead, and counted in memory where each
contact's time zone is at hand.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sodate.conditions import filtered, terms
from sodate.conditions import kept as filters_kept
from sodate.conditions.memory import ContactState, Evaluation, EventFact, ScoreState, event_key
from sodate.conditions.reads import nodes, reads, reads_zone
from sodate.conditions.schemas import Condition, EventCondition, EventSpec
from sodate.conditions.sql import (
    CONTACT_CONSENTS,
    CONTACT_SCORES,
    CONTACT_STAGES,
    EVENTS,
    MEMBERS,
    SCORING_MODELS,
    SEGMENTS,
    property_filters,
)
from sodate.db.bulk import driver_values, fetch_in
from sodate.db.plans import workspace_check
from sodate.events import latest
from sodate.events.models import LATEST_KEPT
from sodate.scoring.decay import SECONDS_A_DAY

_CHUNK = 500
CONTACTS_AT_ONCE = 5_000
"""How many contacts' states real-time work loads at once (3–4 KB a contact): a batch's
contacts are checked in parts this large, so that what is loaded for them stays the same
whatever the batch's size."""
Kept = TypeVar("Kept", str, int)
"""What a table of latest times is keyed by: an event name, or a kept filter's id."""


@dataclass
class _Counted:
    """One distinct event count the conditions read (a count threshold aside)."""

    spec: EventSpec
    ceiling: int
    """The most events any of their comparisons needs counted (`EventCount.ceiling`)."""
    contacts: set[int]
    """The contacts the conditions reading it are asked about."""


def _counted_events(
    conditions: Sequence[Condition], asked: Sequence[Collection[int]]
) -> dict[str, _Counted]:
    """The distinct event counts the conditions read, by `event_key`."""
    specs: dict[str, _Counted] = {}
    # Conditions are often asked about one shared collection (the segments reading the same
    # changes): each is added to a spec once, by its id, not once per condition.
    added: set[tuple[str, int]] = set()
    for condition, contacts in zip(conditions, asked, strict=True):
        for _path, node in nodes(condition):
            if isinstance(node, EventCondition):
                key, ceiling = event_key(node.event), node.event.count.ceiling
                known = specs.setdefault(key, _Counted(node.event, ceiling, set()))
                known.ceiling = max(known.ceiling, ceiling)
                if (key, id(contacts)) not in added:
                    added.add((key, id(contacts)))
                    known.contacts.update(contacts)
    return specs


@dataclass
class LoadedStates:
    """The state of each live contact, and the counts of events made for them."""

    states: dict[int, ContactState]
    counted: dict[str, dict[int, int]]
    """By `event_key`, then contact: the contacts asked about only. A count may stop at the
    most any of the conditions loaded for compares (`EventCount.ceiling`), so these counts
    answer those conditions, about those contacts, only."""

    def evaluation(self, *, now: datetime, zone: ZoneInfo) -> Evaluation:
        return Evaluation(self.states, now=now, zone=zone, counted=self.counted)


def load_states(
    session: Session,
    workspace_id: str,
    contact_ids: Sequence[int],
    *,
    conditions: Sequence[Condition],
    now: datetime,
    zone: ZoneInfo,
    asked: Sequence[Collection[int]] | None = None,
) -> LoadedStates:
    """The state of each live contact among `contact_ids`, with the events `conditions` read;
    `zone` is the workspace's. `asked` holds, for each condition, the contacts it will be
    asked about (all of them when None): its events are counted for those only."""
    contacts = _load_contacts(session, workspace_id, contact_ids)
    live = sorted(contacts)
    specs = _counted_events(conditions, [live] * len(conditions) if asked is None else asked)
    local: list[EventSpec] = []
    kept: dict[tuple[int, ...], dict[str, tuple[EventSpec, int, str]]] = defaultdict(dict)
    kept_filtered: dict[tuple[int, ...], dict[str, tuple[EventSpec, int, int]]] = defaultdict(dict)
    counted: dict[tuple[int, ...], dict[str, EventSpec]] = defaultdict(dict)
    tracked = (
        filters_kept.tracked_filters(session, workspace_id)
        if any(filters_kept.keeps(item.spec, item.ceiling) for item in specs.values())
        else {}
    )
    for key, item in specs.items():
        among, spec = tuple(sorted(item.contacts & contacts.keys())), item.spec
        found = filters_kept.answering(tracked, spec, item.ceiling, now) if tracked else None
        if any(map(reads_zone, spec.where)):
            local.append(spec)
        elif not spec.where and item.ceiling <= LATEST_KEPT:
            kept[among][key] = (spec, item.ceiling, spec.name)
        elif found is not None:
            kept_filtered[among][key] = (spec, item.ceiling, found.id)
        else:
            counted[among][key] = spec
    counts: dict[str, dict[int, int]] = {}
    for among, by_key in counted.items():
        counts.update(_count_events(session, workspace_id, among, by_key, now, zone))
    for among, of_names in kept.items():
        names = {name for *_, name in of_names.values()}
        by_name = latest.latest_rows(session, workspace_id, names, among)
        counts.update(_count_latest(session, workspace_id, among, of_names, by_name, now, zone))
    for among, of_filters in kept_filtered.items():
        ids = sorted({filter_id for *_, filter_id in of_filters.values()})
        by_filter = filtered.kept_rows(session, ids, among)
        counts.update(_count_latest(session, workspace_id, among, of_filters, by_filter, now, zone))
    events = _load_events(session, workspace_id, live, local, now)
    read = [reads(condition) for condition in conditions]
    keys = {key for found in read for key in found.segments}
    memberships = _load_memberships(session, workspace_id, live, keys)
    models = {key for found in read for key in found.scores}
    scores = _load_scores(session, workspace_id, live, models)
    lifecycle = any(found.lifecycle for found in read)
    stages = _load_stages(session, workspace_id, live) if lifecycle else {}
    consent = any(found.consent for found in read)
    consents = _load_consents(session, workspace_id, live) if consent else {}
    states = {
        contact: ContactState(
            **fields,
            events=events.get(contact, ()),
            segments=frozenset(memberships.get(contact, ())),
            scores=scores.get(contact, {}),
            stage=stages.get(contact),
            consents=consents.get(contact, _NO_CONSENTS),
        )
        for contact, fields in contacts.items()
    }
    return LoadedStates(states, counts)


def _load_contacts(
    session: Session, workspace_id: str, contact_ids: Sequence[int]
) -> dict[int, dict[str, Any]]:
    """The contacts' own fields and their companies', by live contact."""
    values = driver_values(session)
    # `|| ''`: see `sodate.db.plans`.
    rows = fetch_in(
        session,
        "SELECT c.id, c.created_at, c.traits, c.email, c.phone, c.user_id, c.first_seen_at,"
        " c.last_seen_at, o.id, o.name, o.traits"
        " FROM contacts c LEFT JOIN companies o ON o.id = c.company_id"
        " WHERE c.workspace_id || '' = ? AND c.merged_into_id IS NULL AND c.id IN",
        sorted(contact_ids),
        (workspace_id,),
    )
    time, document = values.stored_time, values.stored_json
    return {
        contact: {
            "created_at": time(created_at),
            "traits": document(traits),
            "email": email,
            "phone": phone,
            "user_id": user_id,
            "first_seen_at": time(first_seen_at),
            "last_seen_at": time(last_seen_at),
            "company_name": company_name,
            "company_traits": document(company_traits) if company is not None else None,
        }
        for (
            contact,
            created_at,
            traits,
            email,
            phone,
            user_id,
            first_seen_at,
            last_seen_at,
            company,
            company_name,
            company_traits,
        ) in rows
    }


def _count_events(
    session: Session,
    workspace_id: str,
    contact_ids: Sequence[int],
    specs: dict[str, EventSpec],
    now: datetime,
    zone: ZoneInfo,
) -> dict[str, dict[int, int]]:
    """For each spec, how many of its events each contact has; one pass over the contacts'
    events for all the specs, as far back as the widest window of each name."""
    counts = {key: dict.fromkeys(contact_ids, 0) for key in specs}
    if not specs or not contact_ids:
        return counts
    dialect = session.get_bind().dialect.name
    sums = []
    for spec in specs.values():
        matches = [EVENTS.c.name == spec.name, *_window(spec, now)]
        matches += property_filters(
            spec.where,
            EVENTS.c.properties,
            dialect=dialect,
            workspace_id=workspace_id,
            now=now,
            zone=zone,
        )
        sums.append(sa.func.sum(sa.case((sa.and_(*matches), 1), else_=0)))
    statement = (
        sa.select(EVENTS.c.contact_id, *sums)
        .where(
            workspace_check(EVENTS.c.workspace_id, workspace_id),
            EVENTS.c.contact_id.in_(sa.bindparam("contacts", expanding=True)),
            _reach(specs.values(), now),
        )
        .group_by(EVENTS.c.contact_id)
    )
    keys = list(specs)
    for chunk in _chunks(contact_ids):
        for contact, *found in session.execute(statement, {"contacts": list(chunk)}):
            for key, count in zip(keys, found, strict=True):
                if count:
                    counts[key][contact] = int(count)
    return counts


def _count_latest(
    session: Session,
    workspace_id: str,
    contact_ids: Sequence[int],
    specs: dict[str, tuple[EventSpec, int, Kept]],
    rows: Iterable[tuple[Kept, int, tuple[Any, ...]]],
    now: datetime,
    zone: ZoneInfo,
) -> dict[str, dict[int, int]]:
    """Counts of specs whose comparisons need no more events counted than the latest times
    kept, from the `rows` of the contacts' kept times (of a name for specs without filters,
    of a kept filter for the others, as the specs give with their ceilings): how many of a
    contact's first `ceiling` latest times are in the window.

    One row per contact and name (or filter), where counting the events reads them all. A
    windowed count of a contact with a time after now is counted on its events, since the
    window's own events may lie beyond the times kept.
    """
    counts = {key: dict.fromkeys(contact_ids, 0) for key in specs}
    if not specs or not contact_ids:
        return counts
    stored = latest.stored_time(session)
    present = stored(now)
    by_kept: dict[Kept, list[tuple[str, Any, int]]] = defaultdict(list)
    for key, (spec, ceiling, owner) in specs.items():
        since = stored(now - terms.parse_positive_duration(spec.within)) if spec.within else None
        by_kept[owner].append((key, since, ceiling))
    recount: dict[str, set[int]] = defaultdict(set)
    for owner, contact, times in rows:
        for key, since, ceiling in by_kept[owner]:
            if since is not None and times[0] is not None and times[0] > present:
                recount[key].add(contact)
                continue
            counts[key][contact] = sum(
                1
                for moment in times[:ceiling]
                if moment is not None and (since is None or moment >= since)
            )
    if recount:
        found = _count_events(
            session,
            workspace_id,
            sorted(set().union(*recount.values())),
            {key: specs[key][0] for key in recount},
            now,
            zone,
        )
        for key, contacts in recount.items():
            counts[key].update(
                (contact, made) for contact, made in found[key].items() if contact in contacts
            )
    return counts


def _window(spec: EventSpec, now: datetime) -> list[sa.ColumnElement[bool]]:
    if not spec.within:
        return []
    since = now - terms.parse_positive_duration(spec.within)
    return [EVENTS.c.timestamp >= since, EVENTS.c.timestamp <= now]


def _reach(specs: Iterable[EventSpec], now: datetime) -> sa.ColumnElement[bool]:
    """The events any spec may count: by name, as far back as its widest window."""
    windows: dict[str, timedelta | None] = {}
    for spec in specs:
        window = terms.parse_positive_duration(spec.within) if spec.within else None
        if spec.name in windows:
            known = windows[spec.name]
            window = None if known is None or window is None else max(known, window)
        windows[spec.name] = window
    return sa.or_(
        *(
            EVENTS.c.name == name
            if window is None
            else sa.and_(EVENTS.c.name == name, EVENTS.c.timestamp >= now - window)
            for name, window in windows.items()
        )
    )


def _load_events(
    session: Session,
    workspace_id: str,
    contact_ids: Sequence[int],
    specs: Iterable[EventSpec],
    now: datetime,
) -> dict[int, list[EventFact]]:
    """The events of the specs counted in memory, oldest first, with their properties."""
    found: dict[int, list[EventFact]] = defaultdict(list)
    specs = list(specs)
    if not specs or not contact_ids:
        return found
    statement = sa.select(
        EVENTS.c.contact_id, EVENTS.c.name, EVENTS.c.properties, EVENTS.c.timestamp
    ).where(
        workspace_check(EVENTS.c.workspace_id, workspace_id),
        EVENTS.c.contact_id.in_(sa.bindparam("contacts", expanding=True)),
        _reach(specs, now),
    )
    rows: list[Any] = []
    for chunk in _chunks(contact_ids):
        rows += session.execute(statement, {"contacts": list(chunk)}).all()
    rows.sort(key=lambda row: row[3])
    for contact_id, name, document, timestamp in rows:
        found[contact_id].append(EventFact(name, document, timestamp))
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


_NO_CONSENTS: frozenset[tuple[str, str]] = frozenset()


def _load_consents(
    session: Session, workspace_id: str, contact_ids: Sequence[int]
) -> dict[int, frozenset[tuple[str, str]]]:
    """The (channel, purpose) pairs each contact has given consent to and not withdrawn."""
    found: dict[int, set[tuple[str, str]]] = defaultdict(set)
    for chunk in _chunks(contact_ids):
        rows = session.execute(
            sa.select(
                CONTACT_CONSENTS.c.contact_id,
                CONTACT_CONSENTS.c.channel,
                CONTACT_CONSENTS.c.purpose,
            ).where(
                workspace_check(CONTACT_CONSENTS.c.workspace_id, workspace_id),
                CONTACT_CONSENTS.c.contact_id.in_(chunk),
                CONTACT_CONSENTS.c.granted,
            )
        )
        for contact_id, channel, purpose in rows:
            found[contact_id].add((channel, purpose))
    return {contact: frozenset(pairs) for contact, pairs in found.items()}


def _chunks(ids: Sequence[int]) -> Iterable[Sequence[int]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]
