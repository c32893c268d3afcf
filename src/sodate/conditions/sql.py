"""The SQL evaluator: a condition compiled to one parametrized SQLAlchemy Core expression.

Set-based work (recomputing a segment, counting a preview) asks which contacts of a workspace
satisfy a condition; `matching_contacts` answers with one SELECT, on SQLite and PostgreSQL.
Values from the condition are always bound parameters, never SQL text. The rules are those
of `sodate.conditions.memory`; every leaf is a definite true or false (never NULL), so `not`
and the negative operators hold exactly when their positive form does not.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import ColumnElement

from sodate.conditions import terms
from sodate.conditions.reads import reads_zone
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
from sodate.contacts.models import Company, Contact
from sodate.events.models import Event
from sodate.lifecycle.models import ContactStage
from sodate.scoring.decay import decay_factor_sql
from sodate.scoring.models import ContactScore, ScoringModel
from sodate.segments.models import Segment, SegmentMember

CONTACTS: sa.Table = Contact.__table__  # type: ignore[assignment]
COMPANIES: sa.Table = Company.__table__  # type: ignore[assignment]
EVENTS: sa.Table = Event.__table__  # type: ignore[assignment]
SEGMENTS: sa.Table = Segment.__table__  # type: ignore[assignment]
MEMBERS: sa.Table = SegmentMember.__table__  # type: ignore[assignment]
SCORING_MODELS: sa.Table = ScoringModel.__table__  # type: ignore[assignment]
CONTACT_SCORES: sa.Table = ContactScore.__table__  # type: ignore[assignment]
CONTACT_STAGES: sa.Table = ContactStage.__table__  # type: ignore[assignment]

Boolean = ColumnElement[bool]


def matching_contacts(
    condition: Condition, *, dialect: str, workspace_id: str, now: datetime, zone: ZoneInfo
) -> sa.Select[int]:
    """SELECT the ids of the workspace's live (not merged) contacts that satisfy `condition`."""
    where = contact_condition(
        condition, dialect=dialect, workspace_id=workspace_id, now=now, zone=zone
    )
    return (
        sa.select(CONTACTS.c.id)
        .select_from(CONTACTS.outerjoin(COMPANIES, COMPANIES.c.id == CONTACTS.c.company_id))
        .where(CONTACTS.c.workspace_id == workspace_id, CONTACTS.c.merged_into_id.is_(None), where)
    )


def contact_condition(
    condition: Condition, *, dialect: str, workspace_id: str, now: datetime, zone: ZoneInfo
) -> Boolean:
    """The condition over a row of `contacts` outer-joined to its row of `companies`."""
    compiler = _Compiler(dialect == "postgresql", workspace_id, now, zone)
    return compiler.condition(condition, CONTACTS)


def property_filters(
    where: Sequence[PropFilter],
    properties: Any,
    *,
    dialect: str,
    workspace_id: str,
    now: datetime,
    zone: ZoneInfo,
) -> list[Boolean]:
    """Filters on an events `properties` column, for filters that read no contact's time zone
    (scoring rules refuse the others), so no contact row is needed."""
    compiler = _Compiler(dialect == "postgresql", workspace_id, now, zone)
    no_contact = _Zone(sa.null(), zone, now)
    return [compiler.property_holds(properties, item, no_contact) for item in where]


