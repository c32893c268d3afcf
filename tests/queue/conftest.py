"""Fixtures of the job queue tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sodate.db.engine import Database
from sodate.runtime import Runtime
from tests.support.plugin import create_effects_table, drop_effects_table


@pytest.fixture
def effects(runtime: Runtime) -> Iterator[Database]:
    """The `test_job_effects` table the test handlers write to; yields the database to read it."""
    create_effects_table(runtime.db)
    yield runtime.db
    drop_effects_table(runtime.db)


@pytest.fixture(autouse=True)
def _clock_started(runtime: Runtime) -> None:
    """Create the manual clock's row up front.

    Its first read writes the row in a transaction of its own, which must not happen inside
    another write transaction (as `tests.conftest.new_workspace` would do): with SQLite's
    in-process write lock that nesting waits for itself until it times out.
    """
    runtime.clock.now()
