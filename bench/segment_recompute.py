"""Full recomputation of a compound segment over 1M contacts and 10M events, beside DuckDB.

    python bench/segment_recompute.py [--contacts 1000000] [--events 10000000]
                                      [--database-url URL] [--reuse] [--repeat 3] [--json]
                                      [--explain] [--filtered]

The segment is "plan is pro, at least 3 page views in the last 30 days, and no order in the
last 90 days", in the condition language (`CONDITION` below). Timed, each `--repeat` times
(best and median reported):

- "query only": `count(*)` over `sodate.conditions.sql.matching_contacts` — the SELECT that
  a preview counts and a recomputation writes from, without the writes;
- "from empty": `sodate.segments.membership.recompute` with no members yet (everyone who
  matches enters: the INSERT … SELECT, the DELETE of non-matching members, the change rows),
  in one write transaction, commit included;
- "steady": the same recomputation again at the same `now` (nobody moves): what the
  segment sweeper pays every minute for a segment that reads the clock;
- "first save": once, `sodate.segments.service.put_segment` creating the segment (which
  recomputes it from empty);
- "DuckDB": the equivalent hand-written query on the same rows in an in-memory DuckDB, in
  the same process: the analytic limit on this machine.

The data are generated once, deterministically (`--seed`), by SQL in DuckDB over `range()`
(an integer hash per row and column), and copied from there into the database under test, so
every engine holds the same rows; the matching counts are compared. Contacts: ids 1..N, traits
`{"plan", "job_title", "employees"}` (plan pro 25 %, free 50 %, enterprise 15 %, business 5 %,
missing 5 %), 1 % merged into another contact, no company; one workspace. Events: ascending
ids in time order over the 180 days before a fixed `now` (2026-11-01 03:00 UTC), half of them
spread evenly over the contacts and half skewed towards a few busy ones; Page Viewed 70 %,
Product Viewed 10 %, Email Opened 8 %, Product Added 5 %, Form Submitted 3 %, Demo Requested
2 %, Order Completed 2 %; about 200 bytes of properties and context each. After the load,
`event_latest_times` (each contact's latest times per event name, which the event pipeline
keeps) is computed from the events as a merge or migration 0012 computes it, and timed apart;
`event_daily_counts` stays empty (no condition reads it). Loading goes
through the driver: one `executemany` per 50,000 rows on SQLite (times and JSON in the text
forms the application writes), COPY … FROM STDIN (FORMAT csv) of DuckDB's CSV on PostgreSQL;
then ANALYZE (VACUUM ANALYZE on PostgreSQL, as autovacuum would after such a load).

Without --database-url it uses a fresh SQLite file in a temporary directory; with a
PostgreSQL URL (e.g. the throw-away cluster of `scripts/with-test-postgres`), the schema is
dropped and recreated; with an `sqlite:///` URL the file is recreated there and kept.
With `--reuse` and a URL, a database that an earlier run built with the same `--contacts` and
`--events` is used as it is (the load takes ~5 minutes at the defaults): it is migrated to the
current schema, the benchmark's segment is deleted, and only DuckDB's copy is generated again.
Peak RSS is this process's, DuckDB's in-memory copy of the data included.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import reset  # the root is on the path now
from bench.ingest import reproduce_command
from sodate.conditions.kept import tracked_filters
from sodate.conditions.schemas import parse_condition
from sodate.conditions.sql import matching_contacts
from sodate.db import migrate
from sodate.db.bulk import DriverValues
from sodate.db.engine import Database, create_db_engine
from sodate.events.latest import rebuild_latest_times
from sodate.segments import membership
from sodate.segments.membership import LiveSegment
from sodate.segments.models import ChangeCause
from sodate.segments.schemas import SegmentIn
from sodate.segments.service import put_segment
from sodate.workspaces import service as workspaces
from sodate.workspaces.schemas import WorkspaceCreate

NOW = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)
EVENT_SPAN = timedelta(days=180)
CONTACT_SPAN = timedelta(days=720)
SEGMENT_KEY = "engaged-pro-no-order"
CONDITION: dict[str, Any] = {
    "all": [
        {"attr": "plan", "op": "eq", "value": "pro"},
        {"event": {"name": "Page Viewed", "count": {"op": "gte", "value": 3}, "within": "30d"}},
        {"not": {"event": {"name": "Order Completed", "within": "90d"}}},
    ]
}

PRODUCT_PAGES = [{"prop": "path", "op": "starts_with", "value": "/products"}]
FILTERED_CONDITION: dict[str, Any] = {
    "all": [
        CONDITION["all"][0],
        {"event": {**CONDITION["all"][1]["event"], "where": PRODUCT_PAGES}},
        CONDITION["all"][2],
    ]
}
"""`--filtered`: page views of /products… only (a third of them), whose latest times the
first save fills (`sodate.conditions.filtered`) and the recomputations read."""

# --- the data, generated in DuckDB ----------------------------------------------------------

# A 32-bit integer hash (multiply, then murmur3's finalizer), computed in UBIGINT so that no
# product overflows. `key` is below 2^32 and distinct for each (row, column) pair of one seed.
MACROS = """
CREATE MACRO bench_key(i, salt, seed) AS
    ((i * 16 + salt)::UBIGINT * 2654435761 + seed::UBIGINT * 40503) % 4294967296;