@dataclass
class _Compiler:
    postgresql: bool
    workspace_id: str
    now: datetime
    zone: ZoneInfo

    def condition(self, condition: Condition, contacts: sa.FromClause) -> Boolean:
        if isinstance(condition, AllCondition):
            return sa.and_(*(self.condition(child, contacts) for child in condition.all))
        if isinstance(condition, AnyCondition):
            return sa.or_(*(self.condition(child, contacts) for child in condition.any))
        if isinstance(condition, NotCondition):
            return sa.not_(self.condition(condition.not_, contacts))
        if isinstance(condition, AttrCondition):
            return _definite(self.attribute(condition, contacts))
        if isinstance(condition, SegmentCondition):
            return self.member(condition.segment, contacts)
        if isinstance(condition, ScoreCondition):
            return self.score(condition, contacts)
        if isinstance(condition, LifecycleCondition):
            return self.stage(condition, contacts)
        assert isinstance(condition, EventCondition)
        return self.events(condition, contacts)

    def member(self, key: str, contacts: sa.FromClause) -> Boolean:
        members = (
            sa.select(MEMBERS.c.contact_id)
            .join(SEGMENTS, SEGMENTS.c.id == MEMBERS.c.segment_id)
            .where(SEGMENTS.c.workspace_id == self.workspace_id, SEGMENTS.c.key == key)
        )
        return contacts.c.id.in_(members)

    def stage(self, condition: LifecycleCondition, contacts: sa.FromClause) -> Boolean:
        # Definite without coalesce: neither contacts.id nor contact_stages.contact_id is NULL.
        staged = sa.select(CONTACT_STAGES.c.contact_id).where(
            CONTACT_STAGES.c.workspace_id == self.workspace_id,
            CONTACT_STAGES.c.stage.in_(condition.lifecycle.in_),
        )
        return contacts.c.id.in_(staged)

    def score(self, condition: ScoreCondition, contacts: sa.FromClause) -> Boolean:
        spec = condition.score
        models, scores = SCORING_MODELS.alias("score_models"), CONTACT_SCORES.alias("scores")
        engagement = scores.c.engagement_base * decay_factor_sql(
            self.now, models.c.epoch, models.c.half_life_days, self.postgresql
        )
        part = {
            "fit": scores.c.fit,
            "engagement": engagement,
            "total": scores.c.fit + engagement,
        }[spec.part]
        value = sa.func.coalesce(
            sa.select(part)
            .select_from(scores.join(models, models.c.id == scores.c.model_id))
            .where(
                models.c.workspace_id == self.workspace_id,
                models.c.key == spec.model,
                scores.c.contact_id == contacts.c.id,
            )
            .scalar_subquery(),
            0.0,
        )
        if spec.op is Operator.BETWEEN:
            low, high = spec.value
            return sa.and_(value >= float(low), value <= float(high))
        return ORDER_OPERATORS[spec.op](value, float(spec.value))  # type: ignore[no-any-return]

    def attribute(self, condition: AttrCondition, contacts: sa.FromClause) -> Boolean:
        path = condition.path
        if path.kind is ValueKind.TIME:
            return self.time_compares(contacts.c[path.column], condition.op, condition.value)
        value: _Value
        if path.source is Source.CONTACT:
            value = _TextColumn(contacts.c[path.column], self.postgresql)
        elif path.source is Source.COMPANY:
            value = _TextColumn(COMPANIES.c[path.column], self.postgresql)
        else:
            doc = contacts.c.traits if path.source is Source.TRAITS else COMPANIES.c.traits
            value = _json_value(doc, path.path, self.postgresql)
        return self.compares(value, condition.op, condition.value, _zone_of(contacts, self))

    def events(self, condition: EventCondition, contacts: sa.FromClause) -> Boolean:
        spec = condition.event
        events = EVENTS.alias("matched_events")
        owners = CONTACTS.alias("event_owners")
        where: list[Boolean] = [
            events.c.workspace_id == self.workspace_id,
            events.c.name == spec.name,
        ]
        if spec.within:
            since = self.now - terms.parse_positive_duration(spec.within)
            where += [events.c.timestamp >= since, events.c.timestamp <= self.now]
        zone = _zone_of(owners, self)
        needs_owner = any(reads_zone(item) for item in spec.where)
        where += [self.property_holds(events.c.properties, item, zone) for item in spec.where]
        source: sa.FromClause = events
        if needs_owner:
            source = events.join(owners, owners.c.id == events.c.contact_id)
        matching = sa.select(events.c.contact_id).select_from(source).where(*where)
        count = COUNT_OPERATORS[spec.count.op]
        if count(0, spec.count.value):
            # Zero events satisfy the count, so the contacts that satisfy it are all but those
            # whose count fails it.
            failing = matching.group_by(events.c.contact_id).having(
                sa.not_(count(sa.func.count(), spec.count.value))
            )
            return contacts.c.id.not_in(failing)
        if (spec.count.op, spec.count.value) in (("gte", 1), ("gt", 0)):
            return contacts.c.id.in_(matching)
        return contacts.c.id.in_(
            matching.group_by(events.c.contact_id).having(count(sa.func.count(), spec.count.value))
        )

    def property_holds(self, properties: Any, item: PropFilter, zone: _Zone) -> Boolean:
        value = _json_value(properties, item.path, self.postgresql)
        return _definite(self.compares(value, item.op, item.value, zone))

    def time_compares(self, column: Any, op: Operator, operand: Any) -> Boolean:
        if op in NEGATIONS:
            return sa.not_(_definite(self.time_compares(column, NEGATIONS[op], operand)))
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

    def compares(self, value: _Value, op: Operator, operand: Any, zone: _Zone) -> Boolean:
        if op in NEGATIONS:
            return sa.not_(_definite(self.compares(value, NEGATIONS[op], operand, zone)))
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
        return _number(operand, self.postgresql)

    def day(self, text: str, zone: _Zone) -> Any:
        value = terms.parse_date_value(text)
        absolute = value.absolute_day()
        if absolute is not None:
            return sa.literal(absolute, sa.String())
        assert value.offset is not None
        return zone.day(self.now + value.offset)


