"""Engines and transactions for SQLite and PostgreSQL.

SQLite runs in WAL mode with foreign keys and a busy timeout. Its write transactions start with
`BEGIN IMMEDIATE`, so two writers queue for the lock instead of failing when a read transaction
tries to upgrade; read-only transactions stay deferred so readers never wait for writers.
Within one process, SQLite writers also queue on a lock: SQLite's own busy handler sleeps up
to 100 ms between retries, which would turn contention between threads into latency.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 30_000
WAL_AUTOCHECKPOINT_PAGES = 10_000  # about 80 MB of log, in pages of 8 KB
SQLITE_CACHE_KIB = 16_384
"""Each connection's page cache, at most (SQLite's default is 2 MB). The event processor's
batch touches index pages all over the database, and with 2 MB it read most of them again,
and wrote dirty ones out before its commit. 16 MB processes as many events a second as 64 MB
did, imports as many rows and recomputes segments as fast, while each process of `sodate up`
holds 70-90 MB less (`BENCHMARKS.md`): a pooled connection's cache fills as it reads, and
the pages are in the operating system's cache besides."""
SQLITE_PAGE_BYTES = 8192
"""The page size of a new SQLite database (SQLite's default is 4 KB; an existing database keeps
its own). A batch of events dirties pages of every index at random places, and its commit
writes each dirty page to the log as a frame: with pages of 8 KB it writes half as many
frames, and processes 6–8 % more events a second (`BENCHMARKS.md`)."""
SQLITE_IDLE_CONNECTIONS = 1
"""SQLite connections a pool keeps open between uses; more (up to `SQLITE_MORE_CONNECTIONS`)
are opened while threads need them at once, and closed when given back. Each open connection
keeps its page cache, up to `SQLITE_CACHE_KIB`, and a cache is stale anyway once another
connection has written: the services process held four, most of them idle with a full cache,
and with 1M contacts one fewer kept its peak RSS under 300 MB (`BENCHMARKS.md`, "Memory with 1M
contacts"). The pool keeps the first connection given back to it when it holds none, and
closes those given back while it holds one: opening one again costs about a millisecond. In an
ingest run of 100,000 events the services process reopened only the log checkpointer's,
every few seconds; the event processor kept its connection and its cache throughout."""
SQLITE_MORE_CONNECTIONS = 20
_BEGIN_OPTION = "sodate_sqlite_begin"


class WriteLockTimeout(TimeoutError):
    """No write lock came free within the busy timeout: nothing was written."""


def json_text(document: Any) -> str:
    """JSON as both databases store it: UTF-8 text, not `\\u` escapes.

    SQLite's JSON paths (`traits -> '$."役職"'`) match a key against its text as stored, so a
    key written as escapes could not be found by the conditions compiled to SQL.
    """
    return json.dumps(document, ensure_ascii=False)


def create_db_engine(
    url: str,
    *,
    pool_size: int = 10,
    cache_kib: int = SQLITE_CACHE_KIB,
    erase_deleted: bool = True,
) -> Engine:
    """An engine for the URL; `cache_kib` is each SQLite connection's page cache, at most.

    `erase_deleted`: SQLite overwrites what is deleted with zeros (`secure_delete`), so that
    deleted personal data does not linger in the file's free pages. Set, not left to how the
    system's SQLite was built (Debian's erases, SQLite's own default does not)."""
    if url.startswith("sqlite"):
        return _create_sqlite_engine(url, cache_kib, erase_deleted)
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    # psycopg prepares a statement run five times; PostgreSQL may then keep a generic plan made
    # while the tables were small (a scan of `events` for each de-duplication lookup, as the
    # table grows). Custom plans are made with the values at hand and the current statistics.
    return sa.create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        json_serializer=json_text,
        connect_args={"options": "-c plan_cache_mode=force_custom_plan"},
    )


