"""Run due jobs: claim a batch, run each kind's handler, record what happened.

A batch of one kind runs in one transaction. If it fails, its jobs are run again one by one, so
a single bad job is retried or buried on its own and never holds back the others.
"""

from __future__ import annotations

import threading
import traceback
import uuid
from collections.abc import Sequence
from datetime import timedelta
from itertools import groupby

import structlog

from sodate.metrics import JOBS_FINISHED
from sodate.queue import service
from sodate.queue.handlers import ClaimedJob, JobContext, handler_for
from sodate.queue.models import JobState
from sodate.runtime import Runtime

log = structlog.get_logger(__name__)


def run_due_batch(runtime: Runtime, *, worker_id: str, stop: threading.Event | None = None) -> int:
    """Claim and run one batch of due jobs; return how many were claimed."""
    settings = runtime.settings
    claim_token = f"{worker_id}/{uuid.uuid4().hex[:12]}"
    now = runtime.clock.now()
    with runtime.db.transaction() as session:
        claimed = service.claim_due(
            session,
            claim_token=claim_token,
            now=now,
            limit=settings.job_batch_size,
            lease=timedelta(seconds=settings.job_lease_seconds),
        )
    groups = [list(group) for _, group in groupby(claimed, key=lambda job: job.kind)]
    for index, jobs in enumerate(groups):
        if stop is not None and stop.is_set():
            remaining = [job for group in groups[index:] for job in group]
            with runtime.db.transaction() as session:
                service.release(
                    session, remaining, claim_token=claim_token, now=runtime.clock.now()
                )
            break
        _run_group(runtime, jobs, claim_token)
    return len(claimed)


def drain_due_jobs(runtime: Runtime, *, worker_id: str, max_batches: int = 10_000) -> int:
    """Run batches until nothing is due. Used right after the manual clock moves."""
    total = 0
    for _ in range(max_batches):
        claimed = run_due_batch(runtime, worker_id=worker_id)
        total += claimed
        if claimed == 0:
            break
    return total


def _run_group(runtime: Runtime, jobs: list[ClaimedJob], claim_token: str) -> None:
    exhausted = [job for job in jobs if job.attempts > job.max_attempts]
    for job in exhausted:
        _record_failure(
            runtime, job, "lease expired on every attempt: the worker died running it", claim_token
        )
    runnable = [job for job in jobs if job.attempts <= job.max_attempts]
    if not runnable:
        return
    if _try_run(runtime, runnable, claim_token) or len(runnable) == 1:
        return
    for job in runnable:
        _try_run(runtime, [job], claim_token)


def _try_run(runtime: Runtime, jobs: Sequence[ClaimedJob], claim_token: str) -> bool:
    kind = jobs[0].kind
    handler = handler_for(kind)
    try:
        if handler is None:
            raise LookupError(f"no handler is registered for job kind {kind!r}")
        now = runtime.clock.now()
        with runtime.db.transaction() as session:
            handler(JobContext(session=session, runtime=runtime, now=now), jobs)
            service.complete(session, jobs, claim_token=claim_token, now=now)
    except service.LeaseLost:
        log.warning("job lease lost; another worker has the jobs", kind=kind, count=len(jobs))
        return True
    except Exception:
        if len(jobs) == 1:
            _record_failure(runtime, jobs[0], traceback.format_exc(), claim_token)
        return False
    JOBS_FINISHED.labels(kind=kind, outcome="done").inc(len(jobs))
    return True


def _record_failure(runtime: Runtime, job: ClaimedJob, error: str, claim_token: str) -> None:
    settings = runtime.settings
    with runtime.db.transaction() as session:
        state = service.fail(
            session,
            job,
            error,
            claim_token=claim_token,
            now=runtime.clock.now(),
            backoff_base=settings.job_backoff_base_seconds,
            backoff_max=settings.job_backoff_max_seconds,
        )
    outcome = "dead" if state is JobState.DEAD else "retry"
    JOBS_FINISHED.labels(kind=job.kind, outcome=outcome).inc()
    log.warning(
        "job failed",
        kind=job.kind,
        job_id=job.id,
        attempt=job.attempts,
        outcome=outcome,
        error=error.strip().splitlines()[-1] if error.strip() else "",
    )
