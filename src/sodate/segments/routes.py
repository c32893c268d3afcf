"""HTTP routes of segments. Handlers only delegate."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from sodate.deps import Caller, allowed
from sodate.segments import service
from sodate.segments.schemas import PreviewIn, PreviewOut
from sodate.workspaces.roles import Permission

router = APIRouter(prefix="/api/v1")


@router.post("/segments/preview", response_model=PreviewOut, tags=["segments"])
def preview_segment(
    body: PreviewIn, caller: Caller = Depends(allowed(Permission.READ))
) -> PreviewOut:
    """Count the contacts an unsaved condition matches now, with a sample of them."""
    with caller.runtime.db.read() as session:
        return service.preview(
            session, caller.workspace_id, body.condition, sample=body.sample, now=caller.now()
        )
