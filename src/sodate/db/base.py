"""Declarative base, naming convention and the column types every table uses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class NaiveDatetimeError(ValueError):
    """A datetime without a time zone reached the database layer."""


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timestamp stored in UTC that only accepts and returns aware datetimes.

    SQLite has no time zone type, so values are normalized to UTC before storage; the fixed
    format keeps string comparison equal to time comparison there.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise NaiveDatetimeError(f"naive datetime {value!r}: attach a time zone")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return as_utc(value)
        return value.astimezone(UTC)


def as_utc(naive: datetime) -> datetime:
    """A naive time read as UTC. (`replace(tzinfo=…)` costs several times more on CPython
    3.11, and every time read from SQLite goes through here.)"""
    return datetime.combine(naive.date(), naive.time(), UTC)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def epoch_micros(moment: datetime) -> int:
    """An aware time as whole microseconds since the Unix epoch (exact, unlike `timestamp()`)."""
    return (moment - EPOCH) // _MICROSECOND


def floor_seconds(micros: sa.ColumnElement[Any]) -> sa.ColumnElement[int]:
    """Whole seconds since the epoch of a `MicrosecondTime` column on SQLite (its integer),
    rounded down, before 1970 too: what SQLite's `'unixepoch'` modifier reads."""
    value = sa.type_coerce(micros, sa.BigInteger())
    return (value - (value % _MICROS_A_SECOND + _MICROS_A_SECOND) % _MICROS_A_SECOND) // (
        _MICROS_A_SECOND
    )


def micros_of_text(text: sa.ColumnElement[Any]) -> sa.ColumnElement[int]:
    """A `UTCDateTime` column's SQLite text (`YYYY-MM-DD HH:MM:SS.ffffff`, UTC) as microseconds
    since the epoch, to compare with a `MicrosecondTime` column."""
    value = sa.type_coerce(text, sa.String())
    # The whole seconds alone: strftime rounds a fraction to the millisecond first (.9995 and
    # above would count one second more).
    seconds = sa.cast(sa.func.strftime("%s", sa.func.substr(value, 1, 19)), sa.BigInteger())
    return seconds * _MICROS_A_SECOND + sa.cast(sa.func.substr(value, 21, 6), sa.BigInteger())


_MICROS_A_SECOND = 1_000_000


class MicrosecondTime(sa.TypeDecorator[datetime]):
    """A UTC time stored compactly: an integer of microseconds since the epoch on SQLite (8
    bytes rather than 26 of text), a `timestamptz` on PostgreSQL (already 8 bytes there).

    For tables written row by row on the hot path, where every byte of a row is written again
    on each change."""

    impl = sa.BigInteger
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(sa.DateTime(timezone=True))
        return dialect.type_descriptor(sa.BigInteger())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise NaiveDatetimeError(f"naive datetime {value!r}: attach a time zone")
        return value if dialect.name == "postgresql" else epoch_micros(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, datetime):
            return value.astimezone(UTC)
        return EPOCH + int(value) * _MICROSECOND


JSONDocument = sa.JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: dict[Any, Any] = {datetime: UTCDateTime()}  # noqa: RUF012


BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
"""A 64-bit key; on SQLite an INTEGER so that it aliases the rowid and autoincrements."""