def _number(operand: int | float, postgresql: bool) -> Any:
    """A condition's number as a bound value: an exact numeric on PostgreSQL (JSONB numbers are
    numeric), the number itself on SQLite."""
    if postgresql:
        return sa.cast(sa.literal(terms.exact_number(operand), sa.Numeric()), sa.Numeric())
    return sa.literal(operand)


def _definite(expression: Boolean) -> Boolean:
    """SQL's unknown (a NULL anywhere) read as false, so that NOT means "does not hold"."""
    return sa.func.coalesce(expression, sa.false())


@dataclass
class _Zone:
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


def _zone_of(contacts: sa.FromClause, compiler: _Compiler) -> _Zone:
    timezone = _json_value(contacts.c.traits, (terms.TIME_ZONE_TRAIT,), compiler.postgresql)
    return _Zone(
        sa.case((timezone.is_string(), timezone.text()), else_=sa.null()),
        compiler.zone,
        compiler.now,
    )


class _Value:
    """One value in SQL: its type tests and its readings as text, number, date."""

    postgresql: bool

    def is_string(self) -> Boolean:
        raise NotImplementedError

    def is_number(self) -> Boolean:
        raise NotImplementedError

    def present(self) -> Boolean:
        raise NotImplementedError

    def text(self) -> Any:
        raise NotImplementedError

    def number(self) -> Any:
        raise NotImplementedError

    def is_boolean(self, value: bool) -> Boolean:
        return sa.false()

    def any_element(self, test: Callable[[_Value], Boolean]) -> Boolean:
        return sa.false()

    def folded(self) -> Any:
        text = sa.collate(self.text(), "C") if self.postgresql else self.text()
        return sa.func.lower(text)

    def find(self, folded: str) -> Any:
        """Where the folded operand first occurs in the folded text (1-based; 0 if nowhere)."""
        name = "strpos" if self.postgresql else "instr"
        return getattr(sa.func, name)(self.folded(), sa.literal(folded, sa.String()))

    def suffix(self, length: int) -> Any:
        if self.postgresql:
            return sa.func.right(self.folded(), length)
        return sa.func.substr(self.folded(), -length)

    def equals(self, operand: Any) -> Boolean:
        if isinstance(operand, str):
            return sa.and_(self.is_string(), self.folded() == terms.fold(operand))
        if isinstance(operand, bool):
            return self.is_boolean(operand)
        return sa.and_(self.is_number(), self.number() == _number(operand, self.postgresql))

    def day(self) -> Any:
        """The date a text starting like 2026-04-01 holds (NULL for anything else)."""
        text = self.text()
        if self.postgresql:
            looks = sa.collate(text, "C").op("~")(sa.literal("^[0-9]{4}-[0-9]{2}-[0-9]{2}"))
        else:
            looks = text.op("GLOB")(sa.literal("[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*"))
        day: Any = sa.func.substr(text, 1, 10)
        if self.postgresql:
            day = sa.collate(day, "C")
        return sa.case((sa.and_(self.is_string(), looks), day), else_=sa.null())

    def month_day(self) -> Any:
        return sa.func.substr(self.day(), 6, 5)


class _TextColumn(_Value):
    def __init__(self, column: Any, postgresql: bool) -> None:
        self.column = column
        self.postgresql = postgresql

    def is_string(self) -> Boolean:
        return self.column.is_not(None)  # type: ignore[no-any-return]

    def is_number(self) -> Boolean:
        return sa.false()

    def present(self) -> Boolean:
        return self.column.is_not(None)  # type: ignore[no-any-return]

    def text(self) -> Any:
        return self.column

    def number(self) -> Any:
        return sa.null()


