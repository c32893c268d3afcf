"""Keyset paging: a page of an ordered statement and the cursor of the next one."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session


def fetch_page(
    session: Session, statement: sa.Select[Any], *, limit: int
) -> tuple[list[Any], str | None]:
    """Up to `limit` rows of an ordered statement, and the next page's cursor if there is one.

    The cursor is the last row's id; one row more than the page is read to know if it exists.
    """
    rows = list(session.execute(statement.limit(limit + 1)).scalars())
    page = rows[:limit]
    return page, str(page[-1].id) if len(rows) > limit else None
