"""Where accepted requests wait: on SQLite a file of its own, on PostgreSQL the database."""

from __future__ import annotations

import sqlite3
import threading
from contextlib import closing
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from sodate.db.engine import Database
from sodate.events.inbox import InboxFileTooNew, create_inbox_tables, sqlite_inbox_url
from sodate.runtime import Runtime
from sodate.system import jobs as system_jobs
from sodate.system.jobs import wal_checkpointer
from sodate.worker_types import ServiceContext
from sodate.workspaces.schemas import Created
from tests.events.helpers import inbox_count, process_all, send


def test_the_sqlite_inbox_is_a_file_beside_the_database() -> None:
    def inbox_file(url: str) -> str | None:
        return sa.engine.make_url(sqlite_inbox_url(url)).database

    assert inbox_file("sqlite:///var/sodate.db") == "var/sodate-inbox.db"
    assert inbox_file("sqlite:////srv/データ/crm") == "/srv/データ/crm-inbox.db"
    assert inbox_file("sqlite:////srv/100%/a.db") == "/srv/100%/a-inbox.db"
    assert sqlite_inbox_url("sqlite://") == "sqlite://"


def test_the_inbox_has_its_own_file_on_sqlite_and_is_the_database_on_postgresql(
    runtime: Runtime,
) -> None:
    if runtime.db.dialect != "sqlite":
        assert runtime.inbox is runtime.db
        return
    database = runtime.db.engine.url.database
    assert database is not None
    assert runtime.inbox.engine.url.database == database.removesuffix(".db") + "-inbox.db"
    with runtime.inbox.read() as session:
        assert session.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
        tables = set(sa.inspect(session.connection()).get_table_names())
    assert tables == {"event_inbox"}
    with runtime.db.read() as session:
        assert "event_inbox" not in sa.inspect(session.connection()).get_table_names()


def test_the_checkpointer_copies_the_inbox_log_into_its_file(
    client: TestClient, runtime: Runtime, workspace: Created
) -> None:
    if runtime.inbox is runtime.db:
        pytest.skip("PostgreSQL: no log of SQLite's to copy")
    # Opened immutable, SQLite reads the database file alone, not the log.
    file_only = f"file:{runtime.inbox.engine.url.database}?immutable=1"

    def requests_in_file() -> int:
        with closing(sqlite3.connect(file_only, uri=True)) as connection:
            return int(connection.execute("SELECT count(*) FROM event_inbox").fetchone()[0])

    context = ServiceContext(runtime=runtime, worker_id="test", stop=threading.Event())
    wal_checkpointer.run(context)
    send(client, workspace.write_key.key, "track", {"userId": "u-1", "event": "Signed Up"})
    assert inbox_count(runtime) == 1
    assert requests_in_file() == 0
    wal_checkpointer.run(context)
    assert requests_in_file() == 1


def test_the_checkpointer_gives_back_the_pages_processed_requests_left_free(
    client: TestClient, runtime: Runtime, workspace: Created, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite keeps the pages it frees; the inbox file gives them back, so that a backlog
    takes disk space only while it waits."""
    if runtime.inbox is runtime.db:
        pytest.skip("PostgreSQL: the inbox is a table of the database")
    monkeypatch.setattr(system_jobs, "INBOX_KEPT_FREE_BYTES", 10 * 8192)

    def pragma(name: str) -> int:
        with runtime.inbox.read() as session:
            return int(session.execute(sa.text(f"PRAGMA {name}")).scalar_one())

    assert pragma("auto_vacuum") == 2  # incremental
    page = {"path": "/products/1", "note": "展示会" * 3_000}  # 27 KB of UTF-8
    for request in range(5):
        batch = [
            {"type": "page", "userId": f"u-{request}", "properties": {**page, "n": n}}
            for n in range(15)
        ]
        send(client, workspace.write_key.key, "batch", {"batch": batch})
    assert pragma("page_size") == 8192
    full = pragma("page_count")
    assert process_all(runtime) == 75
    assert pragma("freelist_count") > 150  # 2 MB of requests
    context = ServiceContext(runtime=runtime, worker_id="test", stop=threading.Event())
    wal_checkpointer.run(context)
    assert pragma("freelist_count") == 10
    assert pragma("page_count") < full - 150
    send(client, workspace.write_key.key, "track", {"userId": "u-1", "event": "Signed Up"})
    assert inbox_count(runtime) == 1


def test_an_inbox_file_of_a_later_schema_is_refused(tmp_path: Path) -> None:
    """The database's migrations do not reach the inbox file: its version says what it is."""
    url = f"sqlite:///{tmp_path / 'sodate.db'}"
    inbox = Database.from_url(sqlite_inbox_url(url))
    create_inbox_tables(inbox)
    with inbox.engine.begin() as connection:
        assert connection.exec_driver_sql("PRAGMA user_version").scalar_one() == 1
        connection.exec_driver_sql("PRAGMA user_version = 2")
    with pytest.raises(InboxFileTooNew, match=r"sodate-inbox\.db: inbox schema version 2"):
        create_inbox_tables(inbox)
    inbox.dispose()
