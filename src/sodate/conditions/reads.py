"""What a condition reads: which changes can alter its answer, and whether time alone can."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

from sodate.conditions import terms
from sodate.conditions.schemas import (
    AllCondition,
    AnyCondition,
    AttrCondition,
    Condition,
    ConsentCondition,
    EventCondition,
    LifecycleCondition,
    NotCondition,
    Operator,
    PropFilter,
    ScoreCondition,
    SegmentCondition,
)

_SEEN_FIELDS = frozenset({"first_seen_at", "last_seen_at"})
_CLOCK_OPERATORS = frozenset({Operator.WITHIN_LAST, Operator.ANNIVERSARY})
_DATE_OPERATORS = frozenset({Operator.BEFORE, Operator.AFTER, Operator.BETWEEN})


@dataclass
class Reads:
    events: set[str] = field(default_factory=set)
    """Names of the events it counts."""
    profile: bool = False
    """It reads attributes: traits, fields or the company."""
    seen: bool = False
    """It reads first or last seen, which every event moves."""
    segments: set[str] = field(default_factory=set)
    scores: set[str] = field(default_factory=set)
    """Keys of the scoring models whose scores it compares."""
    lifecycle: bool = False
    """It reads the lifecycle stage."""
    consent: bool = False
    """It reads consents."""
    clock: bool = False
    """Its answer can change with no change to the contact (a window, a relative date)."""

    def kinds_of_change(self) -> tuple[bool, bool, bool, frozenset[str]]:
        """What `Changes.candidates` reads of it: conditions alike in this have the same
        candidates in a batch."""
        return (self.profile, self.seen, bool(self.scores), frozenset(self.events))


@dataclass(frozen=True)
class Changes:
    """Which contacts a batch of events changed, by the kinds of change conditions read."""

    always: set[int]
    """Contacts every condition is checked for: new ones, and merges' survivors."""
    profiles: set[int]
    seen: set[int]
    """Contacts with activity, which moves their first and last seen."""
    scores: set[int]
    events: Mapping[str, set[int]]
    """By event name, the contacts with events of it."""

    def candidates(self, found: Reads, *, among: AbstractSet[int] | None = None) -> set[int]:
        """The contacts for which a condition that reads `found` may now answer otherwise (the
        segments it reads aside: their changes are the caller's to add); only those `among`
        these, if given."""
        parts = [self.always]
        if found.profile:
            parts.append(self.profiles)
        if found.seen:
            parts.append(self.seen)
        if found.scores:
            parts.append(self.scores)
        parts += [self.events[name] for name in found.events if name in self.events]
        if among is None:
            return set().union(*parts)
        return set().union(*(among & contacts for contacts in parts))


def nodes(condition: Condition) -> Iterator[tuple[list[int | str], Condition]]:
    """Every node with its path, as validation errors spell paths."""
    stack: list[tuple[list[int | str], Condition]] = [([], condition)]
    while stack:
        path, node = stack.pop()
        yield path, node
        if isinstance(node, AllCondition):
            stack.extend(([*path, "all", i], child) for i, child in enumerate(node.all))
        elif isinstance(node, AnyCondition):
            stack.extend(([*path, "any", i], child) for i, child in enumerate(node.any))
        elif isinstance(node, NotCondition):
            stack.append(([*path, "not"], node.not_))


def reads(condition: Condition) -> Reads:
    found = Reads()
    for _path, node in nodes(condition):
        if isinstance(node, AttrCondition):
            found.profile = True
            found.seen |= node.attr in _SEEN_FIELDS
            found.clock |= _reads_clock(node.op, node.value)
        elif isinstance(node, EventCondition):
            found.events.add(node.event.name)
            found.clock |= node.event.within is not None or any(
                _reads_clock(item.op, item.value) for item in node.event.where
            )
        elif isinstance(node, SegmentCondition):
            found.segments.add(node.segment)
        elif isinstance(node, ScoreCondition):
            found.scores.add(node.score.model)
            found.clock = True  # engagement decays as time passes
        elif isinstance(node, LifecycleCondition):
            found.lifecycle = True
        elif isinstance(node, ConsentCondition):
            found.consent = True
    return found


def reads_zone(item: PropFilter | AttrCondition) -> bool:
    """Whether a comparison needs the contact's local date (its time zone)."""
    return item.op in _CLOCK_OPERATORS or (item.op in _DATE_OPERATORS and _has_offset(item.value))


def _reads_clock(op: Operator, value: object) -> bool:
    return op in _CLOCK_OPERATORS or (op in _DATE_OPERATORS and _has_offset(value))


def _has_offset(value: object) -> bool:
    values = value if isinstance(value, list) else [value]
    return any(
        isinstance(text, str) and terms.parse_date_value(text).offset is not None for text in values
    )