CREATE MACRO bench_f1(h) AS (xor(h, h >> 16) * 2246822507) % 4294967296;
CREATE MACRO bench_f2(h) AS (xor(h, h >> 13) * 3266489909) % 4294967296;
CREATE MACRO bench_f3(h) AS xor(h, h >> 16);
CREATE MACRO bench_hash(i, salt, seed) AS
    bench_f3(bench_f2(bench_f1(bench_key(i, salt, seed))))::BIGINT;
"""

CONTACTS_SQL = """
CREATE TABLE contacts AS
WITH h AS (
    SELECT i,
        bench_hash(i, 1, $seed) AS h1,
        bench_hash(i, 2, $seed) AS h2,
        bench_hash(i, 3, $seed) AS h3,
        bench_hash(i, 4, $seed) AS h4
    FROM range($count) r(i)
)
SELECT
    i + 1 AS id,
    $workspace AS workspace_id,
    'u-' || lpad(i::VARCHAR, 7, '0') AS user_id,
    'user' || i || '@example.jp' AS email,
    NULL::VARCHAR AS phone,
    '{' || CASE
        WHEN h1 % 100 < 25 THEN '"plan":"pro",'
        WHEN h1 % 100 < 75 THEN '"plan":"free",'
        WHEN h1 % 100 < 90 THEN '"plan":"enterprise",'
        WHEN h1 % 100 < 95 THEN '"plan":"business",'
        ELSE '' END
      || '"job_title":"'
      || ['部長', '課長', '主任', '担当', 'Manager', 'Director', 'Engineer', 'CEO'][h2 % 8 + 1]
      || '","employees":' || (10 + h3 % 5000) || '}' AS traits,
    'user' || i || '@example.jp u-' || lpad(i::VARCHAR, 7, '0') AS search_text,
    NULL::BIGINT AS company_id,
    '["bench"]' AS sources,
    $contacts_start + to_microseconds((i * $contact_step)::BIGINT) AS first_seen_at,
    $contacts_start + to_microseconds((i * $contact_step)::BIGINT) AS last_seen_at,
    CASE WHEN i > 0 AND h4 % 100 = 0 THEN i END AS merged_into_id,
    $contacts_start + to_microseconds((i * $contact_step)::BIGINT) AS created_at,
    $contacts_start + to_microseconds((i * $contact_step)::BIGINT) AS updated_at
