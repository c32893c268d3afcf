"""The in-memory evaluator: does a condition hold for one contact's state, now?

Real-time work (an event arrives, a journey branches) asks about one contact whose state is
already at hand. The rules are those of `sodate.conditions.sql`, which a property test holds
to: see the README of this package.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sodate.conditions import terms
from sodate.conditions.schemas import (
    COUNT_OPERATORS,
    NEGATIONS,
    ORDER_OPERATORS,
    AllCondition,
    AnyCondition,
    AttrCondition,
    Condition,
    EventCondition,
    LifecycleCondition,
    NotCondition,
    Operator,
    PropFilter,
    ScoreCondition,
    SegmentCondition,
)
from sodate.conditions.terms import Source, ValueKind
from sodate.conditions.terms import exact_number as _exact
from sodate.scoring.decay import decay_factor


@dataclass(frozen=True)
class EventFact:
    name: str
    properties: Mapping[str, Any]
    timestamp: datetime


@dataclass(frozen=True)
class ScoreState:
    """A contact's stored score in one model: see `sodate.scoring.models` for the base."""

    fit: float
    base: float
    epoch: datetime
    half_life_seconds: float | None

    def value(self, part: str, now: datetime) -> float:
        engagement = self.base * decay_factor(now, self.epoch, self.half_life_seconds)
        if part == "fit":
            return self.fit
        return engagement if part == "engagement" else self.fit + engagement


@dataclass(frozen=True)
class ContactState:
    """What conditions read of a contact. `company_traits` is None when it has no company;
    `events` need only hold the events the condition names."""

    created_at: datetime
    traits: Mapping[str, Any] = field(default_factory=dict)
    email: str | None = None
    phone: str | None = None
    user_id: str | None = None
    first_seen_at: datetime | None = None
    last_seen_at: datetime | None = None
    company_name: str | None = None
    company_traits: Mapping[str, Any] | None = None
    events: Sequence[EventFact] = ()
    segments: frozenset[str] = frozenset()
    """Keys of the segments it is a member of."""
    scores: Mapping[str, ScoreState] = field(default_factory=dict)
    """By model key; need only hold the models the condition names."""
    stage: str | None = None
    """Its lifecycle stage; None: it has none yet."""


_MISSING = object()


def evaluate(
    condition: Condition,
    state: ContactState,
    *,
    now: datetime,
    zone: ZoneInfo,
    segments: Set[str] | None = None,
) -> bool:
    """Whether `condition` holds for the contact at `now`; `zone` is the workspace's.

    `segments` replaces the state's memberships (real-time work passes the ones it has just
    changed)."""
    evaluation = _Evaluation(
        state,
        now,
        zone,
        terms.contact_zone(state.traits, zone),
        state.segments if segments is None else segments,
    )
    return evaluation.holds(condition)


def property_matcher(
    *, now: datetime, zone: ZoneInfo
) -> Callable[[Sequence[PropFilter], Mapping[str, Any]], bool]:
    """A test of an event's properties against filters that read no contact's time zone
    (scoring rules refuse the others), made once for many events."""
    evaluation = _Evaluation(ContactState(created_at=now), now, zone, zone, frozenset())

    def holds(where: Sequence[PropFilter], properties: Mapping[str, Any]) -> bool:
        return all(evaluation.property_holds(properties, item) for item in where)

    return holds


