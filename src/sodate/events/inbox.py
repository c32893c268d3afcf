"""Where the inbox of accepted tracking requests lives.

SQLite has one writer per database file. With the inbox in the database, every accepted
request waited for the event processor's batch to commit, and the processor's batches stayed
small because requests could not arrive while it worked: over HTTP, accepting and processing
took turns (`BENCHMARKS.md`, "Tracking ingest"). So on SQLite the inbox is a file of its own
beside the database (`sodate-inbox.db` beside `sodate.db`), with its own writer. PostgreSQL
locks rows, not the database, and keeps the inbox as a table of the database.

On SQLite the processor deletes a batch's requests from the inbox file after its transaction
in the database commits; `sodate.events.models.InboxRequest` says why a crash between the two
is harmless.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from sodate.db.engine import Database
from sodate.events.models import InboxBase

INBOX_CACHE_KIB = 2048
"""Each connection's page cache for the inbox file: SQLite's default, not the database's 16 MB
(`sodate.db.engine.SQLITE_CACHE_KIB`). A request's row is written once, read once by the
processor and deleted, so a cache keeps nothing that is read again; a large one only held
what the last batch read, in every pooled connection of both processes."""

ERASE_DELETED_REQUESTS = False
"""Whether SQLite overwrites a processed request's pages with zeros when it is deleted
(`create_db_engine`'s `erase_deleted`). Not: the messages live on as the events they became,
which are erased with their contact, and zeroing a batch's requests cost the processor as much
again as deleting them (0.6 of 0.7 µs an event, `BENCHMARKS.md`)."""


def sqlite_inbox_url(database_url: str) -> str:
    """The URL of the inbox file beside an SQLite database file; an in-memory database's inbox
    is in memory too."""
    url = sa.engine.make_url(database_url)
    if not url.database or url.database == ":memory:":
        return database_url
    path = Path(url.database)
    inbox = path.with_name(f"{path.stem}-inbox{path.suffix or '.db'}")
    return url.set(database=str(inbox)).render_as_string(hide_password=False)


def open_inbox(db: Database, database_url: str) -> Database:
    """The database that holds the inbox: `db` itself on PostgreSQL; on SQLite the inbox file,
    its table created if it is new."""
    if db.dialect != "sqlite":
        return db
    inbox = Database.from_url(
        sqlite_inbox_url(database_url),
        cache_kib=INBOX_CACHE_KIB,
        erase_deleted=ERASE_DELETED_REQUESTS,
    )
    create_inbox_tables(inbox)
    return inbox


INBOX_SCHEMA_VERSION = 1
"""The inbox file's schema, kept in its `PRAGMA user_version`. The file is not the database's,
so the database's migrations do not reach it: a change to its tables raises the version and
adds here the step that upgrades a file of the version before."""


class InboxFileTooNew(RuntimeError):
    """The inbox file was made by a later Sodate."""


def create_inbox_tables(inbox: Database) -> None:
    """Create the inbox file's tables if it is new; refuse a file of an unknown version.

    A file already at this version costs one read: every process opens the inbox at start."""
    with inbox.driver() as driver:
        version = driver.execute("PRAGMA user_version").fetchone()[0]
        if version == INBOX_SCHEMA_VERSION:
            return
        empty = driver.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
        if empty and driver.execute("PRAGMA auto_vacuum").fetchone()[0] == 0:
            # SQLite reuses the pages it frees but keeps them: a backlog of a million messages
            # would leave a file of 600 MB for good. With incremental auto-vacuum the file can
            # give them back (`Database.release_free_pages`, which the `wal-checkpointer`
            # calls); it must be chosen before the first table, or it takes a VACUUM.
            driver.executescript("PRAGMA auto_vacuum=INCREMENTAL; VACUUM;")
    # One write transaction: two processes starting at once (`sodate up` and its services)
    # queue on the file's lock instead of both creating the table.
    with inbox.engine.begin() as connection:
        version = connection.exec_driver_sql("PRAGMA user_version").scalar_one()
        if version > INBOX_SCHEMA_VERSION:
            raise InboxFileTooNew(
                f"{inbox.engine.url.database}: inbox schema version {version}, and this Sodate"
                f" knows versions up to {INBOX_SCHEMA_VERSION}"
            )
        if version < INBOX_SCHEMA_VERSION:
            InboxBase.metadata.create_all(connection)
            connection.exec_driver_sql(f"PRAGMA user_version = {INBOX_SCHEMA_VERSION}")