FROM h
"""

EVENTS_SQL = """
CREATE TABLE events AS
WITH h AS (
    SELECT i,
        bench_hash(i, 5, $seed) AS h5,
        bench_hash(i, 6, $seed) AS h6,
        bench_hash(i, 7, $seed) AS h7,
        bench_hash(i, 8, $seed) AS h8
    FROM range($count) r(i)
),
k AS (
    SELECT i, h8,
        CASE WHEN h6 % 2 = 0 THEN (h5 * $contacts) >> 32
             ELSE (((h5::UBIGINT * h5::UBIGINT) >> 32)::BIGINT * $contacts) >> 32 END AS person,
        h7 % 1000 AS kind
    FROM h
),
n AS (
    SELECT *,
        CASE WHEN kind < 700 THEN 'Page Viewed'
             WHEN kind < 800 THEN 'Product Viewed'
             WHEN kind < 880 THEN 'Email Opened'
             WHEN kind < 930 THEN 'Product Added'
             WHEN kind < 960 THEN 'Form Submitted'
             WHEN kind < 980 THEN 'Demo Requested'
             ELSE 'Order Completed' END AS name,
        ['/', '/pricing', '/products', '/blog', '/contact', '/products/sku'][h8 % 6 + 1] AS path,
        ['Home', 'Pricing', 'Products', 'Blog', 'Contact', 'Product'][h8 % 6 + 1] AS title
    FROM k
)
SELECT
    i + 1 AS id,
    $workspace AS workspace_id,
    (person + 1)::BIGINT AS contact_id,
    'm-' || lpad(i::VARCHAR, 10, '0') AS message_id,
    -- Never 0 (`NO_MESSAGE_KEY`); DuckDB's hash, not Sodate's: nothing here looks keys up.
    (hash('m-' || lpad(i::VARCHAR, 10, '0')) >> 1)::BIGINT + 1 AS message_key,
    CASE WHEN name = 'Page Viewed' THEN 'page' ELSE 'track' END AS type,
    name,
    CASE
        WHEN name = 'Page Viewed' THEN
            '{"path":"' || path || '","url":"https://shop.example.jp' || path
            || '","title":"' || title || ' | Example Shop"}'
        WHEN name IN ('Product Viewed', 'Product Added') THEN
            '{"product_id":"sku-' || (h8 % 2000) || '","price":' || (500 + h8 % 19500)
            || ',"currency":"JPY"}'
        WHEN name = 'Order Completed' THEN
            '{"order_id":"o-' || i || '","total":' || (1000 + h8 % 49000)
            || ',"currency":"JPY"}'
        WHEN name = 'Email Opened' THEN '{"campaign_id":"c-' || (h8 % 50) || '"}'
        ELSE '{"form":"' || lower(replace(name, ' ', '_')) || '"}'
    END AS properties,
    '{"ip":"203.0.113.' || (person % 250 + 1)
      || '","library":{"name":"analytics.js","version":"4.1.0"},"locale":"ja-JP"}'
      AS context,
    $events_start + to_microseconds((i * $event_step + h8 % $event_step)::BIGINT) AS timestamp,
    $events_start + to_microseconds((i * $event_step + h8 % $event_step + h8 % 2000000)::BIGINT)
      AS received_at
FROM n
"""

CONTACT_COLUMNS = (
    "id",
    "workspace_id",
    "user_id",
    "email",
    "phone",
    "traits",
    "search_text",
    "company_id",
    "sources",
    "first_seen_at",
    "last_seen_at",
    "merged_into_id",
    "created_at",
    "updated_at",
)
CONTACT_TIMES = ("first_seen_at", "last_seen_at", "created_at", "updated_at")
EVENT_COLUMNS = (
    "id",
    "workspace_id",
    "contact_id",
    "message_id",
    "message_key",
    "type",
    "name",
    "properties",
    "context",
    "timestamp",
    "received_at",
)
EVENT_TIMES = ("timestamp", "received_at")

# The segment's condition by hand, in DuckDB: the same rules (the plan read from the traits'
# JSON text and compared after folding A–Z, merged contacts never match, events of the
# workspace only, windows up to `now` inclusive).
DUCKDB_QUERY = """
SELECT count(*) FROM contacts c
WHERE c.workspace_id = $workspace
  AND c.merged_into_id IS NULL
  AND json_type(c.traits, '$.plan') = 'VARCHAR'
  AND lower(c.traits ->> '$.plan') = 'pro'
  AND c.id IN (
      SELECT contact_id FROM events
      WHERE workspace_id = $workspace AND name = 'Page Viewed'
        AND timestamp >= $now - INTERVAL 30 DAY AND timestamp <= $now
        $page_filter
      GROUP BY contact_id HAVING count(*) >= 3)
  AND c.id NOT IN (
      SELECT contact_id FROM events
      WHERE workspace_id = $workspace AND name = 'Order Completed'
        AND timestamp >= $now - INTERVAL 90 DAY AND timestamp <= $now)
