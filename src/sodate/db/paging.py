"""Keyset paging: a page of an ordered statement and the cursor of the next one."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session


def fetch_page(
    session: Session, statement: sa.Select[Any], *, limit: int, rows: bool = False
) -> tuple[list[Any], str | None]:
    """Up to `limit` rows of an ordered statement, and the next page's cursor if there is one.

    Entities by default; with `rows`, the rows of a Core statement (which has an `id`). The
    cursor is the last row's id; one row more than the page is read to know if it exists.
    """
    result = session.execute(statement.limit(limit + 1))
    found = list(result if rows else result.scalars())
    page = found[:limit]
    return page, str(page[-1].id) if len(found) > limit else None
