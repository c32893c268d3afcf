"""Real `sodate worker` processes sharing one database: exactly-once effects, crashes, SIGTERM.

The workers load `tests.support.plugin`, whose handler records each execution of a job in
`test_job_effects` in the transaction that marks the job done.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sodate.db.engine import Database
from sodate.queue import service
from sodate.queue.models import Job, JobState
from sodate.runtime import Runtime
from sodate.settings import Settings
from sodate.system.models import ServiceHeartbeat
from tests.conftest import TEST_SECRET
from tests.support.plugin import EFFECT_KIND, LATER_EFFECT_KIND, read_effects, started_marker

pytestmark = pytest.mark.slow

SODATE = Path(sys.executable).parent / "sodate"
REPO_ROOT = Path(__file__).resolve().parents[2]


class Workers:
    """Starts `sodate worker` processes against the test database and always ends them."""

    def __init__(self, database_url: str, directory: Path) -> None:
        self.database_url = database_url
        self.directory = directory
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, **settings: Any) -> subprocess.Popen[bytes]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("SODATE_")}
        env.update(
            PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")])),
            SODATE_DATABASE_URL=self.database_url,
            SODATE_DATA_DIR=str(self.directory),
            SODATE_SECRET_KEY=TEST_SECRET,
            SODATE_CLOCK="system",
            SODATE_PLUGINS="tests.support.plugin",
            SODATE_JOB_RUNNER_INTERVAL_SECONDS="0.05",
            SODATE_MAINTENANCE_ENABLED="false",
        )
        env.update({f"SODATE_{key.upper()}": str(value) for key, value in settings.items()})
        log = self.directory / f"worker-{len(self.processes)}.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [str(SODATE), "worker", "--port", "0"],
                env=env,
                cwd=self.directory,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        self.processes.append(process)
        return process

    def logs(self) -> str:
        parts = []
        for index, process in enumerate(self.processes):
            text = (self.directory / f"worker-{index}.log").read_text(errors="replace")
            parts.append(f"--- worker {process.pid} (exit {process.poll()}) ---\n{text[-3000:]}")
        return "\n".join(parts)

    def end_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
        for process in self.processes:
            process.wait(timeout=10)


@pytest.fixture
def workers(settings: Settings, effects: Database) -> Iterator[Workers]:
    pool = Workers(settings.database_url, settings.data_dir)
    try:
        yield pool
    finally:
        pool.end_all()


def enqueue(runtime: Runtime, jobs: list[tuple[str, str, dict[str, Any], datetime]]) -> None:
    """Add (kind, key, payload, due_at) jobs; workers run on the system clock."""
    now = datetime.now(UTC)
    with runtime.db.transaction() as session:
        new = [service.NewJob(kind, key, due_at, payload) for kind, key, payload, due_at in jobs]
        assert service.enqueue(session, new, now=now, max_attempts=5) == len(jobs)


def job_rows(runtime: Runtime) -> dict[str, tuple[int, str, int, str | None]]:
    """idempotency key -> (id, state, attempts, locked_by)."""
    with runtime.db.read() as session:
        rows = session.execute(
            sa.select(Job.idempotency_key, Job.id, Job.state, Job.attempts, Job.locked_by)
        ).all()
    return {key: (job_id, state, attempts, locked) for key, job_id, state, attempts, locked in rows}


def running_jobs(runtime: Runtime) -> dict[int, str | None]:
    """id -> locked_by of the jobs in state running."""
    with runtime.db.read() as session:
        rows = session.execute(
            sa.select(Job.id, Job.locked_by).where(Job.state == JobState.RUNNING.value)
        ).all()
    return {job_id: locked_by for job_id, locked_by in rows}


def state_counts(runtime: Runtime) -> Counter[str]:
    with runtime.db.read() as session:
        rows = session.execute(sa.select(Job.state, sa.func.count()).group_by(Job.state)).all()
    return Counter({state: count for state, count in rows})


def wait_until(
    predicate: Callable[[], bool], what: str, workers: Workers, runtime: Runtime, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(
                f"timed out after {timeout:.0f}s waiting for {what}; "
                f"jobs by state: {dict(state_counts(runtime))}\n{workers.logs()}"
            )
        time.sleep(0.02)


def all_done(runtime: Runtime, total: int) -> Callable[[], bool]:
    return lambda: state_counts(runtime)[JobState.DONE.value] == total


def runners_ready(runtime: Runtime, processes: list[subprocess.Popen[bytes]]) -> Callable[[], bool]:
    """True once every process's job runner has made a pass (and written its heartbeat)."""

    def ready() -> bool:
        with runtime.db.read() as session:
            query = sa.select(ServiceHeartbeat.worker_id).where(
                ServiceHeartbeat.service == "job-runner"
            )
            ids = session.scalars(query).all()
        return all(any(i.endswith(f":{p.pid}") for i in ids) for p in processes)

    return ready


def claimed_by(locked_by: str | None, process: subprocess.Popen[bytes]) -> bool:
    return locked_by is not None and locked_by.split("/")[0].endswith(f":{process.pid}")