"""


def naive_utc(moment: datetime) -> datetime:
    """DuckDB's TIMESTAMP holds UTC here, without a zone."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def generate(
    duck: duckdb.DuckDBPyConnection, workspace: str, contacts: int, events: int, seed: int
) -> None:
    duck.execute(MACROS)
    contact_start = NOW - CONTACT_SPAN - EVENT_SPAN
    duck.execute(
        CONTACTS_SQL,
        {
            "seed": seed,
            "count": contacts,
            "workspace": workspace,
            "contacts_start": naive_utc(contact_start),
            "contact_step": max(1, int(CONTACT_SPAN / timedelta(microseconds=1)) // contacts),
        },
    )
    step = max(1, int(EVENT_SPAN / timedelta(microseconds=1)) // max(events, 1))
    duck.execute(
        EVENTS_SQL,
        {
            "seed": seed,
            "count": events,
            "contacts": contacts,
            "workspace": workspace,
            "events_start": naive_utc(NOW - EVENT_SPAN),
            "event_step": step,
        },
    )


def export_select(
    table: str,
    columns: tuple[str, ...],
    times: tuple[str, ...],
    suffix: str,
    micros: tuple[str, ...] = (),
) -> str:
    """The table's rows as the database under test stores them: times as UTC text, or (SQLite's
    `MicrosecondTime` columns, `micros`) as integers of microseconds since the epoch."""
    parts = [
        f"epoch_us({c}) AS {c}"
        if c in micros
        else f"strftime({c}, '%Y-%m-%d %H:%M:%S.%f{suffix}') AS {c}"
        if c in times
        else c
        for c in columns
    ]
    # No ORDER BY: DuckDB keeps the insertion order (ids ascending) without sorting.
    return f"SELECT {', '.join(parts)} FROM {table}"  # noqa: S608 (constants)


# --- loading the database under test --------------------------------------------------------


def load_sqlite(url: str, duck: duckdb.DuckDBPyConnection, batch: int = 50_000) -> None:
    """executemany through the driver, a transaction per million rows. The loading
    connection gets a large page cache; it is closed after, so the measurements run on
    connections configured as the application configures them."""
    db = Database.from_url(url)
    raw = db.engine.raw_connection()
    try:
        driver: Any = raw.driver_connection
        driver.execute("PRAGMA cache_size=-1048576")  # 1 GiB, this connection only
        for table, columns, times, micros in (
            ("contacts", CONTACT_COLUMNS, CONTACT_TIMES, ()),
            ("events", EVENT_COLUMNS, (), EVENT_TIMES),
        ):
            marks = ", ".join("?" * len(columns))
            insert = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608
            cursor = duck.execute(export_select(table, columns, times, "", micros))
            in_transaction = 0
            driver.execute("BEGIN IMMEDIATE")
            while rows := cursor.fetchmany(batch):
                driver.executemany(insert, rows)
                in_transaction += len(rows)
                if in_transaction >= 1_000_000:
                    driver.execute("COMMIT")
                    driver.execute("BEGIN IMMEDIATE")
                    in_transaction = 0
            driver.execute("COMMIT")
        driver.execute("ANALYZE")
        driver.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        raw.invalidate()  # not back to the pool with its page cache
        db.dispose()


# The tables' unique and foreign-key constraints, and their indexes that back no constraint,
# as statements that drop and recreate them exactly (pg_get_constraintdef, pg_get_indexdef);
# `%%` is a literal `%` for psycopg.
DEFERRED_SCHEMA = """
SELECT 1 AS step, format('ALTER TABLE %%I DROP CONSTRAINT %%I', t.relname, c.conname),
       format('ALTER TABLE %%I ADD CONSTRAINT %%I %%s', t.relname, c.conname,
              pg_get_constraintdef(c.oid)),
       CASE c.contype WHEN 'u' THEN 2 ELSE 3 END AS rebuild
FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
WHERE t.relname = ANY(%(tables)s) AND t.relnamespace = 'public'::regnamespace
  AND c.contype IN ('u', 'f')
UNION ALL
SELECT 2, format('DROP INDEX %%I', x.relname), pg_get_indexdef(i.indexrelid), 1
FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid
WHERE t.relname = ANY(%(tables)s) AND t.relnamespace = 'public'::regnamespace
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c
                  WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid)
"""


def load_postgres(url: str, duck: duckdb.DuckDBPyConnection, directory: Path) -> None:
    """DuckDB writes CSV, PostgreSQL reads it with COPY, as pg_restore loads a dump: the
    tables' secondary indexes and unique and foreign-key constraints are dropped first and
    recreated after (the same definitions, read from the catalog), in one transaction — a
    foreign-key check per row would cost more than the rest of the load. Then the sequences
    move past the ids, and VACUUM ANALYZE sets the statistics and the visibility map, as
    autovacuum would after such a load."""
    db = Database.from_url(url)
    raw = db.engine.raw_connection()
    try:
        driver: Any = raw.driver_connection
        deferred = driver.execute(DEFERRED_SCHEMA, {"tables": ["contacts", "events"]}).fetchall()
        for _step, drop, _create, _order in sorted(deferred, key=lambda row: row[0]):
            driver.execute(drop)
        for table, columns, times in (
            ("contacts", CONTACT_COLUMNS, CONTACT_TIMES),
            ("events", EVENT_COLUMNS, EVENT_TIMES),
        ):
            path = directory / f"{table}.csv"
            query = export_select(table, columns, times, "+00")
            duck.execute(f"COPY ({query}) TO '{path}' (FORMAT csv, HEADER false)")
            copy_sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT csv)"
            with (
                driver.cursor() as cursor,
                cursor.copy(copy_sql) as copy,
                path.open("rb") as file,
            ):
                while chunk := file.read(1 << 20):
                    copy.write(chunk)
            path.unlink()
            driver.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"  # noqa: S608
                f" (SELECT max(id) FROM {table}))"
            )
        driver.execute("SET LOCAL maintenance_work_mem = '1GB'")  # for the index builds
        for _step, _drop, create, _order in sorted(deferred, key=lambda row: row[3]):
            driver.execute(create)
        driver.commit()
        driver.autocommit = True
        driver.execute("VACUUM ANALYZE contacts")
        driver.execute("VACUUM ANALYZE events")
    finally:
        raw.invalidate()
        db.dispose()


