"""How the index that finds stored message ids grows and costs on SQLite.

Inserts `--rows` events with random message ids (uuid4, as the SDKs make them) into two
copies of a table shaped like `events`, in batches of `--batch` rows like the pipeline's: one
indexed by (workspace, message id) text, as before migration 0014, the other by the id's
64-bit hash (`message_key`). Prints each index's size and the insert cost per row of the last
`--timed` rows, when the table is large. Both tables also carry the timeline's
(contact, timestamp) index, its time an integer of microseconds as SQLite has stored it since
migration 0029, so the figure is an insert's real company.

    .venv/bin/python bench/message_index.py --rows 1000000
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import tempfile
import time
import uuid
from pathlib import Path

from sodate.events.models import message_key

START_MICROS = 1_795_392_000_000_000  # 2026-11-23 00:00 UTC
INDEXES = {
    "text (workspace_id, message_id)": "CREATE UNIQUE INDEX ix_message ON events"
    " (workspace_id, message_id)",
    "hash (message_key)": "CREATE INDEX ix_message ON events (message_key)",
}


def run(
    path: Path, index_sql: str, rows: int, batch: int, timed: int, seed: int
) -> tuple[float, float]:
    """The insert cost of the last `timed` rows (µs/row) and the message index's size (MB)."""
    ids = random.Random(seed)
    db = sqlite3.connect(path)
    db.executescript(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
        "CREATE TABLE events (id INTEGER PRIMARY KEY, workspace_id TEXT, contact_id INTEGER,"
        " message_id TEXT, message_key INTEGER, timestamp INTEGER);"
        "CREATE INDEX ix_contact ON events (contact_id, timestamp);" + index_sql
    )
    seconds = 0.0
    for first in range(0, rows, batch):
        chunk = []
        for n in range(first, min(rows, first + batch)):
            message_id = str(uuid.UUID(int=ids.getrandbits(128), version=4))
            chunk.append(
                (
                    "9f3c2a7e5b1d4c6f8a0e2b4d6f8a0c1e",
                    ids.randrange(10_000),
                    message_id,
                    message_key(message_id),
                    START_MICROS + n % 60 * 1_000_000,
                )
            )
        started = time.perf_counter()
        with db:
            db.executemany(
                "INSERT INTO events (workspace_id, contact_id, message_id, message_key, timestamp)"
                " VALUES (?, ?, ?, ?, ?)",
                chunk,
            )
        if first >= rows - timed:
            seconds += time.perf_counter() - started
    (pages,) = db.execute("SELECT sum(pgsize) FROM dbstat WHERE name = 'ix_message'").fetchone()
    db.close()
    return seconds / timed * 1e6, pages / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--timed", type=int, default=100_000, help="rows timed at the end")
    parser.add_argument("--batch", type=int, default=2000, help="rows per transaction")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if not 0 < args.timed <= args.rows or args.timed % args.batch:
        parser.error("--timed must be a multiple of --batch, at most --rows")
    print(f"{args.rows:,} rows in batches of {args.batch:,}; the last {args.timed:,} timed")
    print(f"{'message index':<34} {'insert µs/row':>13} {'index MB':>9}")
    for name, index_sql in INDEXES.items():
        with tempfile.TemporaryDirectory() as directory:
            cost, size = run(
                Path(directory) / "bench.db",
                index_sql,
                args.rows,
                args.batch,
                args.timed,
                args.seed,
            )
        print(f"{name:<34} {cost:>13.1f} {size:>9.1f}")


if __name__ == "__main__":
    main()
