"""Enqueue, claim, complete, retry and bury jobs. Functions flush and never commit."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sodate.db.statements import insert_ignoring_conflicts
from sodate.errors import Conflict, NotFound
from sodate.queue.handlers import ClaimedJob
from sodate.queue.models import Job, JobState

MAX_ERROR_CHARS = 4000
JOBS: sa.Table = Job.__table__  # type: ignore[assignment]
_jitter = random.Random()  # noqa: S311 - spreading retries needs no cryptographic randomness


@dataclass(frozen=True)
class NewJob:
    kind: str
    idempotency_key: str
    due_at: datetime
    payload: dict[str, Any] = field(default_factory=dict)
    workspace_id: str | None = None


class LeaseLost(Exception):
    """Another worker took over the job while this one ran it; its work must not commit."""


def enqueue(session: Session, jobs: Sequence[NewJob], *, now: datetime, max_attempts: int) -> int:
    """Add jobs; a job whose (kind, idempotency key) already exists is left as it is.

    Returns how many were new.
    """
    rows = [
        {
            "workspace_id": job.workspace_id,
            "kind": job.kind,
            "idempotency_key": job.idempotency_key,
            "payload": job.payload,
            "state": JobState.SCHEDULED.value,
            "due_at": job.due_at,
            "attempts": 0,
            "max_attempts": max_attempts,
            "created_at": now,
            "updated_at": now,
        }
        for job in jobs
    ]
    return insert_ignoring_conflicts(
        session, JOBS, rows, conflict_columns=("kind", "idempotency_key")
    )


def claim_due(
    session: Session, *, claim_token: str, now: datetime, limit: int, lease: timedelta
) -> list[ClaimedJob]:
    """Take up to `limit` due jobs for this claim, oldest due first.

    PostgreSQL skips rows other workers hold; SQLite's write transactions are exclusive, so
    both give each job to one claimer only. Expired leases count as due.
    """
    due_ids = (
        sa.select(Job.id)
        .where(Job.state.in_((JobState.SCHEDULED.value, JobState.RUNNING.value)), Job.due_at <= now)
        .order_by(Job.due_at, Job.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    statement = (
        sa.update(Job)
        .where(Job.id.in_(due_ids.scalar_subquery()))
        .values(
            state=JobState.RUNNING.value,
            due_at=now + lease,
            attempts=Job.attempts + 1,
            locked_by=claim_token,
            updated_at=now,
        )
        .returning(
            Job.id,
            Job.kind,
            Job.idempotency_key,
            Job.workspace_id,
            Job.payload,
            Job.attempts,
            Job.max_attempts,
        )
        .execution_options(synchronize_session=False)
    )
    claimed = [ClaimedJob(*row) for row in session.execute(statement)]
    claimed.sort(key=lambda job: (job.kind, job.id))
    return claimed


def complete(
    session: Session, jobs: Sequence[ClaimedJob], *, claim_token: str, now: datetime
) -> None:
    statement = (
        sa.update(Job)
        .where(Job.id.in_([job.id for job in jobs]), Job.locked_by == claim_token)
        .values(state=JobState.DONE.value, locked_by=None, finished_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if session.execute(statement).rowcount != len(jobs):  # type: ignore[attr-defined]
        raise LeaseLost(f"lease lost on {len(jobs)} job(s) of kind {jobs[0].kind!r}")


def fail(
    session: Session,
    job: ClaimedJob,
    error: str,
    *,
    claim_token: str,
    now: datetime,
    backoff_base: float,
    backoff_max: float,
) -> JobState:
    """Record a failed attempt: retry after an exponential, jittered delay, or bury the job."""
    values: dict[str, Any] = {
        "locked_by": None,
        "last_error": error[:MAX_ERROR_CHARS],
        "updated_at": now,
    }
    if job.attempts >= job.max_attempts:
        state = JobState.DEAD
        values.update(state=state.value, finished_at=now)
    else:
        state = JobState.SCHEDULED
        delay = min(backoff_base * 2 ** (job.attempts - 1), backoff_max)
        values.update(
            state=state.value, due_at=now + timedelta(seconds=delay * _jitter.uniform(0.5, 1.0))
        )
    session.execute(
        sa.update(Job)
        .where(Job.id == job.id, Job.locked_by == claim_token)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return state


def release(
    session: Session, jobs: Sequence[ClaimedJob], *, claim_token: str, now: datetime
) -> None:
    """Hand back claimed jobs that were not started, as if never claimed."""
    session.execute(
        sa.update(Job)
        .where(Job.id.in_([job.id for job in jobs]), Job.locked_by == claim_token)
        .values(
            state=JobState.SCHEDULED.value,
            due_at=now,
            attempts=Job.attempts - 1,
            locked_by=None,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )


def list_jobs(
    session: Session,
    workspace_id: str,
    *,
    state: JobState | None,
    limit: int,
    before_id: int | None,
) -> list[Job]:
    query = sa.select(Job).where(Job.workspace_id == workspace_id)
    if state is not None:
        query = query.where(Job.state == state.value)
    if before_id is not None:
        query = query.where(Job.id < before_id)
    return list(session.scalars(query.order_by(Job.id.desc()).limit(limit)))


def get_job(session: Session, workspace_id: str, job_id: int) -> Job:
    job = session.scalar(sa.select(Job).where(Job.workspace_id == workspace_id, Job.id == job_id))
    if job is None:
        raise NotFound("job not found")
    return job


def retry_dead_job(session: Session, workspace_id: str, job_id: int, *, now: datetime) -> Job:
    job = get_job(session, workspace_id, job_id)
    if job.state != JobState.DEAD.value:
        raise Conflict(f"only dead jobs can be retried; this one is {job.state}")
    job.state = JobState.SCHEDULED.value
    job.attempts = 0
    job.due_at = now
    job.finished_at = None
    job.updated_at = now
    session.flush()
    return job


def prune_finished(session: Session, *, older_than: datetime, limit: int = 10_000) -> int:
    """Delete done jobs finished before `older_than`; dead ones stay until someone looks."""
    doomed = (
        sa.select(Job.id)
        .where(Job.state == JobState.DONE.value, Job.finished_at < older_than)
        .limit(limit)
    )
    result = session.execute(sa.delete(Job).where(Job.id.in_(doomed.scalar_subquery())))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