# --- the measurements -----------------------------------------------------------------------


@dataclass
class Timings:
    seconds: list[float] = field(default_factory=list)

    def add(self, value: float) -> None:
        self.seconds.append(value)

    @property
    def best(self) -> float:
        return min(self.seconds)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    def as_dict(self) -> dict[str, Any]:
        return {
            "best": round(self.best, 3),
            "median": round(self.median, 3),
            "runs": [round(s, 3) for s in self.seconds],
        }

    def text(self) -> str:
        return f"{self.best:.2f} / {self.median:.2f}"


@dataclass
class Result:
    database: str
    contacts: int
    events: int
    generate_seconds: float
    load_seconds: float
    latest_seconds: float = 0.0
    first_save_seconds: float = 0.0
    query: Timings = field(default_factory=Timings)
    from_empty: Timings = field(default_factory=Timings)
    steady: Timings = field(default_factory=Timings)
    duckdb: Timings = field(default_factory=Timings)
    matching: int = 0
    duckdb_matching: int = 0
    entered: int = 0
    steady_moved: int = 0
    peak_rss_mb: float = 0.0
    duckdb_mb: float = 0.0
    plan: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "contacts": self.contacts,
            "events": self.events,
            "generate_seconds": round(self.generate_seconds, 1),
            "load_seconds": round(self.load_seconds, 1),
            "latest_times_seconds": round(self.latest_seconds, 1),
            "first_save_seconds": round(self.first_save_seconds, 3),
            "query_only_seconds": self.query.as_dict(),
            "recompute_from_empty_seconds": self.from_empty.as_dict(),
            "recompute_steady_seconds": self.steady.as_dict(),
            "duckdb_seconds": self.duckdb.as_dict(),
            "matching_contacts": self.matching,
            "duckdb_matching_contacts": self.duckdb_matching,
            "entered_from_empty": self.entered,
            "moved_in_steady_state": self.steady_moved,
            "peak_rss_mb": round(self.peak_rss_mb),
            "duckdb_memory_mb": round(self.duckdb_mb),
            "plan": self.plan or None,
        }


