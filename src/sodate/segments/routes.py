"""HTTP routes of segments. Handlers only delegate."""

from __future__ import annotations

import io
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from starlette.concurrency import run_in_threadpool

from sodate import definitions
from sodate.deps import Caller, allowed
from sodate.imports.csvfile import Encoding, uploaded_csv
from sodate.segments import lists, service
from sodate.segments.schemas import (
    ChangePage,
    MemberPage,
    MembersChanged,
    MembersFromFile,
    MembersIn,
    PreviewIn,
    PreviewOut,
    SegmentIn,
    SegmentOut,
    SegmentSaved,
)
from sodate.workspaces.roles import Permission

router = APIRouter(prefix="/api/v1")

SegmentKey = Annotated[
    str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
]
Limit = Annotated[int, Query(ge=1, le=1000)]
Cursor = Annotated[int | None, Query(alias="cursor", ge=0, le=2**62)]


@router.post("/segments/preview", response_model=PreviewOut, tags=["segments"])
def preview_segment(
    body: PreviewIn, caller: Caller = Depends(allowed(Permission.READ))
) -> PreviewOut:
    """Count the contacts an unsaved condition matches now, with a sample of them."""
    with caller.runtime.db.read() as session:
        return service.preview(
            session, caller.workspace_id, body.condition, sample=body.sample, now=caller.now()
        )


@router.get("/segments", response_model=list[SegmentOut], tags=["segments"])
def list_segments(caller: Caller = Depends(allowed(Permission.READ))) -> list[SegmentOut]:
    with caller.runtime.db.read() as session:
        return service.list_segments(session, caller.workspace_id)


@router.put("/segments/{key}", response_model=SegmentSaved, tags=["segments"])
def put_segment(
    key: SegmentKey,
    body: SegmentIn,
    response: Response,
    caller: Caller = Depends(allowed(Permission.MARKETING_WRITE)),
) -> SegmentSaved:
    """Create or replace a segment; its members are recomputed before the response."""
    with caller.runtime.db.transaction() as session:
        saved, created = service.put_segment(
            session, caller.workspace_id, key, body, now=caller.now()
        )
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return saved


@router.get("/segments/{key}", response_model=SegmentOut, tags=["segments"])
def get_segment(key: SegmentKey, caller: Caller = Depends(allowed(Permission.READ))) -> SegmentOut:
    with caller.runtime.db.read() as session:
        return service.get_segment(session, caller.workspace_id, key)


@router.delete("/segments/{key}", status_code=204, tags=["segments"])
def delete_segment(
    key: SegmentKey, caller: Caller = Depends(allowed(Permission.MARKETING_WRITE))
) -> Response:
    with caller.runtime.db.transaction() as session:
        definitions.delete_segment(session, caller.workspace_id, key, now=caller.now())
    return Response(status_code=204)


@router.get("/segments/{key}/members", response_model=MemberPage, tags=["segments"])
def list_members(
    key: SegmentKey,
    caller: Caller = Depends(allowed(Permission.READ)),
    limit: Limit = 100,
    cursor: Cursor = None,
) -> MemberPage:
    with caller.runtime.db.read() as session:
        return service.list_members(session, caller.workspace_id, key, limit=limit, after=cursor)


@router.get("/segments/{key}/changes", response_model=ChangePage, tags=["segments"])
def list_changes(
    key: SegmentKey,
    caller: Caller = Depends(allowed(Permission.READ)),
    limit: Limit = 100,
    cursor: Cursor = None,
) -> ChangePage:
    """Every entry and exit, oldest first, with its cause (saved, event, time, api, merge)."""
    with caller.runtime.db.read() as session:
        return service.list_changes(session, caller.workspace_id, key, limit=limit, after=cursor)


@router.post("/segments/{key}/members", response_model=MembersChanged, tags=["segments"])
def add_members(
    key: SegmentKey, body: MembersIn, caller: Caller = Depends(allowed(Permission.CONTACTS_WRITE))
) -> MembersChanged:
    """Add contacts to a static list."""
    with caller.runtime.db.transaction() as session:
        changed = service.change_members(
            session, caller.workspace_id, key, body.contact_ids, add=True, now=caller.now()
        )
    return MembersChanged(changed=changed)


@router.post("/segments/{key}/members/remove", response_model=MembersChanged, tags=["segments"])
def remove_members(
    key: SegmentKey, body: MembersIn, caller: Caller = Depends(allowed(Permission.CONTACTS_WRITE))
) -> MembersChanged:
    """Remove contacts from a static list."""
    with caller.runtime.db.transaction() as session:
        changed = service.change_members(
            session, caller.workspace_id, key, body.contact_ids, add=False, now=caller.now()
        )
    return MembersChanged(changed=changed)


@router.post(
    "/segments/{key}/members/csv",
    response_model=MembersFromFile,
    tags=["segments"],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/csv": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def change_members_from_csv(
    key: SegmentKey,
    request: Request,
    caller: Caller = Depends(allowed(Permission.CONTACTS_WRITE)),
    remove: Annotated[
        bool, Query(description="Remove the contacts the file names instead of adding them")
    ] = False,
    encoding: Encoding = Encoding.AUTO,
) -> MembersFromFile:
    """Add to a static list (or remove from it) the contacts a CSV file names.

    The body is the file (UTF-8 or Shift_JIS/CP932), with a header holding at least one of
    `id`, `email`, `phone`, `user_id`. Each row names one existing contact by its first
    non-empty identifying cell; rows that name nobody are reported, every other is applied.
    """
    data = uploaded_csv(
        await request.body(),
        content_type=request.headers.get("content-type"),
        content_encoding=request.headers.get("content-encoding"),
        limit=caller.runtime.settings.max_request_bytes,
    )
    return await run_in_threadpool(_change_from_csv, caller, key, data, not remove, encoding)


def _change_from_csv(
    caller: Caller, key: str, data: bytes, add: bool, encoding: Encoding
) -> MembersFromFile:
    parsed = lists.read_list_file(io.BytesIO(data), encoding)
    with caller.runtime.db.transaction() as session:
        return lists.apply_rows(
            session, caller.workspace_id, key, parsed, add=add, now=caller.now()
        )
