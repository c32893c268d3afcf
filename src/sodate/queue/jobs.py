"""Background services of the job queue."""

from __future__ import annotations

from datetime import timedelta

from sodate.queue import service
from sodate.queue.runner import run_due_batch
from sodate.worker_types import Service, ServiceContext


def _run_jobs(context: ServiceContext) -> int:
    return run_due_batch(context.runtime, worker_id=context.worker_id, stop=context.stop)


def _prune_jobs(context: ServiceContext) -> int:
    runtime = context.runtime
    older_than = runtime.clock.now() - timedelta(days=runtime.settings.job_retention_days)
    with runtime.db.transaction() as session:
        return service.prune_finished(session, older_than=older_than)


job_runner = Service(
    name="job-runner",
    run=_run_jobs,
    enabled_setting="job_runner_enabled",
    interval_setting="job_runner_interval_seconds",
    drain=True,
)

job_pruner = Service(
    name="job-pruner",
    run=_prune_jobs,
    enabled_setting="maintenance_enabled",
    interval_setting="maintenance_interval_seconds",
    drain=True,
)
