"""Comparisons of the condition language compiled once, for the in-memory evaluator.

A comparison (an operator and its operand) becomes a function of a value: operands folded,
durations parsed, absolute dates resolved up front, so testing many contacts or events costs
little more than the test itself. The rules are those of `sodate.conditions.sql`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sodate.conditions import terms
from sodate.conditions.schemas import NEGATIONS, ORDER_OPERATORS, Operator, PropFilter
from sodate.conditions.terms import exact_number as _exact

MISSING = object()

Local = Callable[[], ZoneInfo]
"""The contact's own time zone, asked for only by comparisons that read local dates."""
ValueTest = Callable[[Any, Local], bool]
"""A JSON value (`MISSING` when absent) or a text column against a compiled comparison."""


def property_matcher(
    *, now: datetime, zone: ZoneInfo
) -> Callable[[Sequence[PropFilter], Mapping[str, Any]], bool]:
    """A test of an event's properties against filters that read no contact's time zone
    (scoring rules refuse the others), made once for many events."""
    compiled: dict[int, tuple[Sequence[PropFilter], list[Callable[[Any], bool]]]] = {}

    def tests_of(where: Sequence[PropFilter]) -> list[Callable[[Any], bool]]:
        known = compiled.get(id(where))
        if known is None:
            known = compiled[id(where)] = (where, [_property(item, now, zone) for item in where])
        return known[1]

    def holds(where: Sequence[PropFilter], properties: Mapping[str, Any]) -> bool:
        return all(test(properties) for test in tests_of(where))

    return holds


def _property(item: PropFilter, now: datetime, zone: ZoneInfo) -> Callable[[Any], bool]:
    test, steps = value_test(item.op, item.value, now=now, zone=zone), item.path
    workspace: Local = lambda: zone  # noqa: E731
    return lambda properties: test(lookup(properties, steps), workspace)


def value_test(op: Operator, operand: Any, *, now: datetime, zone: ZoneInfo) -> ValueTest:
    """A comparison of JSON values (or a text column) compiled once; `zone` is the workspace's,
    which reads absolute times written without an offset."""
    if op in NEGATIONS:
        positive = value_test(NEGATIONS[op], operand, now=now, zone=zone)
        return lambda value, local: not positive(value, local)
    if op is Operator.EXISTS:
        return lambda value, _local: value is not MISSING and value is not None
    if op is Operator.EQ:
        same = _equals(operand)
        return lambda value, _local: same(value)
    if op is Operator.IN:
        each = [_equals(item) for item in operand]
        return lambda value, _local: any(same(value) for same in each)
    if op is Operator.CONTAINS:
        element = _equals(operand)
        part = terms.fold(operand) if isinstance(operand, str) else None

        def contains(value: Any, _local: Local) -> bool:
            if part is not None and isinstance(value, str):
                return part in terms.fold(value)
            return isinstance(value, list) and any(element(item) for item in value)

        return contains
    if op is Operator.STARTS_WITH:
        prefix = terms.fold(operand)
        return lambda value, _local: isinstance(value, str) and terms.fold(value).startswith(prefix)
    if op is Operator.ENDS_WITH:
        suffix = terms.fold(operand)
        return lambda value, _local: isinstance(value, str) and terms.fold(value).endswith(suffix)
    if op in ORDER_OPERATORS:
        order, bound = ORDER_OPERATORS[op], _exact(operand)
        return lambda value, _local: _is_number(value) and bool(order(_exact(value), bound))
    if op is Operator.BETWEEN and not isinstance(operand[0], str):
        low, high = _exact(operand[0]), _exact(operand[1])
        return lambda value, _local: _is_number(value) and low <= _exact(value) <= high
    return _date_test(op, operand, now)


def _date_test(op: Operator, operand: Any, now: datetime) -> ValueTest:
    """Comparisons of JSON texts that start with a date, against dates that may be relative to
    the contact's local today."""
    if op is Operator.BETWEEN:
        low, high = _day(operand[0], now), _day(operand[1], now)
        return _on_day(lambda day, local: low(local) <= day <= high(local))
    if op is Operator.BEFORE:
        bound = _day(operand, now)
        return _on_day(lambda day, local: day < bound(local))
    if op is Operator.AFTER:
        bound = _day(operand, now)
        return _on_day(lambda day, local: day > bound(local))
    if op is Operator.WITHIN_LAST:
        since = now - terms.parse_positive_duration(operand)

        def within(day: str, local: Local) -> bool:
            zone = local()
            return _local_day(since, zone) <= day <= _local_day(now, zone)

        return _on_day(within)
    assert op is Operator.ANNIVERSARY
    offset = timedelta(days=terms.parse_day_offset(operand) if operand is not None else 0)

    def anniversary(day: str, local: Local) -> bool:
        target = date.fromisoformat(_local_day(now, local())) + offset
        return day[5:] in terms.month_days(target)

    return _on_day(anniversary)


def _on_day(test: Callable[[str, Local], bool]) -> ValueTest:
    def on_day(value: Any, local: Local) -> bool:
        day = terms.date_text(value)
        return day is not None and test(day, local)

    return on_day


def _day(text: str, now: datetime) -> Callable[[Local], str]:
    """The calendar date a date value names for a contact: as written, or its local today
    moved by the offset."""
    value = terms.parse_date_value(text)
    absolute = value.absolute_day()
    if absolute is not None:
        return lambda _local: absolute
    assert value.offset is not None
    instant = now + value.offset
    return lambda local: _local_day(instant, local())


def _local_day(instant: datetime, zone: ZoneInfo) -> str:
    return instant.astimezone(zone).date().isoformat()


def time_test(
    op: Operator, operand: Any, now: datetime, zone: ZoneInfo
) -> Callable[[datetime | None], bool]:
    """A comparison of a timestamp column; date values are instants read in `zone`."""
    if op in NEGATIONS:
        positive = time_test(NEGATIONS[op], operand, now, zone)
        return lambda value: not positive(value)
    if op is Operator.EXISTS:
        return lambda value: value is not None
    if op is Operator.WITHIN_LAST:
        since = now - terms.parse_positive_duration(operand)
        return lambda value: value is not None and since <= value <= now
    if op is Operator.BETWEEN:
        low, high = (terms.parse_date_value(text).at(now, zone) for text in operand)
        return lambda value: value is not None and low <= value <= high
    bound = terms.parse_date_value(operand).at(now, zone)
    if op is Operator.BEFORE:
        return lambda value: value is not None and value < bound
    return lambda value: value is not None and value > bound


def lookup(document: Any, path: Sequence[str]) -> Any:
    value = document
    for part in path:
        if not isinstance(value, dict) or part not in value:
            return MISSING
        value = value[part]
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _equals(operand: Any) -> Callable[[Any], bool]:
    if isinstance(operand, str):
        folded = terms.fold(operand)
        return lambda value: isinstance(value, str) and terms.fold(value) == folded
    if isinstance(operand, bool):
        return lambda value: isinstance(value, bool) and value is operand
    if not _is_number(operand):
        return lambda _value: False
    exact = _exact(operand)
    return lambda value: _is_number(value) and _exact(value) == exact
