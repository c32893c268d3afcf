"""Comparisons of values compiled to SQL, for the SQL evaluator (`sodate.conditions.sql`).

`ComparisonCompiler` compiles an operator and its operand against a value of a contact or an
event (`sodate.conditions.sql_values`) or against a time column; `Zone` gives the local dates
those comparisons read, in each contact's own time zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from sodate.conditions import terms
from sodate.conditions.schemas import NEGATIONS, ORDER_OPERATORS, Operator, PropFilter
from sodate.conditions.sql_values import Boolean, Value, bound_number, definite, json_value


@dataclass
class ComparisonCompiler:
    """Values compared with operands, as the SQL evaluator's conditions compare them."""

    postgresql: bool
    now: datetime
    zone: ZoneInfo

    def property_holds(self, properties: Any, item: PropFilter, zone: Zone) -> Boolean:
        value = json_value(properties, item.path, self.postgresql)
        return definite(self.compares(value, item.op, item.value, zone))

    def time_compares(self, column: Any, op: Operator, operand: Any) -> Boolean:
        if op in NEGATIONS:
            return sa.not_(definite(self.time_compares(column, NEGATIONS[op], operand)))
        if op is Operator.EXISTS:
            return column.is_not(None)  # type: ignore[no-any-return]
        if op is Operator.WITHIN_LAST:
            since = self.now - terms.parse_positive_duration(operand)
            return sa.and_(column >= since, column <= self.now)
        if op is Operator.BETWEEN:
            low, high = (self.instant(text) for text in operand)
            return sa.and_(column >= low, column <= high)
        bound = self.instant(operand)
        return column < bound if op is Operator.BEFORE else column > bound  # type: ignore[no-any-return]

    def instant(self, text: str) -> datetime:
        return terms.parse_date_value(text).at(self.now, self.zone)

    def compares(self, value: Value, op: Operator, operand: Any, zone: Zone) -> Boolean:
        if op in NEGATIONS:
            return sa.not_(definite(self.compares(value, NEGATIONS[op], operand, zone)))
        if op is Operator.EXISTS:
            return value.present()
        if op is Operator.EQ:
            return value.equals(operand)
        if op is Operator.IN:
            return sa.or_(*(value.equals(item) for item in operand))
        if op is Operator.CONTAINS:
            found: Boolean = sa.false()
            if isinstance(operand, str):
                found = sa.and_(value.is_string(), value.find(terms.fold(operand)) > 0)
            return sa.or_(found, value.any_element(lambda item: item.equals(operand)))
        if op is Operator.STARTS_WITH:
            return sa.and_(value.is_string(), value.find(terms.fold(operand)) == 1)
        if op is Operator.ENDS_WITH:
            folded = terms.fold(operand)
            return sa.and_(value.is_string(), value.suffix(len(folded)) == folded)
        if op in ORDER_OPERATORS:
            return sa.and_(
                value.is_number(), ORDER_OPERATORS[op](value.number(), self.number(operand))
            )
        if op is Operator.BETWEEN and not isinstance(operand[0], str):
            low, high = (self.number(item) for item in operand)
            return sa.and_(value.is_number(), value.number() >= low, value.number() <= high)
        day = value.day()
        if op is Operator.BETWEEN:
            return sa.and_(day >= self.day(operand[0], zone), day <= self.day(operand[1], zone))
        if op is Operator.BEFORE:
            return day < self.day(operand, zone)  # type: ignore[no-any-return]
        if op is Operator.AFTER:
            return day > self.day(operand, zone)  # type: ignore[no-any-return]
        if op is Operator.WITHIN_LAST:
            since = self.now - terms.parse_positive_duration(operand)
            return sa.and_(day >= zone.day(since), day <= zone.day(self.now))
        assert op is Operator.ANNIVERSARY
        offset = terms.parse_day_offset(operand) if operand is not None else 0
        return zone.anniversary(value.month_day(), offset)

    def number(self, operand: int | float) -> Any:
        return bound_number(operand, self.postgresql)

    def day(self, text: str, zone: Zone) -> Any:
        value = terms.parse_date_value(text)
        absolute = value.absolute_day()
        if absolute is not None:
            return sa.literal(absolute, sa.String())
        assert value.offset is not None
        return zone.day(self.now + value.offset)


@dataclass
class Zone:
    """Local dates in each contact's own time zone (the `timezone` trait), else the default."""

    name: Any
    default: ZoneInfo
    now: datetime

    def day(self, instant: datetime) -> Any:
        default_day, others = terms.local_dates(instant, self.default)
        return sa.case(
            *((self.name.in_(names), sa.literal(day.isoformat())) for day, names in others.items()),
            else_=sa.literal(default_day.isoformat()),
        )

    def anniversary(self, month_day: Any, offset: int) -> Boolean:
        default_day, others = terms.local_dates(self.now, self.default)

        def falls_on(day: date) -> Boolean:
            return month_day.in_(terms.month_days(day + timedelta(days=offset)))  # type: ignore[no-any-return]

        return sa.case(
            *((self.name.in_(names), falls_on(day)) for day, names in others.items()),
            else_=falls_on(default_day),
        )


def zone_of(contacts: sa.FromClause, compiler: ComparisonCompiler) -> Zone:
    timezone = json_value(contacts.c.traits, (terms.TIME_ZONE_TRAIT,), compiler.postgresql)
    return Zone(
        sa.case((timezone.is_string(), timezone.text()), else_=sa.null()),
        compiler.zone,
        compiler.now,
    )
