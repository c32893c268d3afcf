"""CSV contact import: rows per second and peak memory, on a realistic Japanese/English file.

    python bench/csv_import.py [--rows 1000000] [--ordered] [--raw] [--database-url URL]
                               [--profile]

Generates a CSV of `--rows` contacts (Japanese and English names, companies, departments,
titles, phone numbers, a date; 1 % duplicates of earlier rows, 0.5 % invalid rows), its rows
in random order of persons (`--ordered`: emails and phones ascending, as this benchmark's
figures before that option were measured), then imports it as `sodate import contacts`
does — chunks of `PARSED_CHUNK_ROWS`, `CHUNKS_PER_TRANSACTION` a transaction — into a fresh
SQLite file (or the PostgreSQL database given, which is emptied first). Prints rows/s, the
process's peak RSS, and the CPU a row of the writing process and of its parsing process: the
two share the machine's cores, so work moved from one to the other gains nothing when both are
busy. `--profile` runs the import under cProfile and prints where the time goes.

`--raw` (SQLite) then inserts the rows the import wrote, as stored (its contacts, their
identities, the identify events), into a fresh database with the pipeline's own bulk inserts,
an import transaction's share of the file a transaction, the log checkpointed as an import does:
the storage limit the import is measured against, as for tracking ingest.
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import pstats
import random
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import SECRET, reset  # the root is on the path now
from sodate.contacts.models import Contact
from sodate.db.bulk import fetch_all, insert_rows
from sodate.db.engine import Database
from sodate.imports.local import CHUNKS_PER_TRANSACTION, PARSED_CHUNK_ROWS, import_file
from sodate.imports.schemas import ImportOptions, ImportOut
from sodate.runtime import Runtime
from sodate.settings import Settings
from sodate.workspaces import service as workspaces
from sodate.workspaces.schemas import WorkspaceCreate

HEADER = ["メールアドレス", "姓", "名", "会社名", "部署", "役職", "電話番号", "来場日", "メモ"]
SURNAMES = ["佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "山本", "中村", "小林", "加藤"]
GIVEN = ["太郎", "花子", "翔", "陽菜", "蓮", "結衣", "大輝", "美咲", "健", "さくら"]
ROMAJI = ["sato", "suzuki", "takahashi", "tanaka", "ito", "watanabe", "yamamoto", "nakamura"]
ENGLISH = [("Smith", "John"), ("Brown", "Emily"), ("Jones", "Michael"), ("Miller", "Sarah")]
DEPARTMENTS = ["営業部", "マーケティング部", "開発部", "総務部", "Sales", "Engineering"]
TITLES = ["部長", "課長", "主任", "担当", "Manager", "Director", ""]
DOMAINS = ["example.jp", "example.co.jp", "example.com", "mail.example.ne.jp"]
MEMOS = ["資料請求あり", "デモ希望", "", "", "Follow up in April", "展示会ブースで名刺交換"]


def generate(path: Path, rows: int, *, ordered: bool = False, seed: int = 7) -> None:
    """Person n has the email `<name>.<n>@<domain>` and a phone number after n; the rows come
    in random order of persons, as in a real file, or (`ordered`) in order, when every
    identity and email an import indexes goes next to the one before."""
    rng = random.Random(seed)
    companies = [f"株式会社サンプル{n:04d}" for n in range(800)] + [
        f"Example Corp {n}" for n in range(200)
    ]
    persons = list(range(rows))
    if not ordered:
        rng.shuffle(persons)
    with path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(HEADER)
        for i, person in enumerate(persons):
            if i and rng.random() < 0.01:
                person = persons[rng.randrange(i)]
            writer.writerow(_row(rng, person, companies, bad=rng.random() < 0.005))


def _row(rng: random.Random, person: int, companies: list[str], *, bad: bool) -> list[str]:
    if person % 5 == 0:
        last, first = ENGLISH[person % len(ENGLISH)]
    else:
        last, first = SURNAMES[person % len(SURNAMES)], GIVEN[(person // 10) % len(GIVEN)]
    email = f"{ROMAJI[person % len(ROMAJI)]}.{person}@{DOMAINS[person % len(DOMAINS)]}"
    phone = f"090-{1000 + person // 10000 % 9000:04d}-{person % 10000:04d}"
    if bad:
        email = email.replace("@", " at ")
    return [
        email,
        last,
        first,
        companies[person % len(companies)],
        rng.choice(DEPARTMENTS),
        rng.choice(TITLES),
        phone,
        f"2026/{1 + person % 12}/{1 + person % 28}",
        rng.choice(MEMOS),
    ]


def _children_cpu() -> float:
    """CPU seconds of this process's ended children: the import's parsing process."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_import(runtime: Runtime, path: Path) -> ImportOut:
    options = ImportOptions(source="展示会2026", mapping={"来場日": "visited:date"})
    now = runtime.clock.now()
    with runtime.db.transaction() as session:
        workspace = workspaces.create_workspace(session, WorkspaceCreate(name="bench"), now=now)
        workspace_id = workspace.id
    return import_file(runtime, workspace_id, path, options)


RAW_TABLES = ("contacts", "contact_identities", "events")
"""What an import writes for its rows; the workspace and its companies are copied first."""