def _create_sqlite_engine(url: str, cache_kib: int, erase_deleted: bool) -> Engine:
    database = sa.engine.make_url(url).database
    pool: dict[str, Any] = {}
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
        pool = {
            "pool_size": SQLITE_IDLE_CONNECTIONS,
            "max_overflow": SQLITE_MORE_CONNECTIONS,
        }
    engine = sa.create_engine(
        url,
        json_serializer=json_text,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        **pool,
    )

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the driver so BEGIN is ours to issue.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # Before the log mode: a database's first write fixes its page size.
        cursor.execute(f"PRAGMA page_size={SQLITE_PAGE_BYTES}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # Checkpoints are the `wal-checkpointer` service's, on its own connection and thread,
        # so that a writer's commit does not copy the log into the database first; this is the
        # backstop for when that service does not run.
        cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute(f"PRAGMA cache_size=-{cache_kib}")
        cursor.execute(f"PRAGMA secure_delete={'ON' if erase_deleted else 'OFF'}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: sa.Connection) -> None:
        mode = connection.get_execution_options().get(_BEGIN_OPTION, "IMMEDIATE")
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


class Database:
    """The engine plus the two kinds of transaction the application opens."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._write = sessionmaker(bind=engine, expire_on_commit=False)
        # A read sees one snapshot however many statements it runs (a preview reads the kept
        # event filters, then counts with them): SQLite's transactions do; PostgreSQL's at
        # REPEATABLE READ, which a transaction that only reads never fails at.
        reads = (
            {"isolation_level": "REPEATABLE READ"}
            if self.dialect == "postgresql"
            else {_BEGIN_OPTION: "DEFERRED"}
        )
        self._read = sessionmaker(bind=engine.execution_options(**reads), expire_on_commit=False)
        self._write_lock = threading.Lock() if self.dialect == "sqlite" else None
        self._writer: int | None = None

    @classmethod
    def from_url(
        cls, url: str, *, cache_kib: int = SQLITE_CACHE_KIB, erase_deleted: bool = True
    ) -> Database:
        return cls(create_db_engine(url, cache_kib=cache_kib, erase_deleted=erase_deleted))

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A write transaction: committed when the block ends, rolled back if it raises."""
        if self._write_lock is None:
            with self._write() as session, session.begin():
                yield session
            return
        if self._writer == threading.get_ident():
            # SQLite has one writer: a second write transaction in the same thread would wait
            # on the first forever.
            raise RuntimeError("a write transaction is already open in this thread")
        if not self._write_lock.acquire(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000):
            raise WriteLockTimeout("timed out waiting for the database write lock")
        self._writer = threading.get_ident()
        try:
            with self._write() as session, session.begin():
                yield session
        finally:
            self._writer = None
            self._write_lock.release()

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only transaction that never blocks on writers, on one snapshot."""
        with self._read() as session:
            try:
                yield session
            finally:
                session.rollback()

    @contextmanager
    def driver(self) -> Iterator[Any]:
        """A pooled connection's driver connection, outside any transaction: for what SQLite
        runs only there (checkpoints, `VACUUM`, `PRAGMA incremental_vacuum`)."""
        connection = self.engine.raw_connection()
        try:
            yield connection.driver_connection
        finally:
            connection.close()

    def checkpoint(self) -> int:
        """Copy SQLite's write-ahead log into the database as far as readers allow, without
        waiting for anyone; return how many pages of the log are still to copy (always 0 on
        PostgreSQL)."""
        if self.dialect != "sqlite":
            return 0
        with self.driver() as driver:
            row = driver.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if row is None or row[0] or row[1] < 0:  # busy, or not in WAL mode
            return 0
        return int(row[1] - row[2])

    @contextmanager
    def checkpointing(self, interval_seconds: float) -> Iterator[None]:
        """While the block runs, checkpoint the log every `interval_seconds` on a thread of
        its own (nothing on PostgreSQL).

        For long writes outside `sodate up`, whose `wal-checkpointer` does this: otherwise a
        commit that takes the log past `WAL_AUTOCHECKPOINT_PAGES` copies it all into the
        database first, holding up the writer for a tenth of a second or more each time.
        """
        if self._write_lock is None:
            yield
            return
        stop = threading.Event()

        def run() -> None:
            while not stop.wait(interval_seconds):
                self.checkpoint()

        thread = threading.Thread(target=run, name="sodate-checkpointer", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def release_free_pages(self, *, keep_bytes: int, most_bytes: int) -> int:
        """Give the file system back the file's free pages beyond `keep_bytes` of them, at most
        `most_bytes` at once, since moving the pages in use that lie past the new end holds the
        writer; return how many pages. Only a SQLite file made with incremental auto-vacuum has
        any to give (`sodate.events.inbox`)."""
        if self._write_lock is None:
            return 0
        # This process's writers queue on the lock, as for a transaction, rather than in
        # SQLite's busy handler, whose sleeps grow to 100 ms; and the lock comes before the
        # connection, as in a transaction, so that neither waits for the other's.
        if not self._write_lock.acquire(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000):
            raise WriteLockTimeout("timed out waiting for the database write lock")
        try:
            with self.driver() as driver:
                free = int(driver.execute("PRAGMA freelist_count").fetchone()[0])
                incremental = driver.execute("PRAGMA auto_vacuum").fetchone()[0] == 2
                page = int(driver.execute("PRAGMA page_size").fetchone()[0])
                released = min(free - keep_bytes // page, most_bytes // page)
                if not incremental or released <= 0:  # `incremental_vacuum(0)` frees them all
                    return 0
                # As a script: the driver's execute() would take one step, freeing one page.
                driver.executescript(f"PRAGMA incremental_vacuum({released});")
                return released
        finally:
            self._write_lock.release()

    def dispose(self) -> None:
        self.engine.dispose()
