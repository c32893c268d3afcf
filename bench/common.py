"""What every benchmark needs: a fresh, migrated database and a fixed secret."""

from __future__ import annotations

import math
import sys
from pathlib import Path

from sodate.db import migrate
from sodate.db.engine import create_db_engine
from sodate.events.inbox import sqlite_inbox_url

ROOT = Path(__file__).resolve().parents[1]
SODATE = str(Path(sys.executable).parent / "sodate")
SECRET = "bench-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"


def reset(url: str) -> None:
    """Empty the database (delete the SQLite files, drop PostgreSQL's schema), migrate it."""
    if url.startswith("sqlite:///"):
        for file in (url, sqlite_inbox_url(url)):
            for suffix in ("", "-wal", "-shm"):
                Path(file.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)
    engine = create_db_engine(url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.exec_driver_sql("DROP SCHEMA public CASCADE")
            connection.exec_driver_sql("CREATE SCHEMA public")
    migrate.upgrade(engine)
    engine.dispose()


def status_mb(field: str, pid: int | str = "self") -> float | None:
    """A memory figure of `/proc/<pid>/status` (`VmRSS`, `VmHWM`) in MB; None where there is
    no such process or no /proc (not Linux)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return None


def reset_peak_rss(pid: int | str = "self") -> bool:
    """Linux: make a process's VmHWM start again from its current RSS (`echo 5 >
    /proc/<pid>/clear_refs`); False where it cannot be."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile; nan when there is nothing to rank."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]