def raw_insert_rate(source: Database, url: str, rows: int, checkpoint_interval: float) -> float:
    """File rows a second for inserting what the import stored into a fresh database at `url`,
    each table in id order, an import transaction's share of the file a transaction."""
    reset(url)
    target = Database.from_url(url)
    with source.read() as reading, target.transaction() as writing:
        for table in ("workspaces", "companies"):
            columns, stored = _stored(reading, table)
            insert_rows(writing, table, columns, stored)
    with source.read() as reading:
        totals = {t: fetch_all(reading, f"SELECT count(*) FROM {t}")[0][0] for t in RAW_TABLES}  # noqa: S608
    chunks = -(-rows // (PARSED_CHUNK_ROWS * CHUNKS_PER_TRANSACTION))
    last_ids = dict.fromkeys(RAW_TABLES, 0)
    elapsed = 0.0
    with target.checkpointing(checkpoint_interval):
        for _ in range(chunks):
            parts = []
            with source.read() as reading:
                for table in RAW_TABLES:
                    share = -(-totals[table] // chunks)
                    columns, stored = _stored(reading, table, after=last_ids[table], limit=share)
                    if stored:
                        last_ids[table] = stored[-1][0]
                    parts.append((table, columns, stored))
            started = time.perf_counter()
            with target.transaction() as writing:
                for table, columns, stored in parts:
                    insert_rows(writing, table, columns, stored)
            elapsed += time.perf_counter() - started
    target.engine.dispose()
    return rows / elapsed


def _stored(
    session: sa.orm.Session, table: str, *, after: int | None = None, limit: int | None = None
) -> tuple[list[str], list[Any]]:
    """A table's rows as the driver reads them: all, or `limit` in id order after id `after`."""
    sql = f"SELECT * FROM {table}"  # noqa: S608
    params: tuple[int, ...] = ()
    if after is not None:
        sql, params = f"{sql} WHERE id > ? ORDER BY id LIMIT {limit}", (after,)
    result = session.connection().exec_driver_sql(sql, params)
    return list(result.keys()), list(result.cursor.fetchall())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database-url", help="PostgreSQL URL (emptied first); default SQLite")
    parser.add_argument(
        "--ordered",
        action="store_true",
        help="rows in order of persons (emails and phones ascending), not at random",
    )
    parser.add_argument(
        "--raw",
        action="store_true",
        help="then insert the stored rows into a fresh SQLite database (the storage limit)",
    )
    parser.add_argument("--profile", action="store_true", help="print a cProfile summary")
    args = parser.parse_args()
    if args.raw and args.database_url:
        parser.error("--raw measures SQLite only")
    with tempfile.TemporaryDirectory(prefix="sodate-bench-") as directory:
        path = Path(directory) / "contacts.csv"
        started = time.perf_counter()
        generate(path, args.rows, ordered=args.ordered)
        print(
            f"generated {args.rows:,} rows ({path.stat().st_size / 1e6:.1f} MB"
            f", {'in order of persons' if args.ordered else 'persons at random'}) "
            f"in {time.perf_counter() - started:.1f} s"
        )
        url = args.database_url or f"sqlite:///{directory}/bench.db"
        reset(url)
        settings = Settings(database_url=url, data_dir=Path(directory), secret_key=SECRET)
        runtime = Runtime.create(settings)
        profiler = cProfile.Profile() if args.profile else None
        started, cpu_started = time.perf_counter(), time.process_time()
        children_started = _children_cpu()
        if profiler:
            profiler.enable()
        result = run_import(runtime, path)
        if profiler:
            profiler.disable()
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        parser_cpu = _children_cpu() - children_started
        with runtime.db.read() as session:
            contacts = session.scalar(sa.select(sa.func.count()).select_from(Contact))
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        raw = (
            raw_insert_rate(
                runtime.db,
                f"sqlite:///{directory}/raw.db",
                result.total,
                settings.sqlite_checkpoint_interval_seconds,
            )
            if args.raw
            else None
        )
        runtime.close()
    print(f"database: {url.split(':', 1)[0]}")
    print(
        f"rows {result.total:,}: created {result.created:,}, updated {result.updated:,}, "
        f"rejected {result.rejected:,}; contacts in the database {contacts:,}"
    )
    print(f"import: {elapsed:.1f} s, {result.total / elapsed:,.0f} rows/s")
    # The machine may be shared: CPU time says what the import itself cost.
    print(f"import CPU time: {cpu:.1f} s, {result.total / cpu:,.0f} rows per CPU second")
    print(
        f"CPU a row: writing process {cpu / result.total * 1e6:.1f} µs (its checkpoints"
        f" included), parsing process {parser_cpu / result.total * 1e6:.1f} µs"
    )
    print(f"peak RSS: {peak_mb:,.0f} MB")
    if raw is not None:
        print(
            f"raw insert of the stored rows: {raw:,.0f} rows/s;"
            f" the import ran at {result.total / elapsed / raw:.0%} of it"
        )
    if profiler:
        stats = pstats.Stats(profiler)
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats(40)


if __name__ == "__main__":
    main()