def timed(work: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = work()
    return time.perf_counter() - started, value


def build_latest_times(db: Database, workspace: str) -> None:
    """What the event pipeline keeps beside the events, computed from them at once."""
    with db.transaction() as session:
        if db.dialect == "postgresql":
            session.execute(sa.text("SET LOCAL work_mem = '1GB'"))  # the window's sort
        rebuild_latest_times(session, workspace)
    with db.engine.connect() as connection:
        if db.dialect == "postgresql":
            connection.execution_options(isolation_level="AUTOCOMMIT").execute(
                sa.text("VACUUM ANALYZE event_latest_times")
            )
        else:
            connection.execute(sa.text("ANALYZE event_latest_times"))
            connection.commit()
    db.checkpoint()


def reusable_workspace(db: Database, contacts: int, events: int) -> str | None:
    """The workspace an earlier run built with these sizes, its segment deleted; None when the
    database holds something else."""
    with db.transaction() as session:
        connection = session.connection()
        ids = connection.execute(sa.text("SELECT id FROM workspaces WHERE name = 'bench'")).all()
        if len(ids) != 1:
            return None
        workspace = str(ids[0][0])
        sizes = tuple(
            connection.execute(
                sa.text(f"SELECT count(*) FROM {table} WHERE workspace_id = :w"),  # noqa: S608
                {"w": workspace},
            ).scalar_one()
            for table in ("contacts", "events")
        )
        if sizes != (contacts, events):
            return None
        segment = {"w": workspace, "key": SEGMENT_KEY}
        for table in ("segment_changes", "segment_members"):
            connection.execute(
                sa.text(
                    f"DELETE FROM {table} WHERE segment_id IN"  # noqa: S608
                    " (SELECT id FROM segments WHERE workspace_id = :w AND key = :key)"
                ),
                segment,
            )
        connection.execute(
            sa.text("DELETE FROM segments WHERE workspace_id = :w AND key = :key"), segment
        )
    db.checkpoint()
    return workspace


def create_workspace(db: Database) -> str:
    with db.transaction() as session:
        workspace = workspaces.create_workspace(session, WorkspaceCreate(name="bench"), now=NOW)
        return workspace.id


def clear_members(db: Database, segment_id: int) -> None:
    with db.transaction() as session:
        connection = session.connection()
        for table in ("segment_members", "segment_changes"):
            connection.execute(
                sa.text(f"DELETE FROM {table} WHERE segment_id = :id"),  # noqa: S608
                {"id": segment_id},
            )
    db.checkpoint()  # as the wal-checkpointer service would (SQLite)


def explain(db: Database, statement: sa.Select[Any]) -> str:
    with db.read() as session:
        connection = session.connection()
        compiled = statement.compile(
            dialect=connection.dialect, compile_kwargs={"render_postcompile": True}
        )
        if db.dialect == "postgresql":
            prefix = "EXPLAIN (ANALYZE, BUFFERS) "
            rows = connection.exec_driver_sql(prefix + str(compiled), compiled.params).all()
            return "\n".join(row[0] for row in rows)
        values = DriverValues(db.dialect)
        positional = tuple(
            values.time(v) if isinstance(v, datetime) else v
            for v in (compiled.params[name] for name in compiled.positiontup or ())
        )
        rows = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + str(compiled), positional).all()
        return "\n".join(f"{row[0]:>3} {row[1]:>3}  {row[3]}" for row in rows)


