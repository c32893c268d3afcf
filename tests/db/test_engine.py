from __future__ import annotations

import functools
import sqlite3
import threading
import time
from contextlib import closing
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import StatementError

from sodate.clock import ClockState
from sodate.db.base import NaiveDatetimeError
from sodate.db.engine import (
    SQLITE_CACHE_KIB,
    SQLITE_IDLE_CONNECTIONS,
    Database,
    create_db_engine,
)
from sodate.events.inbox import INBOX_CACHE_KIB
from sodate.runtime import Runtime


def test_sqlite_connections_use_wal_foreign_keys_busy_timeout_and_a_larger_cache(
    runtime: Runtime,
) -> None:
    if runtime.db.dialect != "sqlite":
        pytest.skip("SQLite pragmas")
    with runtime.db.read() as session:
        assert session.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
        assert session.execute(sa.text("PRAGMA foreign_keys")).scalar() == 1
        assert session.execute(sa.text("PRAGMA busy_timeout")).scalar() == 30_000
        assert session.execute(sa.text("PRAGMA wal_autocheckpoint")).scalar() == 10_000
        assert session.execute(sa.text("PRAGMA cache_size")).scalar() == -SQLITE_CACHE_KIB


def test_the_sqlite_inbox_keeps_a_small_page_cache(runtime: Runtime) -> None:
    if runtime.db.dialect != "sqlite":
        pytest.skip("SQLite pragmas")
    with runtime.inbox.read() as session:
        assert session.execute(sa.text("PRAGMA cache_size")).scalar() == -INBOX_CACHE_KIB
    assert INBOX_CACHE_KIB < SQLITE_CACHE_KIB


def test_the_database_erases_what_is_deleted_and_the_inbox_does_not(runtime: Runtime) -> None:
    if runtime.db.dialect != "sqlite":
        pytest.skip("SQLite pragmas")
    with runtime.db.read() as session:
        assert session.execute(sa.text("PRAGMA secure_delete")).scalar() == 1
    with runtime.inbox.read() as session:
        assert session.execute(sa.text("PRAGMA secure_delete")).scalar() == 0


@pytest.mark.parametrize("erase_deleted", [True, False])
def test_deleted_text_is_gone_from_the_file_only_when_erased(
    tmp_path: Path, erase_deleted: bool
) -> None:
    path = tmp_path / "erase.db"
    engine = create_db_engine(f"sqlite:///{path}", erase_deleted=erase_deleted)
    secret = "佐藤花子-090-1234-5678-" * 20
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE people (id INTEGER PRIMARY KEY, note TEXT)")
            connection.exec_driver_sql("INSERT INTO people (note) VALUES (?)", (secret,))
            connection.exec_driver_sql("INSERT INTO people (note) VALUES ('kept')")
        with engine.begin() as connection:
            connection.exec_driver_sql("DELETE FROM people WHERE note = ?", (secret,))
    finally:
        engine.dispose()
    with closing(sqlite3.connect(path)) as driver:
        driver.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert (secret.encode() in path.read_bytes()) is not erase_deleted


def test_sqlite_pools_keep_one_idle_connection_the_first_given_back(
    tmp_path: Path,
) -> None:
    db = Database.from_url(f"sqlite:///{tmp_path / 'pool.db'}")
    try:
        held = [db.engine.raw_connection() for _ in range(3)]
        drivers = [connection.driver_connection for connection in held]
        for connection in held:
            connection.close()
        # The first given back stays open; the two given back after it were closed.
        pool = db.engine.pool
        assert isinstance(pool, sa.pool.QueuePool)
        assert pool.checkedin() == SQLITE_IDLE_CONNECTIONS == 1
        again = db.engine.raw_connection()
        try:
            assert again.driver_connection is drivers[0]
        finally:
            again.close()
        closed = drivers[2]
        assert closed is not None
        with pytest.raises(sqlite3.ProgrammingError):
            closed.execute("SELECT 1")
    finally:
        db.engine.dispose()


