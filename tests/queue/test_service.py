"""The durable job queue in process: enqueue, claim, complete, retry, bury, leases and the API."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from sodate.db.engine import Database
from sodate.errors import Conflict, NotFound
from sodate.queue import service
from sodate.queue.handlers import ClaimedJob, JobContext, job_handler
from sodate.queue.models import Job, JobState
from sodate.queue.runner import drain_due_jobs, run_due_batch
from sodate.queue.service import LeaseLost, NewJob
from sodate.runtime import Runtime
from sodate.workspaces import service as workspaces
from sodate.workspaces.roles import Role
from sodate.workspaces.schemas import ApiKeyCreate, Created
from tests.conftest import bearer, new_workspace
from tests.support.plugin import EFFECT_KIND, read_effects, record_effects

WORKER = "test-worker"
FLAKY_KIND = "test.flaky"
# These two sort before EFFECT_KIND, so in a batch holding both kinds their group runs first.
ASKS_STOP_KIND = "test.asks-stop"
TAKES_OVER_KIND = "test.a-takes-over"
UNREGISTERED_KIND = "test.unregistered"

_broken: set[str] = set()
"""Idempotency keys whose FLAKY_KIND jobs fail for now."""
_stop_requested = threading.Event()


@job_handler(FLAKY_KIND)
def _flaky(ctx: JobContext, jobs: Sequence[ClaimedJob]) -> None:
    for job in jobs:
        if job.idempotency_key in _broken:
            raise RuntimeError(f"the remote end refused job {job.idempotency_key}")
    record_effects(ctx, jobs)


@job_handler(TAKES_OVER_KIND)
def _takes_over(ctx: JobContext, jobs: Sequence[ClaimedJob]) -> None:
    """Act as another worker that took over the batch's EFFECT_KIND jobs, their lease expired.

    It runs in this group's transaction, which commits before the next group starts.
    """
    ctx.session.execute(
        sa.update(Job)
        .where(Job.kind == EFFECT_KIND, Job.state == JobState.RUNNING.value)
        .values(locked_by="thief", attempts=Job.attempts + 1)
    )
    record_effects(ctx, jobs)


@job_handler(ASKS_STOP_KIND)
def _asks_stop(ctx: JobContext, jobs: Sequence[ClaimedJob]) -> None:
    _stop_requested.set()
    record_effects(ctx, jobs)


@pytest.fixture(autouse=True)
def _reset_handler_state() -> Iterator[None]:
    yield
    _broken.clear()
    _stop_requested.clear()


# Read the manual clock before opening a write transaction: its first read may write.


def enqueue(runtime: Runtime, *jobs: NewJob, max_attempts: int = 3) -> int:
    now = runtime.clock.now()
    with runtime.db.transaction() as session:
        return service.enqueue(session, list(jobs), now=now, max_attempts=max_attempts)


def job(
    runtime: Runtime,
    key: str,
    kind: str = EFFECT_KIND,
    *,
    due_in: timedelta = timedelta(0),
    workspace_id: str | None = None,
    **payload: Any,
) -> NewJob:
    return NewJob(
        kind=kind,
        idempotency_key=key,
        due_at=runtime.clock.now() + due_in,
        payload=payload,
        workspace_id=workspace_id,
    )


def claim(runtime: Runtime, token: str, *, limit: int = 100) -> list[ClaimedJob]:
    lease = timedelta(seconds=runtime.settings.job_lease_seconds)
    now = runtime.clock.now()
    with runtime.db.transaction() as session:
        return service.claim_due(session, claim_token=token, now=now, limit=limit, lease=lease)


def jobs_by_key(runtime: Runtime) -> dict[str, Job]:
    with runtime.db.read() as session:
        rows = {row.idempotency_key: row for row in session.scalars(sa.select(Job))}
        session.expunge_all()  # keep the loaded values when the read transaction ends
    return rows


def keys(jobs: Sequence[ClaimedJob]) -> set[str]:
    return {claimed.idempotency_key for claimed in jobs}


def effect_counts(db: Database) -> dict[int, int]:
    counts: dict[int, int] = {}
    for job_id, _pid, _attempt in read_effects(db):
        counts[job_id] = counts.get(job_id, 0) + 1
    return counts


def drain(runtime: Runtime) -> int:
    return drain_due_jobs(runtime, worker_id=WORKER)


def advance_to(runtime: Runtime, instant: datetime) -> None:
    runtime.clock.advance(instant - runtime.clock.now())  # type: ignore[attr-defined]


# --- enqueue ---------------------------------------------------------------------------------


def test_enqueue_is_idempotent_on_kind_and_key_and_counts_new_rows(runtime: Runtime) -> None:
    assert enqueue(runtime, job(runtime, "a", n=1), job(runtime, "b")) == 2
    assert enqueue(runtime, job(runtime, "a", n=2), job(runtime, "c")) == 1
    assert enqueue(runtime, job(runtime, "a", FLAKY_KIND)) == 1, "same key, other kind: new"
    assert enqueue(runtime, job(runtime, "d"), job(runtime, "d")) == 1, "duplicate in one call"
    assert enqueue(runtime) == 0

    with runtime.db.read() as session:
        rows = session.execute(sa.select(Job.kind, Job.idempotency_key, Job.payload)).all()
    assert sorted((kind, key) for kind, key, _ in rows) == [
        (EFFECT_KIND, "a"),
        (EFFECT_KIND, "b"),
        (EFFECT_KIND, "c"),
        (EFFECT_KIND, "d"),
        (FLAKY_KIND, "a"),
    ]
    first = next(p for kind, key, p in rows if (kind, key) == (EFFECT_KIND, "a"))
    assert first == {"n": 1}, "an existing job is left as it is"
    stored = jobs_by_key(runtime)["b"]
    assert stored.state == JobState.SCHEDULED
    assert stored.attempts == 0
    assert stored.max_attempts == 3


def test_enqueue_counts_new_rows_of_a_large_batch(runtime: Runtime) -> None:
    now = runtime.clock.now()
    assert enqueue(runtime, *(NewJob(EFFECT_KIND, f"k{i}", now) for i in range(250))) == 250
    assert enqueue(runtime, *(NewJob(EFFECT_KIND, f"k{i}", now) for i in range(200, 300))) == 50
    with runtime.db.read() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Job)) == 300


# --- claim and complete ----------------------------------------------------------------------


def test_claim_due_takes_only_due_jobs_oldest_first_up_to_the_limit(runtime: Runtime) -> None:
    now = runtime.clock.now()
    enqueue(
        runtime,
        job(runtime, "late", due_in=-timedelta(minutes=1)),
        job(runtime, "future", due_in=timedelta(seconds=1)),
        job(runtime, "oldest", due_in=-timedelta(hours=3)),
        job(runtime, "now"),
        job(runtime, "middle", due_in=-timedelta(hours=2)),
        job(runtime, "recent", due_in=-timedelta(seconds=1)),
    )

    first = claim(runtime, "first", limit=3)
    assert keys(first) == {"oldest", "middle", "late"}
    assert all(claimed.attempts == 1 for claimed in first)

    second = claim(runtime, "second", limit=10)
    assert keys(second) == {"recent", "now"}, "same instant: none of the first claim's jobs"
    assert claim(runtime, "third") == []

    rows = jobs_by_key(runtime)
    lease = timedelta(seconds=runtime.settings.job_lease_seconds)
    for key in ("oldest", "middle", "late"):
        assert rows[key].state == JobState.RUNNING
        assert rows[key].locked_by == "first"
        assert rows[key].due_at == now + lease, "a running job's due time is its lease's end"
    assert rows["future"].state == JobState.SCHEDULED
    assert rows["future"].attempts == 0


def test_concurrent_claims_never_take_the_same_job(runtime: Runtime) -> None:
    if runtime.db.dialect != "postgresql":
        pytest.skip("SQLite write transactions are exclusive: claims cannot overlap")
    enqueue(runtime, *(job(runtime, f"j{i}") for i in range(10)))
    lease = timedelta(seconds=60)
    now = runtime.clock.now()
    with runtime.db.transaction() as one, runtime.db.transaction() as other:
        # Fail rather than hang should `other` wait for the rows `one` holds.
        other.execute(sa.text("SET LOCAL lock_timeout = '5s'"))
        first = service.claim_due(one, claim_token="one", now=now, limit=4, lease=lease)
        # `one` has not committed: its rows are locked, and `other` skips them.
        second = service.claim_due(other, claim_token="other", now=now, limit=100, lease=lease)
    assert len(first) == 4
    assert len(second) == 6
    assert not keys(first) & keys(second)
    assert {row.attempts for row in jobs_by_key(runtime).values()} == {1}


def test_complete_marks_jobs_done(runtime: Runtime) -> None:
    enqueue(runtime, job(runtime, "a"), job(runtime, "b"))
    claimed = claim(runtime, "token")
    runtime.clock.advance(timedelta(seconds=5))  # type: ignore[attr-defined]
    done_at = runtime.clock.now()
    with runtime.db.transaction() as session:
        service.complete(session, claimed, claim_token="token", now=done_at)

    for row in jobs_by_key(runtime).values():
        assert row.state == JobState.DONE
        assert row.finished_at == done_at
        assert row.locked_by is None
    runtime.clock.advance(timedelta(days=1))  # type: ignore[attr-defined]
    assert claim(runtime, "again") == [], "a done job is never claimed again"


def test_runner_runs_due_jobs_once_and_marks_them_done(runtime: Runtime, effects: Database) -> None:
    enqueue(runtime, *(job(runtime, f"j{i}") for i in range(5)))
    enqueue(runtime, job(runtime, "later", due_in=timedelta(hours=1)))

    assert drain(runtime) == 5
    assert drain(runtime) == 0
    rows = jobs_by_key(runtime)
    done = {key for key, row in rows.items() if row.state == JobState.DONE}
    assert done == {f"j{i}" for i in range(5)}
    assert effect_counts(effects) == {rows[key].id: 1 for key in done}

    runtime.clock.advance(timedelta(hours=1))  # type: ignore[attr-defined]
    assert drain(runtime) == 1
    assert jobs_by_key(runtime)["later"].state == JobState.DONE


# --- failures, retries and the dead letter ---------------------------------------------------


def test_failing_job_is_retried_with_exponential_backoff_then_dead(
    runtime: Runtime, effects: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Jitter scales each delay by a factor in [0.5, 1); pin it to 1 to see the doubling exactly.
    monkeypatch.setattr(service._jitter, "uniform", lambda low, high: high)
    base = runtime.settings.job_backoff_base_seconds
    _broken.add("flaky")
    enqueue(runtime, job(runtime, "flaky", FLAKY_KIND), max_attempts=4)

    for attempt in (1, 2, 3):
        failed_at = runtime.clock.now()
        assert drain(runtime) == 1
        row = jobs_by_key(runtime)["flaky"]
        assert row.state == JobState.SCHEDULED
        assert row.attempts == attempt
        assert row.locked_by is None
        assert row.last_error is not None
        assert "Traceback (most recent call last)" in row.last_error
        assert "RuntimeError: the remote end refused job flaky" in row.last_error
        assert row.due_at - failed_at == timedelta(seconds=base * 2 ** (attempt - 1))
        assert drain(runtime) == 0, "not due before its backoff ends"
        advance_to(runtime, row.due_at)

    buried_at = runtime.clock.now()
    assert drain(runtime) == 1
    row = jobs_by_key(runtime)["flaky"]
    assert row.state == JobState.DEAD
    assert row.attempts == 4
    assert row.finished_at == buried_at
    assert row.last_error is not None
    assert "RuntimeError: the remote end refused job flaky" in row.last_error
    assert read_effects(effects) == [], "failed attempts commit nothing"

    runtime.clock.advance(timedelta(days=30))  # type: ignore[attr-defined]
    assert drain(runtime) == 0, "a dead job is never claimed"


def test_retry_delays_are_jittered_between_half_and_all_of_the_backoff(runtime: Runtime) -> None:
    enqueue(runtime, *(job(runtime, f"j{i}") for i in range(20)), max_attempts=5)
    claimed = claim(runtime, "token")
    now = runtime.clock.now()
    with runtime.db.transaction() as session:
        for one in claimed:
            service.fail(
                session,
                replace(one, attempts=2),
                "error",
                claim_token="token",
                now=now,
                backoff_base=60,
                backoff_max=3600,
            )
    delays = {(row.due_at - now).total_seconds() for row in jobs_by_key(runtime).values()}
    assert all(60 <= delay <= 120 for delay in delays), delays
    assert len(delays) > 1, "retries are spread, not all due at once"


def test_backoff_is_capped(runtime: Runtime) -> None:
    enqueue(runtime, job(runtime, "a"), max_attempts=100)
    (claimed,) = claim(runtime, "token")
    now = runtime.clock.now()
    with runtime.db.transaction() as session:
        state = service.fail(
            session,
            replace(claimed, attempts=12),  # base * 2**11 is far above the cap
            "error",
            claim_token="token",
            now=now,
            backoff_base=10,
            backoff_max=90,
        )
    assert state is JobState.SCHEDULED
    delay = (jobs_by_key(runtime)["a"].due_at - now).total_seconds()
    assert 45 <= delay <= 90


def test_error_text_is_truncated(runtime: Runtime) -> None:
    enqueue(runtime, job(runtime, "a"))
    (claimed,) = claim(runtime, "token")
    now = runtime.clock.now()
    with runtime.db.transaction() as session:
        service.fail(
            session,
            claimed,
            "x" * 100_000,
            claim_token="token",
            now=now,
            backoff_base=10,
            backoff_max=90,
        )
    assert jobs_by_key(runtime)["a"].last_error == "x" * service.MAX_ERROR_CHARS


def test_one_failing_job_does_not_hold_back_its_batch(runtime: Runtime, effects: Database) -> None:
    enqueue(
        runtime,
        job(runtime, "good-1"),
        job(runtime, "good-2"),
        job(runtime, "bad", fail=True),
        job(runtime, "good-3"),
        job(runtime, "good-4"),
    )
    assert drain(runtime) == 5

    rows = jobs_by_key(runtime)
    good = [f"good-{i}" for i in range(1, 5)]
    for key in good:
        assert rows[key].state == JobState.DONE, key
        assert rows[key].attempts == 1, f"{key}: run one by one without a new claim"
    assert rows["bad"].state == JobState.SCHEDULED
    assert rows["bad"].attempts == 1
    assert rows["bad"].last_error is not None
    assert "HandlerFailed: job bad was told to fail" in rows["bad"].last_error
    # The first, whole-batch run wrote effects for good-1 and good-2 before failing: rolled back.
    assert effect_counts(effects) == {rows[key].id: 1 for key in good}


def test_job_without_a_handler_fails_visibly(runtime: Runtime) -> None:
    enqueue(runtime, job(runtime, "a", UNREGISTERED_KIND), job(runtime, "b", UNREGISTERED_KIND))
    enqueue(runtime, job(runtime, "c", UNREGISTERED_KIND), max_attempts=1)
    assert drain(runtime) == 3

    rows = jobs_by_key(runtime)
    for key in ("a", "b", "c"):
        error = rows[key].last_error
        assert error is not None
        assert "no handler is registered for job kind 'test.unregistered'" in error
        assert rows[key].attempts == 1
    assert rows["a"].state == rows["b"].state == JobState.SCHEDULED
    assert rows["c"].state == JobState.DEAD


# --- leases ----------------------------------------------------------------------------------


def test_expired_lease_makes_a_running_job_claimable_and_the_first_claimer_loses_it(
    runtime: Runtime, effects: Database
) -> None:
    enqueue(runtime, job(runtime, "a"), job(runtime, "b"))
    first = claim(runtime, "first")
    assert len(first) == 2

    lease = timedelta(seconds=runtime.settings.job_lease_seconds)
    runtime.clock.advance(lease - timedelta(seconds=1))  # type: ignore[attr-defined]
    assert claim(runtime, "second") == [], "the lease still holds"
    runtime.clock.advance(timedelta(seconds=1))  # type: ignore[attr-defined]
    second = claim(runtime, "second")
    assert keys(second) == {"a", "b"}
    assert {claimed.attempts for claimed in second} == {2}

    now = runtime.clock.now()
    with pytest.raises(LeaseLost), runtime.db.transaction() as session:
        record_effects(JobContext(session=session, runtime=runtime, now=now), first)
        service.complete(session, first, claim_token="first", now=now)
    assert read_effects(effects) == [], "the first claimer's work rolled back"
    rows = jobs_by_key(runtime)
    assert {row.state for row in rows.values()} == {JobState.RUNNING}
    assert {row.locked_by for row in rows.values()} == {"second"}

    with runtime.db.transaction() as session:
        service.complete(session, second, claim_token="second", now=now)
    assert {row.state for row in jobs_by_key(runtime).values()} == {JobState.DONE}


def test_lease_lost_on_part_of_a_batch_commits_none_of_it(runtime: Runtime) -> None:
    enqueue(runtime, job(runtime, "a"), job(runtime, "b"))
    first = claim(runtime, "first")
    runtime.clock.advance(timedelta(seconds=runtime.settings.job_lease_seconds))  # type: ignore[attr-defined]
    (taken,) = claim(runtime, "second", limit=1)

    now = runtime.clock.now()
    with pytest.raises(LeaseLost), runtime.db.transaction() as session:
        service.complete(session, first, claim_token="first", now=now)
    rows = jobs_by_key(runtime)
    assert rows[taken.idempotency_key].locked_by == "second"
    assert all(row.state == JobState.RUNNING for row in rows.values())


def test_runner_whose_lease_was_taken_over_commits_nothing(
    runtime: Runtime, effects: Database
) -> None:
    enqueue(
        runtime,
        job(runtime, "a"),
        job(runtime, "b"),
        job(runtime, "other-worker", TAKES_OVER_KIND),
    )
    assert run_due_batch(runtime, worker_id=WORKER) == 3

    rows = jobs_by_key(runtime)
    assert rows["other-worker"].state == JobState.DONE
    assert effect_counts(effects) == {rows["other-worker"].id: 1}, "a and b committed nothing"
    for key in ("a", "b"):
        assert rows[key].state == JobState.RUNNING
        assert rows[key].locked_by == "thief", "left to the worker that took them over"
        assert rows[key].attempts == 2
        assert rows[key].last_error is None, "losing a lease is not a failure of the job"


def test_job_whose_worker_died_on_its_last_attempt_is_dead(
    runtime: Runtime, effects: Database
) -> None:
    enqueue(runtime, job(runtime, "a"), max_attempts=1)
    claim(runtime, "worker-that-died")
    runtime.clock.advance(timedelta(seconds=runtime.settings.job_lease_seconds))  # type: ignore[attr-defined]

    assert drain(runtime) == 1
    row = jobs_by_key(runtime)["a"]
    assert row.state == JobState.DEAD
    assert row.last_error is not None
    assert "lease expired" in row.last_error
    assert read_effects(effects) == [], "the handler is not run again"


def test_release_returns_unstarted_jobs(runtime: Runtime) -> None:
    enqueue(runtime, job(runtime, "a"), job(runtime, "b"), job(runtime, "c"))
    claimed = claim(runtime, "token")
    released = [c for c in claimed if c.idempotency_key != "c"]
    now = runtime.clock.now()
    with runtime.db.transaction() as session:
        service.release(session, released, claim_token="not-mine", now=now)
    assert {row.state for row in jobs_by_key(runtime).values()} == {JobState.RUNNING}

    now = runtime.clock.advance(timedelta(seconds=1))  # type: ignore[attr-defined]
    with runtime.db.transaction() as session:
        service.release(session, released, claim_token="token", now=now)
    rows = jobs_by_key(runtime)
    for key in ("a", "b"):
        assert rows[key].state == JobState.SCHEDULED
        assert rows[key].attempts == 0, "a released job was never attempted"
        assert rows[key].locked_by is None
        assert rows[key].due_at == now
        assert rows[key].updated_at == now
    assert rows["c"].state == JobState.RUNNING

    again = claim(runtime, "again")
    assert keys(again) == {"a", "b"}
    assert {claimed.attempts for claimed in again} == {1}


def test_stopping_runner_finishes_its_group_and_releases_the_rest(
    runtime: Runtime, effects: Database
) -> None:
    enqueue(
        runtime,
        job(runtime, "effect-1"),
        job(runtime, "stop-1", ASKS_STOP_KIND),
        job(runtime, "effect-2"),
        job(runtime, "stop-2", ASKS_STOP_KIND),
    )
    assert run_due_batch(runtime, worker_id=WORKER, stop=_stop_requested) == 4

    rows = jobs_by_key(runtime)
    assert rows["stop-1"].state == rows["stop-2"].state == JobState.DONE
    for key in ("effect-1", "effect-2"):
        assert rows[key].state == JobState.SCHEDULED
        assert rows[key].attempts == 0
    assert effect_counts(effects) == {rows["stop-1"].id: 1, rows["stop-2"].id: 1}

    assert drain(runtime) == 2
    assert {row.state for row in jobs_by_key(runtime).values()} == {JobState.DONE}
    assert len(read_effects(effects)) == 4


# --- dead-letter retry and pruning -----------------------------------------------------------


def test_retry_dead_job(runtime: Runtime, workspace: Created, effects: Database) -> None:
    workspace_id = workspace.workspace.id
    _broken.add("flaky")
    enqueue(
        runtime,
        job(runtime, "flaky", FLAKY_KIND, workspace_id=workspace_id),
        job(runtime, "fine", workspace_id=workspace_id),
        max_attempts=1,
    )
    drain(runtime)
    rows = jobs_by_key(runtime)
    dead, fine = rows["flaky"], rows["fine"]
    assert dead.state == JobState.DEAD

    runtime.clock.advance(timedelta(hours=1))  # type: ignore[attr-defined]
    now = runtime.clock.now()
    with runtime.db.transaction() as session:
        retried = service.retry_dead_job(session, workspace_id, dead.id, now=now)
        assert retried.state == JobState.SCHEDULED
    row = jobs_by_key(runtime)["flaky"]
    assert row.state == JobState.SCHEDULED
    assert row.attempts == 0
    assert row.due_at == now
    assert row.finished_at is None

    with pytest.raises(Conflict), runtime.db.transaction() as session:
        service.retry_dead_job(session, workspace_id, fine.id, now=now)
    other = new_workspace(runtime, "別の会社")
    with pytest.raises(NotFound), runtime.db.transaction() as session:
        service.retry_dead_job(session, other.workspace.id, dead.id, now=now)

    _broken.clear()
    assert drain(runtime) == 1
    assert jobs_by_key(runtime)["flaky"].state == JobState.DONE
    assert effect_counts(effects) == {dead.id: 1, fine.id: 1}


def test_prune_finished_deletes_only_old_done_jobs(runtime: Runtime, effects: Database) -> None:
    start = runtime.clock.now()
    enqueue(runtime, job(runtime, "old-1"), job(runtime, "old-2"))
    enqueue(runtime, job(runtime, "dead", UNREGISTERED_KIND), max_attempts=1)
    drain(runtime)
    runtime.clock.advance(timedelta(days=10))  # type: ignore[attr-defined]
    enqueue(runtime, job(runtime, "recent"), job(runtime, "future", due_in=timedelta(days=1)))
    drain(runtime)
    assert jobs_by_key(runtime)["dead"].state == JobState.DEAD

    cutoff = start + timedelta(days=1)
    with runtime.db.transaction() as session:
        assert service.prune_finished(session, older_than=cutoff, limit=1) == 1
    with runtime.db.transaction() as session:
        assert service.prune_finished(session, older_than=cutoff) == 1
    with runtime.db.transaction() as session:
        assert service.prune_finished(session, older_than=cutoff) == 0
    assert set(jobs_by_key(runtime)) == {"dead", "recent", "future"}


# --- HTTP ------------------------------------------------------------------------------------


def _api_jobs(runtime: Runtime, workspace_id: str) -> dict[str, int]:
    """Enqueue a workspace's jobs (one dead), another workspace's and a global one."""
    other = new_workspace(runtime, "別の会社")
    enqueue(
        runtime,
        job(runtime, "one", workspace_id=workspace_id),
        job(runtime, "two", workspace_id=workspace_id, due_in=timedelta(days=1)),
        job(runtime, "three", workspace_id=workspace_id, due_in=timedelta(days=1)),
        job(runtime, "dead", UNREGISTERED_KIND, workspace_id=workspace_id),
        job(runtime, "theirs", workspace_id=other.workspace.id),
        job(runtime, "global", due_in=timedelta(days=1)),
        max_attempts=1,
    )
    drain(runtime)
    return {key: row.id for key, row in jobs_by_key(runtime).items()}


def test_jobs_api_lists_the_workspace_jobs_newest_first(
    runtime: Runtime,
    client: TestClient,
    workspace: Created,
    admin_headers: dict[str, str],
    effects: Database,
) -> None:
    ids = _api_jobs(runtime, workspace.workspace.id)

    response = client.get("/api/v1/jobs", headers=admin_headers)
    assert response.status_code == 200, response.text
    listed = response.json()
    assert [item["id"] for item in listed] == sorted(
        (ids[key] for key in ("one", "two", "three", "dead")), reverse=True
    )
    by_key = {item["idempotency_key"]: item for item in listed}
    assert by_key["one"]["state"] == "done"
    assert by_key["two"]["state"] == "scheduled"
    assert by_key["dead"]["state"] == "dead"
    assert "no handler is registered" in by_key["dead"]["last_error"]

    dead = client.get("/api/v1/jobs", params={"state": "dead"}, headers=admin_headers).json()
    assert [item["id"] for item in dead] == [ids["dead"]]

    page = client.get("/api/v1/jobs", params={"limit": 2}, headers=admin_headers).json()
    rest = client.get(
        "/api/v1/jobs", params={"before_id": page[-1]["id"]}, headers=admin_headers
    ).json()
    assert [item["id"] for item in page + rest] == [item["id"] for item in listed]

    bad = client.get("/api/v1/jobs", params={"state": "sleeping"}, headers=admin_headers)
    assert bad.status_code == 422
    assert client.get("/api/v1/jobs").status_code == 401


def test_jobs_api_gets_one_job_of_the_workspace_only(
    runtime: Runtime,
    client: TestClient,
    workspace: Created,
    admin_headers: dict[str, str],
    effects: Database,
) -> None:
    ids = _api_jobs(runtime, workspace.workspace.id)

    response = client.get(f"/api/v1/jobs/{ids['one']}", headers=admin_headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["kind"] == EFFECT_KIND
    assert body["idempotency_key"] == "one"
    assert body["state"] == "done"
    assert body["attempts"] == 1
    assert body["finished_at"] is not None

    for key in ("theirs", "global"):
        missing = client.get(f"/api/v1/jobs/{ids[key]}", headers=admin_headers)
        assert missing.status_code == 404, key
        assert missing.json()["error"]["code"] == "not_found"


def test_jobs_api_retries_dead_jobs(
    runtime: Runtime,
    client: TestClient,
    workspace: Created,
    admin_headers: dict[str, str],
    effects: Database,
) -> None:
    ids = _api_jobs(runtime, workspace.workspace.id)
    now = runtime.clock.now()
    with runtime.db.transaction() as session:
        viewer = workspaces.create_api_key(
            session,
            workspace.workspace.id,
            ApiKeyCreate(name="viewer", role=Role.VIEWER),
            granter=Role.OWNER,
            now=now,
        )

    forbidden = client.post(f"/api/v1/jobs/{ids['dead']}/retry", headers=bearer(viewer.key))
    assert forbidden.status_code == 403
    assert jobs_by_key(runtime)["dead"].state == JobState.DEAD

    response = client.post(f"/api/v1/jobs/{ids['dead']}/retry", headers=admin_headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["state"] == "scheduled"
    assert body["attempts"] == 0
    assert body["finished_at"] is None
    assert jobs_by_key(runtime)["dead"].state == JobState.SCHEDULED

    again = client.post(f"/api/v1/jobs/{ids['dead']}/retry", headers=admin_headers)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "conflict"
    theirs = client.post(f"/api/v1/jobs/{ids['theirs']}/retry", headers=admin_headers)
    assert theirs.status_code == 404


def test_job_ids_out_of_range_are_invalid_not_errors(client, admin_headers) -> None:
    for path in (
        "/api/v1/jobs/99999999999999999999",
        "/api/v1/jobs?before_id=99999999999999999999",
    ):
        response = client.get(path, headers=admin_headers)
        assert response.status_code == 422, path