def measure(
    db: Database,
    workspace: str,
    repeat: int,
    result: Result,
    *,
    show_plan: bool,
    document: dict[str, Any],
) -> None:
    segment = SegmentIn.model_validate({"name": "Engaged pro, no recent order", **document})
    condition = parse_condition(document["condition"])

    def first_save() -> int:
        with db.transaction() as session:
            saved, _created = put_segment(session, workspace, SEGMENT_KEY, segment, now=NOW)
            return saved.entered

    result.first_save_seconds, entered = timed(first_save)
    with db.read() as session:
        zone = workspaces.workspace_zone(session, workspace)
        kept = tracked_filters(session, workspace)
    matching = matching_contacts(
        condition, dialect=db.dialect, workspace_id=workspace, now=NOW, zone=zone, kept=kept
    ).subquery()
    count = sa.select(sa.func.count()).select_from(matching)
    with db.read() as session:
        live: LiveSegment = next(
            s for s in membership.dynamic_segments(session, workspace) if s.key == SEGMENT_KEY
        )

    def recompute() -> tuple[int, int]:
        with db.transaction() as session:
            return membership.recompute(
                session, workspace, live, now=NOW, zone=zone, cause=ChangeCause.SAVED
            )

    def query_only() -> int:
        with db.read() as session:
            return int(session.execute(count).scalar_one())

    for _ in range(repeat):
        seconds, result.matching = timed(query_only)
        result.query.add(seconds)
        clear_members(db, live.id)
        seconds, (entered, exited) = timed(recompute)
        result.from_empty.add(seconds)
        if (entered, exited) != (result.matching, 0):
            raise SystemExit(f"from empty: {entered} entered, {exited} exited")
        seconds, (entered, exited) = timed(recompute)
        result.steady.add(seconds)
        if entered or exited:
            raise SystemExit(f"steady state: {entered} entered, {exited} exited")
    result.entered = result.matching
    if show_plan:
        result.plan = explain(db, sa.select(sa.func.count()).select_from(matching))


def measure_duckdb(
    duck: duckdb.DuckDBPyConnection, workspace: str, repeat: int, result: Result, filtered: bool
) -> None:
    params = {"workspace": workspace, "now": naive_utc(NOW)}
    page_filter = "AND properties ->> '$.path' LIKE '/products%'" if filtered else ""
    query = DUCKDB_QUERY.replace("$page_filter", page_filter)
    for _ in range(repeat):
        seconds, row = timed(lambda: duck.execute(query, params).fetchone())
        result.duckdb.add(seconds)
        result.duckdb_matching = int(row[0])


# --- output ---------------------------------------------------------------------------------