def test_new_sqlite_databases_have_pages_of_8_kb(runtime: Runtime, tmp_path: Path) -> None:
    if runtime.db.dialect != "sqlite":
        pytest.skip("SQLite pragmas")
    for db in (runtime.db, runtime.inbox):
        with db.read() as session:
            assert session.execute(sa.text("PRAGMA page_size")).scalar() == 8192
    # A database made with SQLite's default keeps its pages.
    older = tmp_path / "older.db"
    with closing(sqlite3.connect(older)) as connection:
        connection.execute("CREATE TABLE t (x)")
    db = Database.from_url(f"sqlite:///{older}")
    try:
        with db.transaction() as session:
            session.execute(sa.text("INSERT INTO t VALUES (1)"))
        with db.read() as session:
            assert session.execute(sa.text("PRAGMA page_size")).scalar() == 4096
            assert session.execute(sa.text("SELECT x FROM t")).scalar() == 1
    finally:
        db.engine.dispose()


def _rows_in_file(runtime: Runtime) -> int:
    """The clock rows in the database file itself: opened immutable, SQLite reads the file
    alone, not the log."""
    file_only = f"file:{runtime.db.engine.url.database}?immutable=1"
    with closing(sqlite3.connect(file_only, uri=True)) as connection:
        return int(connection.execute("SELECT count(*) FROM clock_state").fetchone()[0])


def test_checkpoint_copies_the_log_into_the_database(runtime: Runtime) -> None:
    if runtime.db.dialect != "sqlite":
        assert runtime.db.checkpoint() == 0
        return
    rows_in_file = functools.partial(_rows_in_file, runtime)
    runtime.db.checkpoint()
    before = rows_in_file()
    with runtime.db.transaction() as session:
        session.add_all(
            ClockState(id=n, now=datetime(2026, 4, 1, tzinfo=UTC)) for n in range(3, 303)
        )
    assert rows_in_file() == before  # the rows are in the log only
    assert runtime.db.checkpoint() == 0  # nothing left to copy
    assert rows_in_file() == before + 300


def test_checkpointing_copies_the_log_while_a_long_write_goes_on(runtime: Runtime) -> None:
    if runtime.db.dialect != "sqlite":
        with runtime.db.checkpointing(0.01):
            pass
        return
    rows_in_file = functools.partial(_rows_in_file, runtime)
    runtime.db.checkpoint()
    before = rows_in_file()
    threads = threading.active_count()
    with runtime.db.checkpointing(0.01):
        with runtime.db.transaction() as session:
            session.add_all(
                ClockState(id=n, now=datetime(2026, 4, 1, tzinfo=UTC)) for n in range(3, 303)
            )
        deadline = time.monotonic() + 10
        while rows_in_file() == before and time.monotonic() < deadline:
            time.sleep(0.01)
        assert rows_in_file() == before + 300  # copied with no checkpoint called here
    assert threading.active_count() == threads  # its thread ended with the block
    with runtime.db.transaction() as session:
        session.add(ClockState(id=303, now=datetime(2026, 4, 1, tzinfo=UTC)))
    time.sleep(0.05)
    assert rows_in_file() == before + 300  # and no longer copies


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


def test_a_read_sees_one_snapshot_whatever_commits_meanwhile(runtime: Runtime) -> None:
    """A read of several statements (a preview reads the kept event filters, then counts
    with them) sees the database as its first statement saw it."""
    count = sa.select(sa.func.count()).select_from(ClockState)
    with runtime.db.read() as session:
        before = session.execute(count).scalar_one()
        with runtime.db.transaction() as writer:
            writer.add(ClockState(id=3, now=datetime(2026, 4, 1, tzinfo=UTC)))
        assert session.execute(count).scalar_one() == before
    with runtime.db.read() as session:
        assert session.execute(count).scalar_one() == before + 1
