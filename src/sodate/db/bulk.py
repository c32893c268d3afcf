"""Hot-path statements run through the database driver, past SQLAlchemy's per-row work.

The event processor writes thousands of rows a second. There SQLAlchemy's parameter
processing (type coercion, JSON encoding, one dictionary per row) costs more than the
database's own insert, so the hottest statements are written once as SQL text, with rows
already in the driver's form: `?` placeholders, tuples of text, numbers and None, times from
`DriverValues.time` and JSON from `DriverValues.json`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy.orm import Session

from sodate.db.base import as_utc

_LONG_DIGITS = re.compile(r"\d{19}")
"""Where an integer orjson would read as a float may be: it has 19 digits or more."""


class DriverValues:
    """How one dialect's driver wants times and JSON documents, and its SQL spelling."""

    def __init__(self, dialect: str) -> None:
        self.postgresql = dialect == "postgresql"
        self._texts: dict[datetime, str] = {}

    def time(self, value: datetime) -> Any:
        """An aware time as the column stores it: SQLite keeps UTC text as SQLAlchemy writes it.

        Each UTC time is formatted once: a batch's rows share times (when a request was
        received, an event's time as the contact's last seen), and looking one up costs a
        fiftieth of formatting it. A `DriverValues` serves one batch, so what it keeps is that
        batch's. Times in other zones are not kept: two of one zone compare equal across a
        repeated hour (`fold`), though they are an hour apart.
        """
        if self.postgresql:
            return value
        if value.tzinfo is not UTC:
            return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
        text = self._texts.get(value)
        if text is None:  # times parsed from "+00:00" text are in UTC: no conversion
            text = self._texts[value] = value.isoformat(" ", "microseconds")[:26]
        return text

    def truth(self, value: bool) -> Any:
        """A boolean as the column stores it: SQLite keeps 1 and 0."""
        return value if self.postgresql else int(value)

    def sql(self, statement: str) -> str:
        """`?` placeholders for the driver; `?::jsonb` marks JSON values (a no-op on SQLite)."""
        if self.postgresql:
            return statement.replace("?", "%s")
        return statement.replace("?::jsonb", "?")

    @staticmethod
    def json(document: Any) -> str:
        try:
            return orjson.dumps(document).decode()
        except TypeError:  # an integer beyond 64 bits, from a request parsed by Python's json
            return json.dumps(document, ensure_ascii=False)

    @staticmethod
    def stored_json(value: Any) -> Any:
        """A JSON column's value as the driver returns it, read as SQLAlchemy reads it.

        psycopg decodes JSONB itself; SQLite gives the text. orjson would read an integer
        beyond 64 bits as a float, so text that may hold one goes to Python's reader.
        """
        if not isinstance(value, str):
            return value
        return json.loads(value) if _LONG_DIGITS.search(value) else orjson.loads(value)

    @staticmethod
    def stored_time(value: Any) -> datetime | None:
        """A time column's value from the driver: aware and in UTC, as UTCDateTime reads it."""
        if value is None:
            return None
        moment: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value
        return as_utc(moment) if moment.tzinfo is None else moment.astimezone(UTC)


def driver_values(session: Session) -> DriverValues:
    return DriverValues(session.get_bind().dialect.name)


def execute_many(session: Session, statement: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """Run one statement (SQL text, `?` placeholders) for each row, in one driver call."""
    if rows:
        connection = session.connection()
        connection.exec_driver_sql(DriverValues(connection.dialect.name).sql(statement), list(rows))


def upsert_many(
    session: Session, statement: str, rows: Sequence[tuple[Any, ...]], *, types: Sequence[str]
) -> None:
    """Run `INSERT … VALUES (?, …) ON CONFLICT …` for every row, whose conflict keys differ.

    On SQLite one executemany. On PostgreSQL an executemany executes the statement once a row
    on the server; instead the rows go as one array a column, of `types` (PostgreSQL's names),
    and `SELECT * FROM unnest(…)` takes the place of `VALUES`: one execution for them all.
    There a column's values must be of one Python type (the driver refuses a list of ints and
    floats), and a repeated conflict key is an error, where SQLite would apply both rows.
    """
    if not rows:
        return
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        execute_many(session, statement, rows)
        return
    values = "VALUES (" + ", ".join("?" * len(types)) + ")"
    assert statement.count(values) == 1, statement
    unnest = ", ".join(f"?::{kind}[]" for kind in types)
    arrays = f"SELECT * FROM unnest({unnest})"  # noqa: S608 (type names only)
    columns = tuple(list(column) for column in zip(*rows, strict=True))
    connection.exec_driver_sql(
        DriverValues("postgresql").sql(statement.replace(values, arrays)), columns
    )


def fetch_all(session: Session, statement: str, params: tuple[Any, ...] = ()) -> list[Any]:
    """The rows as the driver's tuples: SQLAlchemy still runs the statement (its events, its
    errors), but a row object for every row cost as much as SQLite's own reading of it."""
    connection = session.connection()
    sql = DriverValues(connection.dialect.name).sql(statement)
    result = connection.exec_driver_sql(sql, params)
    try:
        return list(result.cursor.fetchall())
    finally:
        result.close()


def fetch_in(
    session: Session,
    statement: str,
    values: Sequence[Any],
    params: tuple[Any, ...] = (),
    *,
    chunk: int = 500,
    then: str = "",
) -> list[Any]:
    """Rows of a statement that ends in `IN`, for every value: `params` bind the `?` before it,
    and `then` (a `GROUP BY`, say) follows the values.

    The values are bound too: on PostgreSQL as one array (`= ANY(?)`), whose plan does not
    grow with the values as an `IN` list's does (lists of 500 cost four to ten times as much); on
    SQLite a chunk at a time, only their placeholders going into the text (so a group never
    spans two chunks when the values are what it groups by).
    """
    if not values:
        return []
    if session.get_bind().dialect.name == "postgresql":
        assert statement.endswith(" IN"), statement
        array = "bigint[]" if isinstance(values[0], int) else "text[]"
        return fetch_all(
            session, f"{statement[:-3]} = ANY(?::{array}){then}", (*params, list(values))
        )
    rows: list[Any] = []
    for start in range(0, len(values), chunk):
        part = tuple(values[start : start + chunk])
        in_list = ", ".join("?" * len(part))
        rows.extend(fetch_all(session, f"{statement} ({in_list}){then}", (*params, *part)))
    return rows


def insert_rows(
    session: Session, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """Insert many rows of driver values: COPY on PostgreSQL (twice as fast there as an
    executemany), one executemany on SQLite."""
    if not rows:
        return
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        marks = ", ".join("?" * len(columns))
        statement = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608
        execute_many(session, statement, rows)
        return
    driver = connection.connection.driver_connection
    assert driver is not None
    with (
        driver.cursor() as cursor,
        cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)