@dataclass
class _Evaluation:
    state: ContactState
    now: datetime
    zone: ZoneInfo
    contact_zone: ZoneInfo
    segments: Set[str]

    def holds(self, condition: Condition) -> bool:
        if isinstance(condition, AllCondition):
            return all(self.holds(child) for child in condition.all)
        if isinstance(condition, AnyCondition):
            return any(self.holds(child) for child in condition.any)
        if isinstance(condition, NotCondition):
            return not self.holds(condition.not_)
        if isinstance(condition, AttrCondition):
            return self.attribute(condition)
        if isinstance(condition, SegmentCondition):
            return condition.segment in self.segments
        if isinstance(condition, ScoreCondition):
            return self.score(condition)
        if isinstance(condition, LifecycleCondition):
            return self.state.stage in condition.lifecycle.in_
        assert isinstance(condition, EventCondition)
        return self.events(condition)

    def attribute(self, condition: AttrCondition) -> bool:
        path = condition.path
        if path.kind is ValueKind.TIME:
            return self.time_compares(getattr(self.state, path.column), condition)
        value: Any
        if path.source is Source.CONTACT:
            value = getattr(self.state, path.column)
        elif path.source is Source.COMPANY:
            value = self.state.company_name if self.state.company_traits is not None else None
        elif path.source is Source.TRAITS:
            value = _lookup(self.state.traits, path.path)
        else:
            value = _lookup(self.state.company_traits, path.path)
        return self.compares(value, condition.op, condition.value)

    def score(self, condition: ScoreCondition) -> bool:
        spec = condition.score
        stored = self.state.scores.get(spec.model)
        value = stored.value(spec.part, self.now) if stored is not None else 0.0
        if spec.op is Operator.BETWEEN:
            low, high = spec.value
            return bool(low <= value <= high)
        return bool(ORDER_OPERATORS[spec.op](value, spec.value))

    def events(self, condition: EventCondition) -> bool:
        spec = condition.event
        since = self.now - terms.parse_positive_duration(spec.within) if spec.within else None
        count = sum(
            1
            for event in self.state.events
            if event.name == spec.name
            and (since is None or since <= event.timestamp <= self.now)
            and all(self.property_holds(event.properties, where) for where in spec.where)
        )
        return bool(COUNT_OPERATORS[spec.count.op](count, spec.count.value))

    def property_holds(self, properties: Mapping[str, Any], where: PropFilter) -> bool:
        return self.compares(_lookup(properties, where.path), where.op, where.value)

    def time_compares(self, value: datetime | None, condition: AttrCondition) -> bool:
        op = condition.op
        if op in NEGATIONS:
            return not self.time_compares(value, condition.model_copy(update={"op": NEGATIONS[op]}))
        if value is None:
            return False
        if op is Operator.EXISTS:
            return True
        if op is Operator.WITHIN_LAST:
            return self.now - terms.parse_positive_duration(condition.value) <= value <= self.now
        if op is Operator.BETWEEN:
            low, high = (self.instant(text) for text in condition.value)
            return low <= value <= high
        bound = self.instant(condition.value)
        return value < bound if op is Operator.BEFORE else value > bound

    def instant(self, text: str) -> datetime:
        return terms.parse_date_value(text).at(self.now, self.zone)

    def compares(self, value: Any, op: Operator, operand: Any) -> bool:
        """A JSON value (or a text column) against the operand; `_MISSING` when absent."""
        if op in NEGATIONS:
            return not self.compares(value, NEGATIONS[op], operand)
        if op is Operator.EXISTS:
            return value is not _MISSING and value is not None
        if op is Operator.EQ:
            return _equal(value, operand)
        if op is Operator.IN:
            return any(_equal(value, item) for item in operand)
        if op is Operator.CONTAINS:
            if isinstance(value, str) and isinstance(operand, str):
                return terms.fold(operand) in terms.fold(value)
            return isinstance(value, list) and any(_equal(item, operand) for item in value)
        if op is Operator.STARTS_WITH:
            return isinstance(value, str) and terms.fold(value).startswith(terms.fold(operand))
        if op is Operator.ENDS_WITH:
            return isinstance(value, str) and terms.fold(value).endswith(terms.fold(operand))
        if op in ORDER_OPERATORS:
            order = ORDER_OPERATORS[op]
            return _is_number(value) and bool(order(_exact(value), _exact(operand)))
        if op is Operator.BETWEEN and not isinstance(operand[0], str):
            low, high = operand
            return _is_number(value) and _exact(low) <= _exact(value) <= _exact(high)
        day = terms.date_text(value)
        if day is None:
            return False
        if op is Operator.BETWEEN:
            return self.day(operand[0]) <= day <= self.day(operand[1])
        if op is Operator.BEFORE:
            return day < self.day(operand)
        if op is Operator.AFTER:
            return day > self.day(operand)
        if op is Operator.WITHIN_LAST:
            since = self.local_day(self.now - terms.parse_positive_duration(operand))
            return since <= day <= self.local_day(self.now)
        assert op is Operator.ANNIVERSARY
        offset = terms.parse_day_offset(operand) if operand is not None else 0
        target = date.fromisoformat(self.local_day(self.now)) + timedelta(days=offset)
        return day[5:] in terms.month_days(target)

    def day(self, text: str) -> str:
        """The calendar date a date value names for this contact."""
        value = terms.parse_date_value(text)
        absolute = value.absolute_day()
        if absolute is not None:
            return absolute
        assert value.offset is not None
        return self.local_day(self.now + value.offset)

    def local_day(self, instant: datetime) -> str:
        return instant.astimezone(self.contact_zone).date().isoformat()


def _lookup(document: Any, path: Sequence[str]) -> Any:
    value = document
    for part in path:
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _equal(value: Any, operand: Any) -> bool:
    if isinstance(operand, str):
        return isinstance(value, str) and terms.fold(value) == terms.fold(operand)
    if isinstance(operand, bool):
        return isinstance(value, bool) and value is operand
    return _is_number(value) and _exact(value) == _exact(operand)
