"""SQLite: the per-contact tables keyed by their own columns, without a rowid

`segment_members`, `contact_scores`, `contact_score_rules`, `score_daily_awards` and
`event_daily_counts` are written and read by their primary keys. As rowid tables, SQLite kept
each row twice over: in the table by a rowid nobody uses, and in the primary key's own index,
so every insert wrote both and every lookup went through the index to the table. Without a
rowid the table is its primary key's tree (PostgreSQL: no change).

Revision ID: 0026
Revises: 0025
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Callable

from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

TABLES = (
    "segment_members",
    "contact_scores",
    "contact_score_rules",
    "score_daily_awards",
    "event_daily_counts",
)
WITHOUT_ROWID = " WITHOUT ROWID"


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for table in TABLES:
            _rebuild(table, lambda sql: sql + WITHOUT_ROWID)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for table in TABLES:
            _rebuild(table, lambda sql: sql.removesuffix(WITHOUT_ROWID))


def _rebuild(table: str, definition: Callable[[str], str]) -> None:
    """Create the table again from its own definition, changed by `definition`, with its rows
    and indexes (nothing refers to these tables)."""
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
    old = f"_{table}_before_0026"
    connection.exec_driver_sql(f'ALTER TABLE "{table}" RENAME TO "{old}"')
    connection.exec_driver_sql(definition(create))
    connection.exec_driver_sql(f'INSERT INTO "{table}" SELECT * FROM "{old}"')  # noqa: S608 (TABLES)
    connection.exec_driver_sql(f'DROP TABLE "{old}"')
    for index in indexes:
        connection.exec_driver_sql(index)