def _json_value(document: Any, path: Sequence[str], postgresql: bool) -> _Value:
    if postgresql:
        value = document
        for part in path:
            value = value.op("->", return_type=JSONB)(sa.literal(part, sa.String()))
        return _PostgresJson(value)
    return _SqliteJson(document, sa.literal("$" + "".join(f'."{part}"' for part in path)))


_ESCAPED_IN_JSON = re.compile(r'["\\\x00-\x1f]')
"""What JSON text writes as an escape (`json.dumps(..., ensure_ascii=False)`, and SQLite's
JSON functions): the rest of a string is stored as it is (`sodate.db.engine.json_text`)."""


class _SqliteJson(_Value):
    """A value at a JSON path in an SQLite document (`json_type`, `->>`, `json_each`)."""

    postgresql = False

    def __init__(self, document: Any, path: Any) -> None:
        self.document = document
        self.path = path
        self.type = sa.func.json_type(document, path)

    def is_string(self) -> Boolean:
        return self.type == "text"

    def is_number(self) -> Boolean:
        return self.type.in_(("integer", "real"))

    def is_boolean(self, value: bool) -> Boolean:
        return self.type == ("true" if value else "false")

    def present(self) -> Boolean:
        return sa.func.coalesce(self.type, "null") != "null"

    def text(self) -> Any:
        return self.document.op("->>", return_type=sa.types.NullType())(self.path)

    def number(self) -> Any:
        return self.text()

    def equals(self, operand: Any) -> Boolean:
        found = super().equals(operand)
        if isinstance(operand, str) and not _ESCAPED_IN_JSON.search(operand):
            # Reading JSON is the costly part of scanning many documents; a string equal to
            # the operand (Latin letters in any case) is written `"operand"` in the document's
            # text, which SQLite's LIKE (A–Z in any case, as `lower()`) finds far faster. Only
            # a pre-filter: the documents it keeps are read as before.
            pattern = '%"' + re.sub(r"([%_\\])", r"\\\1", operand) + '"%'
            text = sa.type_coerce(self.document, sa.Text())
            found = sa.and_(text.like(pattern, escape="\\"), found)
        return found

    def any_element(self, test: Callable[[_Value], Boolean]) -> Boolean:
        elements = sa.func.json_each(self.document, self.path).table_valued("type", "value")
        return sa.and_(
            self.type == "array",
            sa.exists().select_from(elements).where(test(_SqliteElement(elements))),
        )


class _SqliteElement(_Value):
    """An element of an array, as `json_each` gives it: a type name and an SQL value."""

    postgresql = False

    def __init__(self, elements: Any) -> None:
        self.type = elements.c.type
        self.value = elements.c.value

    def is_string(self) -> Boolean:
        return self.type == "text"  # type: ignore[no-any-return]

    def is_number(self) -> Boolean:
        return self.type.in_(("integer", "real"))  # type: ignore[no-any-return]

    def is_boolean(self, value: bool) -> Boolean:
        return self.type == ("true" if value else "false")  # type: ignore[no-any-return]

    def present(self) -> Boolean:
        return self.type != "null"  # type: ignore[no-any-return]

    def text(self) -> Any:
        return self.value

    def number(self) -> Any:
        return self.value


class _PostgresJson(_Value):
    """A JSONB value (a document's member, or an array element)."""

    postgresql = True

    def __init__(self, value: Any) -> None:
        self.value = value
        self.type = sa.func.jsonb_typeof(value)

    def is_string(self) -> Boolean:
        return self.type == "string"

    def is_number(self) -> Boolean:
        return self.type == "number"

    def is_boolean(self, value: bool) -> Boolean:
        return sa.and_(self.type == "boolean", self.text() == ("true" if value else "false"))

    def present(self) -> Boolean:
        return sa.func.coalesce(self.type, "null") != "null"

    def text(self) -> Any:
        return self.value.op("#>>", return_type=sa.Text())(sa.literal_column("'{}'"))

    def number(self) -> Any:
        # The cast runs only on numbers: CASE evaluates its branches in order.
        return sa.case((self.is_number(), sa.cast(self.value, sa.Numeric())), else_=sa.null())

    def any_element(self, test: Callable[[_Value], Boolean]) -> Boolean:
        elements = sa.func.jsonb_array_elements(self.value).table_valued("value")
        found = sa.exists().select_from(elements).where(test(_PostgresJson(elements.c.value)))
        # jsonb_array_elements fails on anything but an array, so it runs only on arrays.
        return sa.case((self.type == "array", found), else_=sa.false())
