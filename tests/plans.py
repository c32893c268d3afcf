"""SQLite's query plans for the statements a block of code runs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from sodate.runtime import Runtime


@contextmanager
def statements_run(runtime: Runtime, keep: Callable[[str], bool]) -> Iterator[dict[str, Any]]:
    """The statements run in the block that `keep` accepts, each once, with its parameters."""
    statements: dict[str, Any] = {}

    def remember(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if keep(statement):
            statements.setdefault(statement, params)

    sa.event.listen(runtime.db.engine, "before_cursor_execute", remember)
    try:
        yield statements
    finally:
        sa.event.remove(runtime.db.engine, "before_cursor_execute", remember)


def query_plans(runtime: Runtime, statements: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """Each statement with SQLite's plan for it, its steps joined by ` | `."""
    with runtime.db.read() as session:
        driver = session.connection().connection.driver_connection
        assert driver is not None
        cursor = driver.cursor()
        for statement, params in statements.items():
            if isinstance(params, list):  # an executemany: plan it with its first row
                params = params[0]
            plan = cursor.execute(f"EXPLAIN QUERY PLAN {statement}", params)
            yield statement, " | ".join(row[3] for row in plan)
