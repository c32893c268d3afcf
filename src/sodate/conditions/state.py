"""Loading what the in-memory evaluator reads, for many contacts at once.

Real-time work evaluates conditions against the contacts a batch touched. Their state comes in
a few queries whatever their number: the contacts with their companies; for each event the
conditions count, how many each contact has, read from its latest times of that event (or of
that event's kept filter, `sodate.conditions.filtered`) when its comparisons need no more than
the times kept, else counted by the database over the contacts' own events; and segment
memberships, scores, lifecycle stages and consents only when the conditions read them. Events whose
filters read the contact's local date are loaded instead, and counted in memory where each
contact's time zone is at hand.

The counts and the events counted in memory are loaded by `sodate.conditions.event_counts`,
the contacts' fields and the rest by `sodate.conditions.loaders`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from sodate.conditions import filtered
from sodate.conditions import kept as filters_kept
from sodate.conditions.event_counts import count_events, count_latest, load_events
from sodate.conditions.loaders import (
    load_consents,
    load_contacts,
    load_memberships,
    load_scores,
    load_stages,
)
from sodate.conditions.memory import ContactState, Evaluation, event_key
from sodate.conditions.reads import nodes, reads, reads_zone
from sodate.conditions.schemas import Condition, EventCondition, EventSpec
from sodate.events import latest
from sodate.events.models import LATEST_KEPT

CONTACTS_AT_ONCE = 5_000
"""How many contacts' states real-time work loads at once (3–4 KB a contact): a batch's
contacts are checked in parts this large, so that what is loaded for them stays the same
whatever the batch's size."""

_NO_CONSENTS: frozenset[tuple[str, str]] = frozenset()


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
    contacts = load_contacts(session, workspace_id, contact_ids)
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
        counts.update(count_events(session, workspace_id, among, by_key, now, zone))
    for among, of_names in kept.items():
        names = {name for *_, name in of_names.values()}
        by_name = latest.latest_rows(session, workspace_id, names, among)
        counts.update(count_latest(session, workspace_id, among, of_names, by_name, now, zone))
    for among, of_filters in kept_filtered.items():
        ids = sorted({filter_id for *_, filter_id in of_filters.values()})
        by_filter = filtered.kept_rows(session, ids, among)
        counts.update(count_latest(session, workspace_id, among, of_filters, by_filter, now, zone))
    events = load_events(session, workspace_id, live, local, now)
    read = [reads(condition) for condition in conditions]
    keys = {key for found in read for key in found.segments}
    memberships = load_memberships(session, workspace_id, live, keys)
    models = {key for found in read for key in found.scores}
    scores = load_scores(session, workspace_id, live, models)
    lifecycle = any(found.lifecycle for found in read)
    stages = load_stages(session, workspace_id, live) if lifecycle else {}
    consent = any(found.consent for found in read)
    consents = load_consents(session, workspace_id, live) if consent else {}
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
