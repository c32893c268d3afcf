"""Fixtures: every database test runs on SQLite and, when available, on PostgreSQL.

`make test` starts a throw-away PostgreSQL cluster and exports SODATE_TEST_POSTGRES_URL; in CI
(or with SODATE_TEST_REQUIRE_POSTGRES=1) its absence is an error, not a skip. The schema is built
once per database by running the migrations; each test starts from empty tables.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from sodate.app import create_app
from sodate.db import migrate
from sodate.db.engine import Database, create_db_engine
from sodate.db.metadata import metadata
from sodate.events.inbox import create_inbox_tables, sqlite_inbox_url
from sodate.events.models import InboxBase
from sodate.runtime import Runtime
from sodate.settings import Settings
from sodate.workspaces import service as workspaces
from sodate.workspaces.schemas import Created, WorkspaceCreate

TEST_SECRET = "test-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
POSTGRES_URL = os.environ.get("SODATE_TEST_POSTGRES_URL")
REQUIRE_POSTGRES = (
    os.environ.get("CI") == "true" or os.environ.get("SODATE_TEST_REQUIRE_POSTGRES") == "1"
)


def pytest_configure(config: pytest.Config) -> None:
    if REQUIRE_POSTGRES and not POSTGRES_URL:
        raise pytest.UsageError(
            "PostgreSQL is required here: run the suite through `make test` "
            "(scripts/with-test-postgres sets SODATE_TEST_POSTGRES_URL)"
        )


def _database_params() -> list[Any]:
    params: list[Any] = [pytest.param("sqlite", id="sqlite")]
    if POSTGRES_URL:
        params.append(pytest.param("postgresql", id="postgresql"))
    return params


@pytest.fixture(scope="session", params=_database_params())
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated database, built once per session for each kind."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'sodate.db'}"
    else:
        assert POSTGRES_URL
        url = POSTGRES_URL
        _reset_postgres(url)
    engine = create_db_engine(url)
    try:
        migrate.upgrade(engine)
    finally:
        engine.dispose()
    return url


def _reset_postgres(url: str) -> None:
    engine = create_db_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP SCHEMA public CASCADE")
        connection.exec_driver_sql("CREATE SCHEMA public")
    engine.dispose()


def make_settings(database_url: str, data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "data_dir": data_dir,
        "secret_key": TEST_SECRET,
        "clock": "manual",
        "clock_start": "2026-04-01T00:00:00+00:00",
        "job_backoff_base_seconds": 60,
        "log_format": "console",
    }
    values.update(overrides)
    return Settings(**values)


def truncate_all(url: str) -> None:
    """Empty every table: the database's, and on SQLite the inbox file's too."""
    engine = create_db_engine(url)
    inbox = [table.name for table in InboxBase.metadata.sorted_tables]
    tables = [table.name for table in reversed(metadata.sorted_tables)]
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            every = ", ".join([*tables, *inbox])
            connection.exec_driver_sql(f"TRUNCATE {every} RESTART IDENTITY CASCADE")
        else:
            for table in tables:
                connection.execute(sa.text(f"DELETE FROM {table}"))
    engine.dispose()
    if url.startswith("sqlite"):
        inbox_file = Database.from_url(sqlite_inbox_url(url))
        create_inbox_tables(inbox_file)
        with inbox_file.transaction() as session:
            for table in inbox:
                session.execute(sa.text(f"DELETE FROM {table}"))
        inbox_file.dispose()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    truncate_all(database_url)
    return make_settings(database_url, tmp_path)


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    runtime = Runtime.create(settings)
    yield runtime
    runtime.close()


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime)) as test_client:
        yield test_client


def new_workspace(runtime: Runtime, name: str = "株式会社サンプル") -> Created:
    now = runtime.clock.now()
    with runtime.db.transaction() as session:
        return workspaces.create_workspace_with_keys(session, WorkspaceCreate(name=name), now=now)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def workspace(runtime: Runtime) -> Created:
    return new_workspace(runtime)


@pytest.fixture
def admin_headers(workspace: Created) -> dict[str, str]:
    return bearer(workspace.admin_key.key)
