"""Lookups by many values written for SQLite's planner, which keeps no statistics.

A statement that looks rows up by ids or by contact also names their workspace, as every
statement does. Without statistics SQLite prefers any index on `workspace_id =` to an `IN`
list of four or more values, and then reads every row of the workspace for a handful: 21 ms
at 300,000 contacts against 0.1 by id, once a batch. Comparing `workspace_id || ''` hides
the column from the planner, so the workspace stays a check on the rows the values find.
PostgreSQL plans with statistics and is not hurt. Statements written as SQL text spell it
out; `tests/test_query_plans.py` checks the plans of the pipeline's lookups.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import InstrumentedAttribute


def workspace_check(
    column: sa.ColumnElement[str] | InstrumentedAttribute[str], workspace_id: str
) -> sa.ColumnElement[bool]:
    """`column = workspace_id`, answered by no index on the column."""
    return column.concat("") == workspace_id
