"""Re-scoring 1M contacts after a scoring-model change, over 10M events.

    python bench/rescoring.py [--contacts 1000000] [--events 10000000]
                              [--database-url URL] [--repeat 3] [--seed 1] [--json]

The model (`MODEL` below) has 10 rules: 4 fit rules on the traits (plan in pro / enterprise
+15, job_title contains 部長 +10, employees ≥ 1000 +10, plan free −5) and 6 engagement rules
(Page Viewed with a path starting with /products +2 up to 20 in all, Product Viewed +1 up to 3
a day, Email Opened +1 up to 1 a day, Form Submitted +5, Demo Requested +10, Order Completed
+20), a half-life of 30 days and thresholds mql 60 and warm 30. Every save is
`sodate.scoring.service.put_model` (lock, definition, `recompute_model`: the set-based INSERT …
SELECT per rule, the upsert of the totals returning the changed ones, their `score_history`
rows, the crossings per threshold), in one write transaction, commit included, at the fixed
`now` of bench/segment_recompute.py (2026-11-01 03:00 UTC). Timed:

- "first save": once, `put_model` creating the model: everyone scored from nothing;
- "nothing changed": `put_model` with the same document, `--repeat` times (best and median):
  every contact is rescored and, the epoch being the model's own, none is written;
- "after a change": `put_model` with Demo Requested worth 15 instead of 10, then 10 again,
  alternately, `--repeat` times (best and median): each run changes the score of every contact
  with a demo request;
- "a day later": once, `put_model` with the stored document at `now` + 1 day: what re-applying
  an unchanged model file costs in production (the crossings decay made during the day are
  recorded first, with the cause `time`; no score changes, so no history row is written).

For each save: the history rows written (`score_history` counted before and after), the
crossings reached and fallen, and the scored contacts `put_model` reports; then the rows of
`contact_scores`, `contact_score_rules`, `score_daily_awards`, `score_history` and
`score_crossings` after the last save. Checks (the program exits non-zero after printing if one
fails): after the first save there is a history row per `contact_scores` row and the levels sum
to the crossings reached; "nothing changed" writes and crosses nothing; a change writes a history
row per contact with Demo Requested points and only raises (15) or only lowers (10) totals; at
the end every contact's level is its crossings reached minus its crossings fallen (a threshold
that decay alone carried a total across in the day must have been recorded, by the save or
before it).

The data are bench/segment_recompute.py's (its `generate`, `load_sqlite`, `load_postgres`),
generated once, deterministically (`--seed`), in DuckDB and copied into the database under test:
contacts 1..N with traits `{"plan", "job_title", "employees"}` (plan pro 25 %, free 50 %,
enterprise 15 %, business 5 %, missing 5 %; job_title one of 8 titles, 部長 among them;
employees 10–5009), 1 % merged; events over the 180 days before `now`, Page Viewed 70 % (path
one of /, /pricing, /products, /blog, /contact, /products/sku), Product Viewed 10 %, Email Opened
8 %, Product Added 5 %, Form Submitted 3 %, Demo Requested 2 %, Order Completed 2 %; one
workspace (Asia/Tokyo calendar for the daily caps). Then ANALYZE (VACUUM ANALYZE on PostgreSQL).

Without --database-url it uses a fresh SQLite file in a temporary directory; with a
PostgreSQL URL (e.g. `scripts/with-test-postgres sh -c '.venv/bin/python bench/rescoring.py
--database-url "$SODATE_TEST_POSTGRES_URL"'`), the schema is dropped and recreated; with an
`sqlite:///` URL the file is recreated there and kept. Peak RSS is this process's, DuckDB's
in-memory copy of the data included; "while scoring" is the peak from the first save on (DuckDB
closed), where Linux lets it be reset (/proc/self/clear_refs).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import reset, reset_peak_rss, status_mb  # the root is on the path now
from bench.ingest import reproduce_command
from bench.segment_recompute import (
    NOW,
    Timings,
    create_workspace,
    generate,
    load_postgres,
    load_sqlite,
    timed,
)
from sodate.db.engine import Database
from sodate.scoring.schemas import ScoringModelIn
from sodate.scoring.service import put_model

MODEL_KEY = "lead-score"
DEMO_RULE = 4
"""The place of the Demo Requested rule in `engagement`: its points change between saves."""
MODEL: dict[str, Any] = {
    "name": "Lead score",
    "fit": [
        {"when": {"attr": "plan", "op": "in", "value": ["pro", "enterprise"]}, "points": 15},
        {"when": {"attr": "job_title", "op": "contains", "value": "部長"}, "points": 10},
        {"when": {"attr": "employees", "op": "gte", "value": 1000}, "points": 10},
        {"when": {"attr": "plan", "op": "eq", "value": "free"}, "points": -5},
    ],
    "engagement": [
        {
            "event": "Page Viewed",
            "where": [{"prop": "path", "op": "starts_with", "value": "/products"}],
            "points": 2,
            "max_total": 20,
        },
        {"event": "Product Viewed", "points": 1, "max_per_day": 3},
        {"event": "Email Opened", "points": 1, "max_per_day": 1},
        {"event": "Form Submitted", "points": 5},
        {"event": "Demo Requested", "points": 10},
        {"event": "Order Completed", "points": 20},
    ],
    "decay": {"half_life_days": 30},
    "thresholds": {"mql": 60, "warm": 30},
}
CHANGED_POINTS = 15
# Every crossing moves a contact's level by one: a level is its crossings reached minus fallen.
LEVEL_MISMATCHES = """
SELECT count(*) FROM contact_scores s
LEFT JOIN (
    SELECT model_id, contact_id, sum(CASE WHEN reached THEN 1 ELSE -1 END) AS net
    FROM score_crossings GROUP BY model_id, contact_id
) c ON c.model_id = s.model_id AND c.contact_id = s.contact_id
WHERE s.level != coalesce(c.net, 0)
"""
COUNTED_TABLES = (
    "contact_scores",
    "contact_score_rules",
    "score_daily_awards",
    "score_history",
    "score_crossings",
)


def documents() -> tuple[ScoringModelIn, ScoringModelIn]:
    """The model as saved first, and with Demo Requested worth `CHANGED_POINTS`."""
    changed = json.loads(json.dumps(MODEL))
    changed["engagement"][DEMO_RULE]["points"] = CHANGED_POINTS
    return ScoringModelIn.model_validate(MODEL), ScoringModelIn.model_validate(changed)


# --- the measurements -----------------------------------------------------------------------


@dataclass
class Step:
    """One kind of save: its timings and, per run, what it wrote."""

    label: str
    timings: Timings = field(default_factory=Timings)
    history_rows: list[int] = field(default_factory=list)
    reached: list[int] = field(default_factory=list)
    fell: list[int] = field(default_factory=list)
    scored: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "seconds": self.timings.as_dict(),
            "history_rows": self.history_rows,
            "reached": self.reached,
            "fell": self.fell,
            "scored_contacts": self.scored,
        }


@dataclass
class Result:
    database: str
    contacts: int
    events: int
    generate_seconds: float
    load_seconds: float
    first_save: Step = field(default_factory=lambda: Step("first save"))
    unchanged: Step = field(default_factory=lambda: Step("nothing changed"))
    changed: Step = field(default_factory=lambda: Step("after a change"))
    day_later: Step = field(default_factory=lambda: Step("a day later"))
    demo_contacts: int = 0
    """Contacts with Demo Requested points: those a change of its points rescores."""
    rows_after: dict[str, int] = field(default_factory=dict)
    level_mismatches: int = 0
    """Contacts whose level is not their crossings reached minus fallen."""
    failures: list[str] = field(default_factory=list)
    peak_rss_mb: float = 0.0
    scoring_peak_rss_mb: float | None = None

    @property
    def steps(self) -> tuple[Step, ...]:
        return (self.first_save, self.unchanged, self.changed, self.day_later)

    def as_dict(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "contacts": self.contacts,
            "events": self.events,
            "generate_seconds": round(self.generate_seconds, 1),
            "load_seconds": round(self.load_seconds, 1),
            "first_save": self.first_save.as_dict(),
            "rescore_nothing_changed": self.unchanged.as_dict(),
            "rescore_after_a_change": self.changed.as_dict(),
            "rescore_a_day_later": self.day_later.as_dict(),
            "contacts_with_demo_points": self.demo_contacts,
            "rows_after": self.rows_after,
            "levels_not_matching_crossings": self.level_mismatches,
            "peak_rss_mb": round(self.peak_rss_mb),
            "scoring_peak_rss_mb": (
                round(self.scoring_peak_rss_mb) if self.scoring_peak_rss_mb is not None else None
            ),
            "failed_checks": self.failures,
        }


def count_rows(db: Database, table: str) -> int:
    with db.read() as session:
        query = sa.text(f"SELECT count(*) FROM {table}")  # noqa: S608 (constants)
        return int(session.execute(query).scalar_one())


def scalar(db: Database, sql: str, **params: Any) -> int:
    with db.read() as session:
        return int(session.execute(sa.text(sql), params).scalar_one() or 0)


def save(db: Database, workspace: str, document: ScoringModelIn, now: datetime, step: Step) -> None:
    """One timed `put_model` in its own write transaction; what it wrote goes to `step`."""
    db.checkpoint()  # as the wal-checkpointer service would between writes (SQLite)
    history_before = count_rows(db, "score_history")

    def work() -> tuple[int, int, int]:
        with db.transaction() as session:
            saved, _created = put_model(session, workspace, MODEL_KEY, document, now=now)
            return saved.model.scored_contacts, saved.reached, saved.fell

    seconds, (scored, reached, fell) = timed(work)
    step.timings.add(seconds)
    step.history_rows.append(count_rows(db, "score_history") - history_before)
    step.reached.append(reached)
    step.fell.append(fell)
    step.scored.append(scored)


def measure(db: Database, workspace: str, repeat: int, result: Result) -> None:
    original, changed = documents()
    save(db, workspace, original, NOW, result.first_save)
    scores = count_rows(db, "contact_scores")
    levels = scalar(db, "SELECT sum(level) FROM contact_scores")
    first = result.first_save
    if first.history_rows[0] != scores:
        result.failures.append(
            f"first save: {first.history_rows[0]:,} history rows for {scores:,} scores"
        )
    if (first.reached[0], first.fell[0]) != (levels, 0):
        result.failures.append(
            f"first save: {first.reached[0]:,} reached and {first.fell[0]:,} fell,"
            f" levels sum to {levels:,}"
        )
    result.demo_contacts = scalar(
        db,
        "SELECT count(*) FROM contact_score_rules WHERE rule = :rule",
        rule=f"engagement.{DEMO_RULE}",
    )

    unchanged = result.unchanged
    for run in range(1, repeat + 1):
        save(db, workspace, original, NOW, unchanged)
        rows, up, down = unchanged.history_rows[-1], unchanged.reached[-1], unchanged.fell[-1]
        if (rows, up, down) != (0, 0, 0):
            result.failures.append(
                f"nothing changed, run {run}: {rows:,} history rows, {up:,} reached, {down:,} fell"
            )

    current = original
    for run in range(1, repeat + 1):
        current = changed if current is original else original
        save(db, workspace, current, NOW, result.changed)
        rows, up, down = (
            result.changed.history_rows[-1],
            result.changed.reached[-1],
            result.changed.fell[-1],
        )
        if rows != result.demo_contacts:
            result.failures.append(
                f"after a change, run {run}: {rows:,} history rows,"
                f" {result.demo_contacts:,} contacts with Demo Requested points"
            )
        if (down if current is changed else up) != 0:
            result.failures.append(
                f"after a change, run {run} (Demo Requested"
                f" {current.engagement[DEMO_RULE].points}): {up:,} reached, {down:,} fell"
            )

    save(db, workspace, current, NOW + timedelta(days=1), result.day_later)
    if result.day_later.history_rows[-1]:
        result.failures.append(
            f"a day later: {result.day_later.history_rows[-1]:,} history rows for unchanged rules"
        )
    result.rows_after = {table: count_rows(db, table) for table in COUNTED_TABLES}
    result.level_mismatches = scalar(db, LEVEL_MISMATCHES)
    if result.level_mismatches:
        result.failures.append(
            f"{result.level_mismatches:,} contacts have a level other than their crossings"
            " reached minus fallen (a threshold crossing was not recorded)"
        )


def peak_rss_since_reset() -> float | None:
    return status_mb("VmHWM")


# --- output ---------------------------------------------------------------------------------


def runs(values: list[int]) -> str:
    """One number when every run gave it, else each run's."""
    if len(set(values)) == 1:
        return f"{values[0]:,}"
    return " / ".join(f"{v:,}" for v in values)


