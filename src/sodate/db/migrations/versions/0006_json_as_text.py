"""JSON documents on SQLite stored as UTF-8 text rather than \\u escapes

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22

The condition language reads traits and properties with SQLite's JSON paths, which match keys
against their stored text; documents SQLAlchemy wrote with Python's default ASCII escapes are
written again as UTF-8. PostgreSQL's JSONB has no such difference.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_COLUMNS = (
    ("contacts", "traits"),
    ("companies", "traits"),
    ("events", "properties"),
    ("contact_merges", "details"),
)
_BATCH = 1000


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    for table, column in _COLUMNS:
        last = 0
        while True:
            rows = bind.execute(
                sa.text(
                    f"SELECT id, {column} FROM {table}"  # noqa: S608 (names from the list above)
                    f" WHERE id > :last AND instr({column}, '\\u') > 0 ORDER BY id LIMIT {_BATCH}"
                ),
                {"last": last},
            ).all()
            if not rows:
                break
            bind.execute(
                sa.text(f"UPDATE {table} SET {column} = :document WHERE id = :id"),  # noqa: S608
                [
                    {"id": row_id, "document": json.dumps(json.loads(text), ensure_ascii=False)}
                    for row_id, text in rows
                ],
            )
            last = rows[-1][0]


def downgrade() -> None:
    # Escaped and unescaped JSON mean the same documents; there is nothing to undo.
    pass