def test_two_workers_run_every_job_exactly_once(
    runtime: Runtime, workers: Workers, effects: Database
) -> None:
    if runtime.db.dialect != "postgresql":
        pytest.skip("several workers at once is the PostgreSQL deployment")
    total = 3000
    first = workers.start(job_batch_size=20)
    second = workers.start(job_batch_size=20)
    wait_until(runners_ready(runtime, [first, second]), "both workers", workers, runtime, 20)

    due = datetime.now(UTC) - timedelta(seconds=1)
    enqueue(runtime, [(EFFECT_KIND, f"j{i}", {"sleep": 0.001}, due) for i in range(total)])
    wait_until(all_done(runtime, total), f"{total} jobs done", workers, runtime, 60)

    done = read_effects(effects)
    executions = Counter(job_id for job_id, _pid, _attempt in done)
    assert len(executions) == total
    assert [job_id for job_id, count in executions.items() if count > 1] == []
    by_worker = Counter(pid for _job_id, pid, _attempt in done)
    assert set(by_worker) == {first.pid, second.pid}, f"jobs per worker: {dict(by_worker)}"
    assert {attempt for _job_id, _pid, attempt in done} == {1}, "no job was claimed twice"
    assert first.poll() is None, "a worker crashed"
    assert second.poll() is None, "a worker crashed"


def test_jobs_of_a_killed_worker_are_run_once_by_another_after_the_lease(
    runtime: Runtime, workers: Workers, effects: Database
) -> None:
    lease = 3  # seconds; a batch of 5 slow jobs takes 1 s, well inside it
    due = datetime.now(UTC) - timedelta(seconds=1)
    enqueue(runtime, [(EFFECT_KIND, f"j{i:02}", {"sleep": 0.2}, due) for i in range(15)])

    doomed = workers.start(job_batch_size=5, job_lease_seconds=lease)

    def second_batch_running() -> bool:
        return len(read_effects(effects)) >= 5 and bool(running_jobs(runtime))

    wait_until(second_batch_running, "a batch in progress", workers, runtime, 20)
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(timeout=10)

    running = running_jobs(runtime)
    abandoned = {job_id for job_id, locked_by in running.items() if claimed_by(locked_by, doomed)}
    assert abandoned, "the worker was killed with a batch in progress"
    assert not abandoned & {job_id for job_id, _pid, _attempt in read_effects(effects)}, (
        "the killed batch committed nothing"
    )

    successor = workers.start(job_batch_size=5, job_lease_seconds=lease)
    wait_until(all_done(runtime, 15), "all 15 jobs done", workers, runtime, 20)

    executions = read_effects(effects)
    assert sorted(job_id for job_id, _pid, _attempt in executions) == sorted(
        job_id for job_id, _state, _attempts, _locked_by in job_rows(runtime).values()
    ), "every job's effect recorded exactly once"
    for job_id, pid, attempt in executions:
        if job_id in abandoned:
            assert (pid, attempt) == (successor.pid, 2), f"job {job_id} re-run after the lease"
    attempts = {job_id: a for job_id, _state, a, _locked_by in job_rows(runtime).values()}
    assert {attempts[job_id] for job_id in abandoned} == {2}


def test_sigterm_finishes_the_running_group_releases_the_rest_and_exits(
    runtime: Runtime, workers: Workers, effects: Database
) -> None:
    now = datetime.now(UTC)
    first_batch, later = now - timedelta(seconds=10), now - timedelta(seconds=5)
    enqueue(
        runtime,
        [
            # The first batch of 4: a slow group of EFFECT_KIND, then a group of LATER_EFFECT_KIND.
            (EFFECT_KIND, "slow-1", {"sleep": 1.0}, first_batch),
            (LATER_EFFECT_KIND, "next-1", {}, first_batch),
            (EFFECT_KIND, "slow-2", {"sleep": 1.0}, first_batch),
            (LATER_EFFECT_KIND, "next-2", {}, first_batch),
            *((EFFECT_KIND, f"waiting-{i}", {}, later) for i in range(4)),
        ],
    )
    process = workers.start(job_batch_size=4)

    # SIGTERM once the slow group is running: a signal between the claim and the first group
    # would rightly release the whole batch.
    started = started_marker(workers.directory, "slow-1")
    wait_until(started.exists, "the slow group to start", workers, runtime, 20)
    process.send_signal(signal.SIGTERM)
    try:
        exit_code = process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the worker did not exit within 15 s of SIGTERM\n{workers.logs()}")
    assert exit_code == 0, workers.logs()
    assert "received SIGTERM" in workers.logs()

    rows = job_rows(runtime)
    assert running_jobs(runtime) == {}
    executed = Counter(job_id for job_id, _pid, _attempt in read_effects(effects))
    for key in ("slow-1", "slow-2"):
        job_id, state, attempts, _locked_by = rows[key]
        assert (state, attempts, executed[job_id]) == (JobState.DONE, 1, 1), key
    for key in ("next-1", "next-2", *(f"waiting-{i}" for i in range(4))):
        job_id, state, attempts, locked_by = rows[key]
        released = (state, attempts, locked_by, executed[job_id])
        assert released == (JobState.SCHEDULED, 0, None, 0), key
