"""Values in compiled conditions: a column, or a member of a JSON document, as SQL on SQLite
and PostgreSQL, with the type tests and readings (text, number, date) comparisons need."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import ColumnElement

from sodate.conditions import terms

Boolean = ColumnElement[bool]


def bound_number(operand: int | float, postgresql: bool) -> Any:
    """A condition's number as a bound value: an exact numeric on PostgreSQL (JSONB numbers are
    numeric), the number itself on SQLite."""
    if postgresql:
        return sa.cast(sa.literal(terms.exact_number(operand), sa.Numeric()), sa.Numeric())
    return sa.literal(operand)


def folded(text: Any, *, postgresql: bool) -> Any:
    """Text folded in SQL as `terms.fold` folds it in Python: A–Z only. PostgreSQL's `lower`
    folds only them under the "C" collation; SQLite's always does."""
    return sa.func.lower(sa.collate(text, "C") if postgresql else text)


def definite(expression: Boolean) -> Boolean:
    """SQL's unknown (a NULL anywhere) read as false, so that NOT means "does not hold"."""
    return sa.func.coalesce(expression, sa.false())


class Value:
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

    def any_element(self, test: Callable[[Value], Boolean]) -> Boolean:
        return sa.false()

    def folded(self) -> Any:
        return folded(self.text(), postgresql=self.postgresql)

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
        return sa.and_(self.is_number(), self.number() == bound_number(operand, self.postgresql))

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


class TextColumn(Value):
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


def json_value(document: Any, path: Sequence[str], postgresql: bool) -> Value:
    if postgresql:
        value = document
        for part in path:
            value = value.op("->", return_type=JSONB)(sa.literal(part, sa.String()))
        return _PostgresJson(value)
    return _SqliteJson(document, sa.literal("$" + "".join(f'."{part}"' for part in path)))


_ESCAPED_IN_JSON = re.compile(r'["\\\x00-\x1f]')
"""What JSON text writes as an escape (`json.dumps(..., ensure_ascii=False)`, and SQLite's
JSON functions): the rest of a string is stored as it is (`sodate.db.engine.json_text`)."""


class _SqliteJson(Value):
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

    def any_element(self, test: Callable[[Value], Boolean]) -> Boolean:
        elements = sa.func.json_each(self.document, self.path).table_valued("type", "value")
        return sa.and_(
            self.type == "array",
            sa.exists().select_from(elements).where(test(_SqliteElement(elements))),
        )


class _SqliteElement(Value):
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


class _PostgresJson(Value):
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

    def any_element(self, test: Callable[[Value], Boolean]) -> Boolean:
        elements = sa.func.jsonb_array_elements(self.value).table_valued("value")
        found = sa.exists().select_from(elements).where(test(_PostgresJson(elements.c.value)))
        # jsonb_array_elements fails on anything but an array, so it runs only on arrays.
        return sa.case((self.type == "array", found), else_=sa.false())
