"""SQLite: event times as integers of microseconds since the epoch instead of text

`events.timestamp` and `received_at`, and the daily counts' `first_at` and `last_at`, were UTC
text of 26 bytes (`YYYY-MM-DD HH:MM:SS.ffffff`); they become 8-byte integers
(`MicrosecondTime`), as the latest times already are. The time is in two of the events'
indexes: each entry of the one by contact and time was twice the size it is now. Each table
is created again from its own definition with its rows, converted, and its indexes (nothing
refers to them); with many events this takes minutes. PostgreSQL: no change (`timestamptz`).

Revision ID: 0029
Revises: 0028
Create Date: 2026-11-24
"""

from __future__ import annotations

import re
from collections.abc import Callable

from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None

TIMES = {"events": ("timestamp", "received_at"), "event_daily_counts": ("first_at", "last_at")}


def _to_micros(column: str) -> str:
    # The whole seconds alone: strftime rounds a fraction to the millisecond first, so that
    # .9995 and above would count one second more.
    return (
        f"CAST(strftime('%s', substr({column}, 1, 19)) AS INTEGER) * 1000000"
        f" + CAST(substr({column}, 21, 6) AS INTEGER)"
    )


def _to_text(column: str) -> str:
    below = f"(({column} % 1000000 + 1000000) % 1000000)"
    return (
        f"strftime('%Y-%m-%d %H:%M:%S', ({column} - {below}) / 1000000, 'unixepoch')"
        f" || '.' || substr('00000' || {below}, -6)"
    )


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for table, columns in TIMES.items():
            _rebuild(table, columns, "DATETIME", "BIGINT", _to_micros)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for table, columns in TIMES.items():
            _rebuild(table, columns, "BIGINT", "DATETIME", _to_text)


def _rebuild(
    table: str, times: tuple[str, ...], was: str, becomes: str, convert: Callable[[str], str]
) -> None:
    """Create the table again from its own definition, its time columns of type `becomes`,
    with its rows (their times converted) and indexes."""
    connection = op.get_bind()
    create = connection.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).scalar_one()
    indexes = (
        connection.exec_driver_sql(
            "SELECT sql FROM sqlite_master"
            " WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL",
            (table,),
        )
        .scalars()
        .all()
    )
    columns = [row[1] for row in connection.exec_driver_sql(f'PRAGMA table_info("{table}")')]
    for column in times:
        create, found = re.subn(rf"\b{column}\s+{was}\b", f"{column} {becomes}", create)
        assert found == 1, (table, column, create)
    old = f"_{table}_before_0029"
    connection.exec_driver_sql(f'ALTER TABLE "{table}" RENAME TO "{old}"')
    connection.exec_driver_sql(create)
    values = ", ".join(convert(f'"{c}"') if c in times else f'"{c}"' for c in columns)
    names = ", ".join(f'"{c}"' for c in columns)
    connection.exec_driver_sql(
        f'INSERT INTO "{table}" ({names}) SELECT {values} FROM "{old}"'  # noqa: S608 (TIMES)
    )
    connection.exec_driver_sql(f'DROP TABLE "{old}"')
    for index in indexes:
        connection.exec_driver_sql(index)
