"""The job that runs imports submitted through the API, one chunk per job.

Each job imports one chunk and, in the same transaction, queues the job of the next chunk:
the import's progress and its next step commit together, and no job holds the database (or
SQLite's single writer) for longer than a chunk.
"""

from __future__ import annotations

from collections.abc import Sequence

from sodate.errors import NotFound
from sodate.imports import service
from sodate.imports.models import ImportStatus
from sodate.queue.handlers import ClaimedJob, JobContext, job_handler


@job_handler(service.RUN_JOB)
def run_imports(context: JobContext, jobs: Sequence[ClaimedJob]) -> None:
    session = context.session
    for job in jobs:
        if job.workspace_id is None:
            continue
        try:
            record = service.import_record(session, job.workspace_id, job.payload["import_id"])
        except NotFound:
            continue  # the workspace, and its imports with it, were deleted
        if record.status in service.FINISHED:
            continue
        records = service.stored_records(session, record)
        record = service.run_chunk(session, job.workspace_id, record.id, records, now=context.now)
        if record.status == ImportStatus.RUNNING.value:
            service.enqueue_run(
                session,
                record,
                now=context.now,
                max_attempts=context.runtime.settings.job_max_attempts,
            )
