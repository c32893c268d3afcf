"""What every benchmark needs: a fresh, migrated database and a fixed secret."""

from __future__ import annotations

import sys
from pathlib import Path

from sodate.db import migrate
from sodate.db.engine import create_db_engine

ROOT = Path(__file__).resolve().parents[1]
SODATE = str(Path(sys.executable).parent / "sodate")
SECRET = "bench-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"


def reset(url: str) -> None:
    """Empty the database (delete an SQLite file, drop PostgreSQL's schema) and migrate it."""
    if url.startswith("sqlite:///"):
        for suffix in ("", "-wal", "-shm"):
            Path(url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)
    engine = create_db_engine(url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.exec_driver_sql("DROP SCHEMA public CASCADE")
            connection.exec_driver_sql("CREATE SCHEMA public")
    migrate.upgrade(engine)
    engine.dispose()
