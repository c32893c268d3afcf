"""HTTP routes to inspect a workspace's jobs and retry dead ones."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from sodate.deps import Caller, allowed
from sodate.queue import service
from sodate.queue.models import JobState
from sodate.queue.schemas import JobOut
from sodate.workspaces.roles import Permission

router = APIRouter(prefix="/api/v1", tags=["jobs"])

JobId = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.get("/jobs", response_model=list[JobOut])
def list_jobs(
    state: JobState | None = None,
    limit: int = Query(default=100, ge=1, le=1000),
    before_id: int | None = Query(
        default=None, ge=1, le=2**63 - 1, description="Page: jobs with a smaller id."
    ),
    caller: Caller = Depends(allowed(Permission.READ)),
) -> list[JobOut]:
    with caller.runtime.db.read() as session:
        jobs = service.list_jobs(
            session, caller.workspace_id, state=state, limit=limit, before_id=before_id
        )
        return [JobOut.model_validate(job) for job in jobs]


@router.get("/jobs/{job_id}", response_model=JobOut)
def get_job(job_id: JobId, caller: Caller = Depends(allowed(Permission.READ))) -> JobOut:
    with caller.runtime.db.read() as session:
        return JobOut.model_validate(service.get_job(session, caller.workspace_id, job_id))


@router.post("/jobs/{job_id}/retry", response_model=JobOut)
def retry_job(
    job_id: int, caller: Caller = Depends(allowed(Permission.WORKSPACE_MANAGE))
) -> JobOut:
    with caller.runtime.db.transaction() as session:
        job = service.retry_dead_job(session, caller.workspace_id, job_id, now=caller.now())
        return JobOut.model_validate(job)
