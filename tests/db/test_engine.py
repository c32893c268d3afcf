from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import StatementError

from sodate.clock import ClockState
from sodate.db.base import NaiveDatetimeError
from sodate.runtime import Runtime


def test_sqlite_connections_use_wal_foreign_keys_and_busy_timeout(runtime: Runtime) -> None:
    if runtime.db.dialect != "sqlite":
        pytest.skip("SQLite pragmas")
    with runtime.db.read() as session:
        assert session.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
        assert session.execute(sa.text("PRAGMA foreign_keys")).scalar() == 1
        assert session.execute(sa.text("PRAGMA busy_timeout")).scalar() == 30_000


def test_naive_datetimes_are_refused(runtime: Runtime) -> None:
    with pytest.raises(StatementError) as raised, runtime.db.transaction() as session:
        session.add(ClockState(id=2, now=datetime(2026, 1, 1)))  # noqa: DTZ001 - the point
        session.flush()
    assert isinstance(raised.value.orig, NaiveDatetimeError)


def test_datetimes_come_back_aware_in_utc(runtime: Runtime) -> None:
    tokyo = timezone(timedelta(hours=9))
    with runtime.db.transaction() as session:
        session.add(ClockState(id=2, now=datetime(2026, 4, 1, 9, 0, tzinfo=tokyo)))
    with runtime.db.read() as session:
        stored = session.scalar(sa.select(ClockState.now).where(ClockState.id == 2))
    assert stored == datetime(2026, 4, 1, 0, 0, tzinfo=UTC)
    assert stored is not None
    assert stored.utcoffset() == timedelta(0)


def test_write_transaction_rolls_back_on_error(runtime: Runtime) -> None:
    with pytest.raises(RuntimeError), runtime.db.transaction() as session:
        session.add(ClockState(id=2, now=datetime(2026, 4, 1, tzinfo=UTC)))
        session.flush()
        raise RuntimeError("boom")
    with runtime.db.read() as session:
        assert session.get(ClockState, 2) is None
