"""Statements whose spelling differs between SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_ignoring_conflicts(
    session: Session,
    table: sa.Table,
    rows: Sequence[dict[str, Any]],
    *,
    conflict_columns: Sequence[str],
) -> int:
    """Insert the rows whose unique key is new; return how many were inserted."""
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    # Count what RETURNING gives back: psycopg reports -1 as a multi-row insert's rowcount.
    statement = insert.on_conflict_do_nothing(index_elements=list(conflict_columns)).returning(
        *table.primary_key.columns
    )
    return len(session.execute(statement, list(rows)).all())