def table(result: Result) -> str:
    header = (
        "database",
        "contacts",
        "events",
        "load",
        "first save",
        "query only",
        "from empty",
        "steady",
        "matching",
        "DuckDB",
    )
    row = (
        result.database,
        f"{result.contacts:,}",
        f"{result.events:,}",
        f"{result.load_seconds:.0f} s",
        f"{result.first_save_seconds:.2f}",
        result.query.text(),
        result.from_empty.text(),
        result.steady.text(),
        f"{result.matching:,}",
        result.duckdb.text(),
    )
    widths = [max(len(a), len(b)) for a, b in zip(header, row, strict=True)]
    lines = [
        "  ".join(
            v.rjust(w) if i else v.ljust(w)
            for i, (v, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in (header, row)
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("SODATE_BENCH_DATABASE_URL"),
        help="PostgreSQL URL (schema dropped first); default a fresh SQLite file",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="with --database-url: use the data an earlier run built there with the same"
        " --contacts and --events (migrated to the current schema) instead of building it again",
    )
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each measurement")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--filtered",
        action="store_true",
        help="count page views of /products… only (FILTERED_CONDITION)",
    )
    parser.add_argument(
        "--explain",
        action="store_true",
        help="print the query's plan (EXPLAIN QUERY PLAN; EXPLAIN ANALYZE on PostgreSQL)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    condition = FILTERED_CONDITION if args.filtered else CONDITION
    if args.contacts < 1 or args.events < 1 or args.repeat < 1:
        parser.error("--contacts, --events and --repeat must be positive")
    if args.reuse and not args.database_url:
        parser.error("--reuse needs --database-url (the database an earlier run built)")

    def note(text: str) -> None:
        if not args.json:
            print(text, file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="sodate-bench-") as tmp:
        url = args.database_url or f"sqlite:///{tmp}/bench.db"
        reused: str | None = None
        if args.reuse:
            engine = create_db_engine(url)
            try:
                migrated, _ = timed(lambda: migrate.upgrade(engine))
            finally:
                engine.dispose()
            note(f"migrated to the current schema: {migrated:.1f} s")
            db = Database.from_url(url)
            reused = reusable_workspace(db, args.contacts, args.events)
            if reused is None:
                db.dispose()
                note("nothing to reuse there: building the data")
        if reused is None:
            reset(url)
            db = Database.from_url(url)
        workspace = reused or create_workspace(db)
        duck = duckdb.connect()
        generate_seconds, _ = timed(
            lambda: generate(duck, workspace, args.contacts, args.events, args.seed)
        )
        note(f"generated in DuckDB: {generate_seconds:.1f} s")
        load_seconds = latest_seconds = 0.0
        if reused:
            note(f"reused the data in {db.dialect}")
        else:
            if db.dialect == "postgresql":
                load_seconds, _ = timed(lambda: load_postgres(url, duck, Path(tmp)))
            else:
                load_seconds, _ = timed(lambda: load_sqlite(url, duck))
            note(f"loaded into {db.dialect} (and analyzed): {load_seconds:.1f} s")
            latest_seconds, _ = timed(lambda: build_latest_times(db, workspace))
            note(f"latest times per contact and name, from the events: {latest_seconds:.1f} s")
        result = Result(
            db.dialect, args.contacts, args.events, generate_seconds, load_seconds, latest_seconds
        )
        memory = duck.execute("SELECT sum(memory_usage_bytes) FROM duckdb_memory()").fetchone()
        result.duckdb_mb = int(memory[0] if memory else 0) / 2**20
        try:
            measure(
                db,
                workspace,
                args.repeat,
                result,
                show_plan=args.explain,
                document={"condition": condition},
            )
            measure_duckdb(duck, workspace, args.repeat, result, args.filtered)
        finally:
            db.dispose()
            duck.close()
    result.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    command = reproduce_command(sys.argv, args.database_url)
    agree = result.matching == result.duckdb_matching
    if args.json:
        print(json.dumps({"command": command, **result.as_dict()}, ensure_ascii=False, indent=2))
    else:
        print(
            f"data: {args.contacts:,} contacts, {args.events:,} events (seed {args.seed}); "
            f"built in {generate_seconds + load_seconds:.0f} s "
            f"(DuckDB generation {generate_seconds:.1f} s, load and ANALYZE {load_seconds:.1f} s,"
            f" latest times from the events {latest_seconds:.1f} s)"
        )
        print(f"condition: {json.dumps(condition, ensure_ascii=False)}")
        print("seconds, best / median of", args.repeat)
        print(table(result))
        print(
            f"matching: {result.matching:,} contacts (DuckDB {result.duckdb_matching:,}: "
            f"{'the same' if agree else 'DIFFERENT'})"
        )
        print(
            f"peak RSS: {result.peak_rss_mb:,.0f} MB (this process, including DuckDB's copy of "
            f"the data: {result.duckdb_mb:,.0f} MB)"
        )
        if result.plan:
            print(f"plan of the query-only statement ({result.database}):")
            print(result.plan)
        print(f"reproduce: {command}")
    if not agree:
        raise SystemExit("the matching counts differ between the engines")


if __name__ == "__main__":
    main()
