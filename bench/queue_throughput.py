"""Job queue throughput: enqueue rate, and jobs run per second by one or more workers.

    python bench/queue_throughput.py --jobs 20000 --workers 1 2 [--database-url URL]

Without --database-url it uses a fresh SQLite file. Workers are real `sodate worker`
processes; the figure is jobs finished per second from their start to the last job done.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROOT, SECRET, SODATE, reset  # the root is on the path now
from sodate.db.engine import create_db_engine
from sodate.queue import service
from sodate.queue.models import Job, JobState
from sodate.runtime import Runtime
from sodate.settings import Settings
from sodate.system.models import ServiceHeartbeat


def enqueue(runtime: Runtime, count: int, batch: int = 5000) -> float:
    """Enqueue jobs due far in the future, so that workers only start on them when told."""
    now = datetime.now(UTC)
    later = now + timedelta(days=365)
    started = time.perf_counter()
    for offset in range(0, count, batch):
        jobs = [
            service.NewJob(kind="bench.noop", idempotency_key=f"job-{i}", due_at=later)
            for i in range(offset, min(offset + batch, count))
        ]
        with runtime.db.transaction() as session:
            service.enqueue(session, jobs, now=now, max_attempts=3)
    return count / (time.perf_counter() - started)


def run_workers(url: str, workers: int, count: int, batch_size: int) -> float:
    env = {
        **os.environ,
        "SODATE_DATABASE_URL": url,
        "SODATE_SECRET_KEY": SECRET,
        "SODATE_PLUGINS": "bench.plugin",
        "PYTHONPATH": str(ROOT),
        "SODATE_JOB_BATCH_SIZE": str(batch_size),
        "SODATE_JOB_RUNNER_INTERVAL_SECONDS": "0.05",
        "SODATE_MAINTENANCE_ENABLED": "false",
        "SODATE_LOG_LEVEL": "WARNING",
    }
    engine = create_db_engine(url)
    processes = [
        subprocess.Popen([SODATE, "worker", "--port", "0"], env=env) for _ in range(workers)
    ]
    try:
        _wait_for_heartbeats(engine, workers)
        with engine.begin() as connection:
            connection.execute(sa.update(Job).values(due_at=datetime.now(UTC)))
        started = time.perf_counter()
        done = 0
        while done < count:
            time.sleep(0.05)
            with engine.connect() as connection:
                done = (
                    connection.scalar(
                        sa.select(sa.func.count()).where(Job.state == JobState.DONE.value)
                    )
                    or 0
                )
                connection.rollback()
            if any(p.poll() is not None for p in processes):
                raise SystemExit("a worker exited early")
        return count / (time.perf_counter() - started)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
        engine.dispose()


def _wait_for_heartbeats(engine: sa.Engine, workers: int) -> None:
    """Start timing only once every worker has made its first pass."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with engine.connect() as connection:
            ready = connection.scalar(
                sa.select(sa.func.count(sa.distinct(ServiceHeartbeat.worker_id)))
            )
            connection.rollback()
        if ready == workers:
            return
        time.sleep(0.05)
    raise SystemExit("workers did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--database-url", default=os.environ.get("SODATE_BENCH_DATABASE_URL"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/bench.db"
        dialect = url.split(":", 1)[0].split("+", 1)[0]
        for workers in args.workers:
            reset(url)
            runtime = Runtime.create(
                Settings(database_url=url, secret_key=SECRET, data_dir=Path(tmp))
            )
            enqueue_rate = enqueue(runtime, args.jobs)
            runtime.close()
            run_rate = run_workers(url, workers, args.jobs, args.batch_size)
            print(
                f"{dialect:10} jobs={args.jobs} workers={workers} batch={args.batch_size} "
                f"enqueue={enqueue_rate:,.0f}/s run={run_rate:,.0f}/s",
                flush=True,
            )


if __name__ == "__main__":
    main()