def table(result: Result) -> str:
    header = ("save", "runs", "best s", "median s", "history rows", "reached", "fell", "scored")
    rows = [header]
    for step in result.steps:
        rows.append(
            (
                step.label,
                str(len(step.timings.seconds)),
                f"{step.timings.best:.2f}",
                f"{step.timings.median:.2f}",
                runs(step.history_rows),
                runs(step.reached),
                runs(step.fell),
                runs(step.scored),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(
            v.rjust(w) if i else v.ljust(w)
            for i, (v, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    )


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
        "--repeat", type=int, default=3, help="timed runs of the two repeated rescorings"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    if args.contacts < 1 or args.events < 1 or args.repeat < 1:
        parser.error("--contacts, --events and --repeat must be positive")

    def note(text: str) -> None:
        if not args.json:
            print(text, file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="sodate-bench-") as tmp:
        url = args.database_url or f"sqlite:///{tmp}/bench.db"
        reset(url)
        db = Database.from_url(url)
        workspace = create_workspace(db)
        duck = duckdb.connect()
        try:
            generate_seconds, _ = timed(
                lambda: generate(duck, workspace, args.contacts, args.events, args.seed)
            )
            note(f"generated in DuckDB: {generate_seconds:.1f} s")
            if db.dialect == "postgresql":
                load_seconds, _ = timed(lambda: load_postgres(url, duck, Path(tmp)))
            else:
                load_seconds, _ = timed(lambda: load_sqlite(url, duck))
            note(f"loaded into {db.dialect} (and analyzed): {load_seconds:.1f} s")
        finally:
            duck.close()
        result = Result(db.dialect, args.contacts, args.events, generate_seconds, load_seconds)
        peak_resettable = reset_peak_rss()
        try:
            measure(db, workspace, args.repeat, result)
        finally:
            db.dispose()
    result.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if peak_resettable:
        result.scoring_peak_rss_mb = peak_rss_since_reset()
    command = reproduce_command(sys.argv, args.database_url)
    if args.json:
        print(json.dumps({"command": command, **result.as_dict()}, ensure_ascii=False, indent=2))
    else:
        print(
            f"data: {args.contacts:,} contacts, {args.events:,} events (seed {args.seed}); "
            f"built in {generate_seconds + load_seconds:.0f} s "
            f"(DuckDB generation {generate_seconds:.1f} s, load and ANALYZE {load_seconds:.1f} s)"
        )
        print(
            f"model: {len(MODEL['fit'])} fit and {len(MODEL['engagement'])} engagement rules, "
            f"half-life {MODEL['decay']['half_life_days']} days, thresholds "
            f"{json.dumps(MODEL['thresholds'])}; the change: Demo Requested "
            f"{MODEL['engagement'][DEMO_RULE]['points']} ↔ {CHANGED_POINTS} points "
            f"({result.demo_contacts:,} contacts have some)"
        )
        print(f"{result.database}, put_model in one write transaction, commit included")
        print(table(result))
        print("rows after: " + ", ".join(f"{t} {n:,}" for t, n in result.rows_after.items()))
        scoring = (
            f"; {result.scoring_peak_rss_mb:,.0f} MB while scoring"
            if result.scoring_peak_rss_mb is not None
            else ""
        )
        print(f"peak RSS: {result.peak_rss_mb:,.0f} MB (this process, DuckDB included){scoring}")
        for failure in result.failures:
            print(f"CHECK FAILED: {failure}")
        print(f"reproduce: {command}")
    if result.failures:
        raise SystemExit(f"{len(result.failures)} check(s) failed")


if __name__ == "__main__":
    main()
