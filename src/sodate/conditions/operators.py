"""The operators of the condition language and the values they take.

Which operators each kind of attribute takes (`OPERATORS_BY_KIND`), and `check_value`: the
value an operator is given, checked (a list of the right length, text, a finite number, a date,
a duration, a day offset) and returned as it is kept.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Any

from sodate.conditions import terms
from sodate.conditions.nodes import invalid
from sodate.conditions.terms import ValueKind

MAX_LIST_VALUES = 1000
MAX_TEXT = 1000
MAX_INTEGER = 2**63 - 1


class Operator(StrEnum):
    EQ = "eq"
    NE = "ne"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    IN = "in"
    NOT_IN = "not_in"
    CONTAINS = "contains"
    NOT_CONTAINS = "not_contains"
    STARTS_WITH = "starts_with"
    ENDS_WITH = "ends_with"
    EXISTS = "exists"
    NOT_EXISTS = "not_exists"
    BETWEEN = "between"
    BEFORE = "before"
    AFTER = "after"
    WITHIN_LAST = "within_last"
    ANNIVERSARY = "anniversary"


_TEXT_OPERATORS = frozenset(
    {
        Operator.EQ,
        Operator.NE,
        Operator.IN,
        Operator.NOT_IN,
        Operator.CONTAINS,
        Operator.NOT_CONTAINS,
        Operator.STARTS_WITH,
        Operator.ENDS_WITH,
        Operator.EXISTS,
        Operator.NOT_EXISTS,
    }
)
_TIME_OPERATORS = frozenset(
    {
        Operator.BEFORE,
        Operator.AFTER,
        Operator.BETWEEN,
        Operator.WITHIN_LAST,
        Operator.EXISTS,
        Operator.NOT_EXISTS,
    }
)
OPERATORS_BY_KIND = {
    ValueKind.TEXT: _TEXT_OPERATORS,
    ValueKind.TIME: _TIME_OPERATORS,
    ValueKind.JSON: frozenset(Operator),
}

Scalar = str | int | float | bool


def check_value(op: Operator, value: Any, kind: ValueKind) -> Any:
    if op in (Operator.EXISTS, Operator.NOT_EXISTS):
        if value is not None:
            raise invalid("value", "{op} takes no value", op=op.value)
        return None
    if value is None:
        if op is Operator.ANNIVERSARY:
            return None
        raise invalid("value", "{op} needs a value", op=op.value)
    if op in (Operator.EQ, Operator.NE):
        return _scalar(value, kind)
    if op in (Operator.IN, Operator.NOT_IN):
        if not isinstance(value, list) or not 1 <= len(value) <= MAX_LIST_VALUES:
            raise invalid(
                "value",
                "{op} needs a list of 1 to {most} values",
                op=op.value,
                most=MAX_LIST_VALUES,
            )
        return [_scalar(item, kind) for item in value]
    if op in (Operator.CONTAINS, Operator.NOT_CONTAINS):
        if kind is ValueKind.TEXT or isinstance(value, str):
            return _text(value, op)
        return _scalar(value, kind)
    if op in (Operator.STARTS_WITH, Operator.ENDS_WITH):
        return _text(value, op)
    if op in (Operator.GT, Operator.GTE, Operator.LT, Operator.LTE):
        return check_number(value, op)
    if op is Operator.BETWEEN:
        return _between(value, kind)
    if op in (Operator.BEFORE, Operator.AFTER):
        return _date(value, op)
    if op is Operator.WITHIN_LAST:
        if not isinstance(value, str):
            raise invalid("value", "within_last needs a duration such as 30d")
        try:
            terms.parse_positive_duration(value)
        except ValueError as exc:
            raise invalid("value", str(exc)) from None
        return value
    if not isinstance(value, str):
        raise invalid("value", "anniversary takes a day offset such as +3d, or no value")
    try:
        terms.parse_day_offset(value)
    except ValueError as exc:
        raise invalid("value", str(exc)) from None
    return value


def _scalar(value: Any, kind: ValueKind) -> Scalar:
    if kind is ValueKind.TEXT:
        if not isinstance(value, str):
            raise invalid("value", "this attribute is text: compare it with text")
        return _plain_text(value)
    if isinstance(value, str):
        return _plain_text(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return _finite(value)
    raise invalid("value", "expected text, a number or true/false")


def _plain_text(value: str) -> str:
    if len(value) > MAX_TEXT or "\x00" in value:
        raise invalid("value", "text values are at most {most} characters, no NUL", most=MAX_TEXT)
    return value


def _text(value: Any, op: Operator) -> str:
    if not isinstance(value, str) or not value:
        raise invalid("value", "{op} needs non-empty text", op=op.value)
    return _plain_text(value)


def _finite(value: int | float) -> int | float:
    if isinstance(value, float) and not math.isfinite(value):
        raise invalid("value", "numbers must be finite")
    if isinstance(value, int) and abs(value) > MAX_INTEGER:
        # PostgreSQL's jsonb writes a number as its digits (1e20 as 100000000000000000000), so
        # a saved condition's float comes back as an integer beyond what SQLite binds: it is
        # taken back as that float, which compares as the same decimal (`exact_number`).
        spelled = _spelled_float(value)
        if spelled is None:
            raise invalid("value", "integers must fit in 64 bits")
        return spelled
    return value


def _spelled_float(value: int) -> float | None:
    """The float whose shortest spelling is this integer's value, if there is one."""
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if terms.exact_number(number) == value else None


def check_number(value: Any, op: Operator) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid("value", "{op} needs a number", op=op.value)
    return _finite(value)


def _date(value: Any, op: Operator) -> str:
    if not isinstance(value, str):
        raise invalid("value", "{op} needs a date such as 2026-04-01 or -30d", op=op.value)
    try:
        terms.parse_date_value(value)
    except ValueError as exc:
        raise invalid("value", str(exc)) from None
    return value


def _between(value: Any, kind: ValueKind) -> list[Any]:
    if not isinstance(value, list) or len(value) != 2:
        raise invalid("value", "between needs a list of two values: [low, high]")
    low, high = value
    if kind is ValueKind.JSON and not isinstance(low, str | bool) and isinstance(low, int | float):
        low, high = check_number(low, Operator.BETWEEN), check_number(high, Operator.BETWEEN)
        if low > high:
            raise invalid("value", "between needs low <= high")
        return [low, high]
    low, high = _date(low, Operator.BETWEEN), _date(high, Operator.BETWEEN)
    first, last = terms.parse_date_value(low), terms.parse_date_value(high)
    if first.offset is not None and last.offset is not None and first.offset > last.offset:
        raise invalid("value", "between needs the earlier date first")
    if first.absolute_day() and last.absolute_day() and _absolute(first) > _absolute(last):
        raise invalid("value", "between needs the earlier date first")
    return [low, high]


def _absolute(value: terms.DateValue) -> str:
    if value.instant is not None and value.instant.tzinfo is not None:
        return value.instant.isoformat()
    return value.absolute_day() or ""
